import { and, asc, desc, eq, gte, type SQL } from 'drizzle-orm';
import type { ControlDb, Db } from '../index';
import { usageLog } from '../schema';

export type UsageLogRow = typeof usageLog.$inferSelect;

export function head(tx: Db): { seq: number; hash: string } | undefined {
  return tx.select({ seq: usageLog.seq, hash: usageLog.hash }).from(usageLog).orderBy(desc(usageLog.seq)).limit(1).get();
}

export function insert(tx: Db, row: UsageLogRow): void {
  tx.insert(usageLog).values(row).run();
}

export interface LogFilter {
  linkId?: number;
  type?: string;
  since?: string;
  limit?: number;
}

export function list(tx: Db, f: LogFilter): UsageLogRow[] {
  const where: SQL[] = [];
  if (f.linkId !== undefined) where.push(eq(usageLog.linkId, f.linkId));
  if (f.type !== undefined) where.push(eq(usageLog.type, f.type));
  if (f.since !== undefined) where.push(gte(usageLog.at, f.since));
  const q = tx.select().from(usageLog).where(where.length ? and(...where) : undefined).orderBy(asc(usageLog.seq));
  return (f.limit !== undefined ? q.limit(f.limit) : q).all();
}

const ITERATE_SQL =
  'SELECT seq, at, type, agency, link_id AS linkId, revision, actor, ip, channel, object, detail, digest, prev_hash AS prevHash, hash FROM usage_log ORDER BY seq';

/** Every record in seq order, streamed (the log grows to millions of rows over five years). */
export function iterateAll(cdb: ControlDb): IterableIterator<UsageLogRow> {
  return cdb.sqlite.prepare(ITERATE_SQL).iterate() as IterableIterator<UsageLogRow>;
}
