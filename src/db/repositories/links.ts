import { and, asc, count, eq, inArray, sql } from 'drizzle-orm';
import { type Db, perConnection } from '../index';
import { changeRequest, link, linkRevision } from '../schema';

export type LinkRow = typeof link.$inferSelect;
export type RevisionRow = typeof linkRevision.$inferSelect;
export type ChangeRow = typeof changeRequest.$inferSelect;

// Read on every login, push and query: prepared once per connection.
const byIdQuery = perConnection((tx) => tx.select().from(link).where(eq(link.id, sql.placeholder('id'))).prepare());
export const byId = async (tx: Db, id: number): Promise<LinkRow | undefined> => byIdQuery(tx).get({ id });
export async function list(tx: Db, status?: LinkRow['status']): Promise<LinkRow[]> {
  return tx.select().from(link).where(status ? eq(link.status, status) : undefined).orderBy(asc(link.id)).all();
}
export const insert = async (tx: Db, row: Omit<LinkRow, 'id'>): Promise<LinkRow> => tx.insert(link).values(row).returning().get();
export async function update(tx: Db, id: number, values: Partial<Omit<LinkRow, 'id'>>): Promise<void> {
  tx.update(link).set(values).where(eq(link.id, id)).run();
}

export async function revision(tx: Db, linkId: number, number: number): Promise<RevisionRow | undefined> {
  return tx.select().from(linkRevision).where(and(eq(linkRevision.linkId, linkId), eq(linkRevision.number, number))).get();
}
/**
 * Several links' revisions at once, each named by link and number: one statement whose size grows
 * with the links, not with their pairs (an OR per pair would nest as deep as there are links).
 */
export async function revisionsAt(tx: Db, wanted: readonly { linkId: number; number: number }[]): Promise<RevisionRow[]> {
  if (wanted.length === 0) return [];
  const want = new Set(wanted.map((w) => `${w.linkId}:${w.number}`));
  const linkIds = [...new Set(wanted.map((w) => w.linkId))];
  const numbers = [...new Set(wanted.map((w) => w.number))];
  return tx
    .select()
    .from(linkRevision)
    .where(and(inArray(linkRevision.linkId, linkIds), inArray(linkRevision.number, numbers)))
    .all()
    .filter((r) => want.has(`${r.linkId}:${r.number}`));
}
export async function revisions(tx: Db, linkId: number): Promise<RevisionRow[]> {
  return tx.select().from(linkRevision).where(eq(linkRevision.linkId, linkId)).orderBy(asc(linkRevision.number)).all();
}
export const insertRevision = async (tx: Db, row: Omit<RevisionRow, 'id'>): Promise<RevisionRow> => tx.insert(linkRevision).values(row).returning().get();

export const changeById = async (tx: Db, id: number): Promise<ChangeRow | undefined> => tx.select().from(changeRequest).where(eq(changeRequest.id, id)).get();
export async function changes(tx: Db, linkId: number): Promise<ChangeRow[]> {
  return tx.select().from(changeRequest).where(eq(changeRequest.linkId, linkId)).orderBy(asc(changeRequest.id)).all();
}
/** How many change requests wait for NIA's decision, by link (links without any are absent). */
export async function pendingChangeCounts(tx: Db, linkIds: readonly number[]): Promise<Map<number, number>> {
  if (linkIds.length === 0) return new Map();
  const rows = tx
    .select({ linkId: changeRequest.linkId, n: count() })
    .from(changeRequest)
    .where(and(inArray(changeRequest.linkId, [...linkIds]), eq(changeRequest.status, 'pending')))
    .groupBy(changeRequest.linkId)
    .all();
  return new Map(rows.map((r) => [r.linkId, r.n]));
}
export const insertChange = async (tx: Db, row: Omit<ChangeRow, 'id'>): Promise<ChangeRow> => tx.insert(changeRequest).values(row).returning().get();
export async function updateChange(tx: Db, id: number, values: Partial<Omit<ChangeRow, 'id'>>): Promise<void> {
  tx.update(changeRequest).set(values).where(eq(changeRequest.id, id)).run();
}
