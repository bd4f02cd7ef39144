import { and, asc, count, eq, inArray, sql } from 'drizzle-orm';
import { type Db, perConnection } from '../index';
import type { changeRequest, link, linkRevision } from '../schema';
import { allOf, getOf, isPg, runOf, tablesOf } from '../dialect';

export type LinkRow = typeof link.$inferSelect;
export type RevisionRow = typeof linkRevision.$inferSelect;
export type ChangeRow = typeof changeRequest.$inferSelect;

// Read on every login, push and query: prepared once per connection.
const byIdQuery = perConnection((tx) => {
  const { link } = tablesOf(tx);
  return tx.select().from(link).where(eq(link.id, sql.placeholder('id'))).prepare();
});
export async function byId(tx: Db, id: number): Promise<LinkRow | undefined> {
  if (!isPg(tx)) return byIdQuery(tx).get({ id });
  const { link } = tablesOf(tx);
  return getOf(tx.select().from(link).where(eq(link.id, id)));
}

export async function list(tx: Db, status?: LinkRow['status']): Promise<LinkRow[]> {
  const { link } = tablesOf(tx);
  return allOf(tx.select().from(link).where(status ? eq(link.status, status) : undefined).orderBy(asc(link.id)));
}
export const insert = async (tx: Db, row: Omit<LinkRow, 'id'>): Promise<LinkRow> => {
  const { link } = tablesOf(tx);
  return getOf(tx.insert(link).values(row).returning());
};
export async function update(tx: Db, id: number, values: Partial<Omit<LinkRow, 'id'>>): Promise<void> {
  const { link } = tablesOf(tx);
  await runOf(tx.update(link).set(values).where(eq(link.id, id)));
}

export async function revision(tx: Db, linkId: number, number: number): Promise<RevisionRow | undefined> {
  const { linkRevision } = tablesOf(tx);
  return getOf(tx.select().from(linkRevision).where(and(eq(linkRevision.linkId, linkId), eq(linkRevision.number, number))));
}
/**
 * Several links' revisions at once, each named by link and number: one statement whose size grows
 * with the links, not with their pairs (an OR per pair would nest as deep as there are links).
 */
export async function revisionsAt(tx: Db, wanted: readonly { linkId: number; number: number }[]): Promise<RevisionRow[]> {
  const { linkRevision } = tablesOf(tx);
  if (wanted.length === 0) return [];
  const want = new Set(wanted.map((w) => `${w.linkId}:${w.number}`));
  const linkIds = [...new Set(wanted.map((w) => w.linkId))];
  const numbers = [...new Set(wanted.map((w) => w.number))];
  return (await allOf(tx
    .select()
    .from(linkRevision)
    .where(and(inArray(linkRevision.linkId, linkIds), inArray(linkRevision.number, numbers)))))
    .filter((r) => want.has(`${r.linkId}:${r.number}`));
}
export async function revisions(tx: Db, linkId: number): Promise<RevisionRow[]> {
  const { linkRevision } = tablesOf(tx);
  return allOf(tx.select().from(linkRevision).where(eq(linkRevision.linkId, linkId)).orderBy(asc(linkRevision.number)));
}
export const insertRevision = async (tx: Db, row: Omit<RevisionRow, 'id'>): Promise<RevisionRow> => {
  const { linkRevision } = tablesOf(tx);
  return getOf(tx.insert(linkRevision).values(row).returning());
};

export const changeById = async (tx: Db, id: number): Promise<ChangeRow | undefined> => {
  const { changeRequest } = tablesOf(tx);
  return getOf(tx.select().from(changeRequest).where(eq(changeRequest.id, id)));
};
export async function changes(tx: Db, linkId: number): Promise<ChangeRow[]> {
  const { changeRequest } = tablesOf(tx);
  return allOf(tx.select().from(changeRequest).where(eq(changeRequest.linkId, linkId)).orderBy(asc(changeRequest.id)));
}
/** How many change requests wait for NIA's decision, by link (links without any are absent). */
export async function pendingChangeCounts(tx: Db, linkIds: readonly number[]): Promise<Map<number, number>> {
  const { changeRequest } = tablesOf(tx);
  if (linkIds.length === 0) return new Map();
  const rows = await allOf(tx
    .select({ linkId: changeRequest.linkId, n: count() })
    .from(changeRequest)
    .where(and(inArray(changeRequest.linkId, [...linkIds]), eq(changeRequest.status, 'pending')))
    .groupBy(changeRequest.linkId));
  return new Map(rows.map((r) => [r.linkId, r.n]));
}
export const insertChange = async (tx: Db, row: Omit<ChangeRow, 'id'>): Promise<ChangeRow> => {
  const { changeRequest } = tablesOf(tx);
  return getOf(tx.insert(changeRequest).values(row).returning());
};
export async function updateChange(tx: Db, id: number, values: Partial<Omit<ChangeRow, 'id'>>): Promise<void> {
  const { changeRequest } = tablesOf(tx);
  await runOf(tx.update(changeRequest).set(values).where(eq(changeRequest.id, id)));
}
