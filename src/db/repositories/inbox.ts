import { and, asc, count, desc, eq, gte, inArray, lt, sum } from 'drizzle-orm';
import type { Db } from '../index';
import { type InboxUploadState, inboxUpload } from '../schema';

export type InboxUploadRow = typeof inboxUpload.$inferSelect;
export type { InboxUploadState };

/** Uploads that still wait for an answer: they hold their name and count against the link's quota. */
const OPEN_STATES: InboxUploadState[] = ['pending', 'processing'];

/** Record a received upload; returns its id. */
export async function insertUpload(tx: Db, row: Omit<InboxUploadRow, 'id' | 'state' | 'outcomeCode' | 'outcomeAt' | 'outcome'>): Promise<number> {
  return tx.insert(inboxUpload).values({ ...row, state: 'pending' }).returning({ id: inboxUpload.id }).get().id;
}

export const uploadById = async (db: Db, id: number): Promise<InboxUploadRow | undefined> => db.select().from(inboxUpload).where(eq(inboxUpload.id, id)).get();

/** The link's uploads still waiting for an answer, oldest first. */
export async function pendingUploads(db: Db, linkId: number): Promise<InboxUploadRow[]> {
  return db
    .select()
    .from(inboxUpload)
    .where(and(eq(inboxUpload.linkId, linkId), inArray(inboxUpload.state, OPEN_STATES)))
    .orderBy(asc(inboxUpload.id))
    .all();
}

/** How many files and bytes of the link wait for an answer (the pending quota). */
export async function pendingStats(db: Db, linkId: number): Promise<{ files: number; bytes: number }> {
  const r = db
    .select({ files: count(), bytes: sum(inboxUpload.bytes) })
    .from(inboxUpload)
    .where(and(eq(inboxUpload.linkId, linkId), inArray(inboxUpload.state, OPEN_STATES)))
    .get();
  return { files: r?.files ?? 0, bytes: Number(r?.bytes ?? 0) };
}

/** How many uploads of the link were received at or after `sinceIso`, whatever became of them. */
export async function uploadsSince(db: Db, linkId: number, sinceIso: string): Promise<number> {
  const r = db
    .select({ n: count() })
    .from(inboxUpload)
    .where(and(eq(inboxUpload.linkId, linkId), gte(inboxUpload.receivedAt, sinceIso)))
    .get();
  return r?.n ?? 0;
}

/** Move an upload to a new state, with the outcome the processor reached. */
export async function setState(
  tx: Db,
  id: number,
  state: InboxUploadState,
  opts: { code?: string | null; outcome?: Record<string, unknown> | null; at: string },
): Promise<void> {
  const values: Partial<InboxUploadRow> = { state, outcomeAt: opts.at };
  if (opts.code !== undefined) values.outcomeCode = opts.code;
  if (opts.outcome !== undefined) values.outcome = opts.outcome;
  tx.update(inboxUpload).set(values).where(eq(inboxUpload.id, id)).run();
}

/** Uploads, newest first (all links, or one). */
export async function uploadsOf(db: Db, opts: { linkId?: number; limit?: number } = {}): Promise<InboxUploadRow[]> {
  return db
    .select()
    .from(inboxUpload)
    .where(opts.linkId !== undefined ? eq(inboxUpload.linkId, opts.linkId) : undefined)
    .orderBy(desc(inboxUpload.id))
    .limit(opts.limit ?? 1000)
    .all();
}

/** Uploads still waiting that were received before `olderThanIso` (a lost job, a crashed worker), oldest first. */
export async function stalePending(db: Db, olderThanIso: string): Promise<InboxUploadRow[]> {
  return db
    .select()
    .from(inboxUpload)
    .where(and(inArray(inboxUpload.state, OPEN_STATES), lt(inboxUpload.receivedAt, olderThanIso)))
    .orderBy(asc(inboxUpload.id))
    .all();
}
