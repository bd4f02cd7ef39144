import { and, asc, count, desc, eq, gte, inArray, lt } from 'drizzle-orm';
import type { Db } from '../index';
import type { InboxUploadState, inboxUpload } from '../schema';
import { allOf, getOf, runOf, tablesOf } from '../dialect';

export type InboxUploadRow = typeof inboxUpload.$inferSelect;
export type { InboxUploadState };

/** Uploads that still wait for an answer: they hold their name and count against the link's quota. */
const OPEN_STATES: InboxUploadState[] = ['pending', 'processing'];

/** Record a received upload; returns its id. */
export async function insertUpload(tx: Db, row: Omit<InboxUploadRow, 'id' | 'state' | 'outcomeCode' | 'outcomeAt' | 'outcome'>): Promise<number> {
  const { inboxUpload } = tablesOf(tx);
  return (await getOf(tx.insert(inboxUpload).values({ ...row, state: 'pending' }).returning({ id: inboxUpload.id }))).id;
}

export const uploadById = async (db: Db, id: number): Promise<InboxUploadRow | undefined> => {
  const { inboxUpload } = tablesOf(db);
  return getOf(db.select().from(inboxUpload).where(eq(inboxUpload.id, id)));
};

/** The link's uploads still waiting for an answer, oldest first. */
export async function pendingUploads(db: Db, linkId: number): Promise<InboxUploadRow[]> {
  const { inboxUpload } = tablesOf(db);
  return allOf(db
    .select()
    .from(inboxUpload)
    .where(and(eq(inboxUpload.linkId, linkId), inArray(inboxUpload.state, OPEN_STATES)))
    .orderBy(asc(inboxUpload.id)));
}

/** How many uploads of the link were received at or after `sinceIso`, whatever became of them. */
export async function uploadsSince(db: Db, linkId: number, sinceIso: string): Promise<number> {
  const { inboxUpload } = tablesOf(db);
  const r = await getOf(db
    .select({ n: count() })
    .from(inboxUpload)
    .where(and(eq(inboxUpload.linkId, linkId), gte(inboxUpload.receivedAt, sinceIso))));
  return r?.n ?? 0;
}

/** Move an upload to a new state, with the outcome the processor reached. */
export async function setState(
  tx: Db,
  id: number,
  state: InboxUploadState,
  opts: { code?: string | null; outcome?: Record<string, unknown> | null; at: string },
): Promise<void> {
  const { inboxUpload } = tablesOf(tx);
  const values: Partial<InboxUploadRow> = { state, outcomeAt: opts.at };
  if (opts.code !== undefined) values.outcomeCode = opts.code;
  if (opts.outcome !== undefined) values.outcome = opts.outcome;
  await runOf(tx.update(inboxUpload).set(values).where(eq(inboxUpload.id, id)));
}

/** Uploads, newest first (all links, or one). */
export async function uploadsOf(db: Db, opts: { linkId?: number; limit?: number } = {}): Promise<InboxUploadRow[]> {
  const { inboxUpload } = tablesOf(db);
  return allOf(db
    .select()
    .from(inboxUpload)
    .where(opts.linkId !== undefined ? eq(inboxUpload.linkId, opts.linkId) : undefined)
    .orderBy(desc(inboxUpload.id))
    .limit(opts.limit ?? 1000));
}

/** Uploads still waiting that were received before `olderThanIso` (a lost job, a crashed worker), oldest first. */
export async function stalePending(db: Db, olderThanIso: string): Promise<InboxUploadRow[]> {
  const { inboxUpload } = tablesOf(db);
  return allOf(db
    .select()
    .from(inboxUpload)
    .where(and(inArray(inboxUpload.state, OPEN_STATES), lt(inboxUpload.receivedAt, olderThanIso)))
    .orderBy(asc(inboxUpload.id)));
}
