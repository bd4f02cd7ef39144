import { and, asc, count, desc, eq, gte, inArray, lt, lte, max, min, type SQL } from 'drizzle-orm';
import type Database from 'better-sqlite3';
import { connectionOf, type Db, perConnection } from '../index';
import type { usageLog } from '../schema';
import { allOf, getOf, isPg, runOf, type Tables, tablesOf } from '../dialect';

export type UsageLogRow = typeof usageLog.$inferSelect;

const COLUMNS = 'seq, at, type, agency, link_id AS linkId, revision, actor, ip, channel, object, detail, digest, prev_hash AS prevHash, hash';
const RAW_COLUMNS = 'seq, at, type, agency, link_id, revision, actor, ip, channel, object, detail, digest, prev_hash, hash';

/**
 * Every action appends a record: its statements are prepared once per connection (drizzle would
 * prepare them anew on each call, which costs more than the hashing).
 */
const statements = perConnection((tx) => {
  const client = connectionOf(tx);
  return {
    head: client.prepare('SELECT seq, hash, at FROM usage_log ORDER BY seq DESC LIMIT 1'),
    anchor: client.prepare('SELECT to_seq AS seq, last_hash AS hash, NULL AS at FROM log_archive ORDER BY to_seq DESC LIMIT 1'),
    insert: client.prepare(`INSERT INTO usage_log (${RAW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
  };
});

/**
 * The newest record's seq and hash: where the next record chains on. When every record has been
 * archived the newest archive anchor is the head, so seq stays contiguous across an archive (its
 * time is not kept: archived records are years old).
 */
export async function head(tx: Db): Promise<{ seq: number; hash: string; at: string | null } | undefined> {
  if (!isPg(tx)) return headNow(tx);
  const { usageLog, logArchive } = tablesOf(tx);
  const r = await getOf(tx.select({ seq: usageLog.seq, hash: usageLog.hash, at: usageLog.at }).from(usageLog).orderBy(desc(usageLog.seq)).limit(1));
  if (r) return r;
  const a = await getOf(tx.select({ seq: logArchive.toSeq, hash: logArchive.lastHash }).from(logArchive).orderBy(desc(logArchive.toSeq)).limit(1));
  return a ? { ...a, at: null } : undefined;
}
export function headNow(tx: Db): { seq: number; hash: string; at: string | null } | undefined {
  const s = statements(tx);
  return (s.head.get() ?? s.anchor.get()) as { seq: number; hash: string; at: string | null } | undefined;
}

/** SQLite's append (PostgreSQL appends through ../pg/usage-log.ts). */
export const insert = async (tx: Db, r: UsageLogRow): Promise<void> => insertNow(tx, r);
/** `insert` without a turn of the event loop, for the SQLite appender thread's group commit. */
export function insertNow(tx: Db, r: UsageLogRow): void {
  // Positional, in RAW_COLUMNS order: binding by name looks each parameter up on the object.
  statements(tx).insert.run(r.seq, r.at, r.type, r.agency, r.linkId, r.revision, r.actor, r.ip, r.channel, r.object, r.detail, r.digest, r.prevHash, r.hash);
}

export interface LogFilter {
  linkId?: number;
  type?: string;
  since?: string;
  limit?: number;
}

export async function list(tx: Db, f: LogFilter): Promise<UsageLogRow[]> {
  const { usageLog } = tablesOf(tx);
  const where: SQL[] = [];
  if (f.linkId !== undefined) where.push(eq(usageLog.linkId, f.linkId));
  if (f.type !== undefined) where.push(eq(usageLog.type, f.type));
  if (f.since !== undefined) where.push(gte(usageLog.at, f.since));
  const q = tx.select().from(usageLog).where(where.length ? and(...where) : undefined).orderBy(asc(usageLog.seq));
  return allOf(f.limit !== undefined ? q.limit(f.limit) : q);
}

export const bySeq = async (tx: Db, seq: number): Promise<UsageLogRow | undefined> => {
  const { usageLog } = tablesOf(tx);
  return getOf(tx.select().from(usageLog).where(eq(usageLog.seq, seq)));
};

/** Records after `seq`, oldest first, at most `limit` (the anomaly scan reads the log in batches). */
export async function after(tx: Db, seq: number, limit: number): Promise<UsageLogRow[]> {
  const { usageLog } = tablesOf(tx);
  return allOf(tx.select().from(usageLog).where(gte(usageLog.seq, seq + 1)).orderBy(asc(usageLog.seq)).limit(limit));
}

/** Remove records up to `seq` inside the archiving transaction (the delete guard allows only archived seqs). */
export async function deleteThrough(tx: Db, seq: number): Promise<number> {
  const { usageLog } = tablesOf(tx);
  return runOf(tx.delete(usageLog).where(lte(usageLog.seq, seq)));
}

/** Records with from ≤ seq ≤ to, in seq order, streamed. */
export function iterateRange(sqlite: Database.Database, from: number, to: number): IterableIterator<UsageLogRow> {
  return sqlite.prepare(`SELECT ${COLUMNS} FROM usage_log WHERE seq BETWEEN ? AND ? ORDER BY seq`).iterate(from, to) as IterableIterator<UsageLogRow>;
}

/** One record by seq, on a bare connection (a verify thread has no drizzle). */
export function rowAt(sqlite: Database.Database, seq: number): UsageLogRow | undefined {
  return sqlite.prepare(`SELECT ${COLUMNS} FROM usage_log WHERE seq = ?`).get(seq) as UsageLogRow | undefined;
}

/**
 * The text a record's digest is the SHA-256 of (chain.ts `recordDigestOf`), built by SQLite:
 * json_quote escapes as JSON.stringify does, so verify reads five columns instead of fourteen.
 * Where the two could differ (text that is not well-formed UTF-16 in JS) the verifier re-checks
 * the record in JS before calling it edited.
 */
const CANONICAL_SQL =
  `'{"actor":'||json_quote(actor)||',"agency":'||json_quote(agency)||',"at":'||json_quote(at)||',"channel":'||json_quote(channel)||` +
  `',"detail":'||json_quote(detail)||',"ip":'||json_quote(ip)||',"link":'||json_quote(link_id)||',"object":'||json_quote(object)||` +
  `',"revision":'||json_quote(revision)||',"seq":'||seq||',"type":'||json_quote(type)||'}'`;

/** [seq, canonical text, digest, prev_hash, hash] of records from..to, in seq order, streamed. */
export function iterateCanonical(sqlite: Database.Database, from: number, to: number): IterableIterator<[number, string, string, string, string]> {
  return sqlite.prepare(`SELECT seq, ${CANONICAL_SQL}, digest, prev_hash, hash FROM usage_log WHERE seq BETWEEN ? AND ? ORDER BY seq`).raw(true).iterate(from, to) as IterableIterator<[number, string, string, string, string]>;
}

/** Lowest and highest seq present from `from` on, and how many records (either dialect). */
export async function bounds(db: Db, from = 1): Promise<{ min: number | null; max: number | null; count: number }> {
  const { usageLog } = tablesOf(db);
  const r = await getOf(db.select({ min: min(usageLog.seq), max: max(usageLog.seq), count: count() }).from(usageLog).where(gte(usageLog.seq, from)));
  return { min: r?.min ?? null, max: r?.max ?? null, count: r?.count ?? 0 };
}

/** The first record from seq `from` on whose time is at or after `at` (either dialect). */
export async function firstSeqAtOrAfter(db: Db, at: string, from = 1): Promise<number | null> {
  const { usageLog } = tablesOf(db);
  return (await getOf(db.select({ seq: min(usageLog.seq) }).from(usageLog).where(and(gte(usageLog.seq, from), gte(usageLog.at, at)))))?.seq ?? null;
}

/** The last record whose time is before `at` (either dialect). */
export async function lastSeqBefore(db: Db, at: string): Promise<number | null> {
  const { usageLog } = tablesOf(db);
  return (await getOf(db.select({ seq: max(usageLog.seq) }).from(usageLog).where(lt(usageLog.at, at))))?.seq ?? null;
}

/** How many records a page of a streamed read holds: memory stays flat however long the log. */
const PAGE = 5000;

/**
 * Records with from ≤ seq ≤ to and matching `where`, in seq order, read a page at a time by seq
 * (either dialect; the log is append-only, so the pages of a range add up to the range).
 */
async function* pages(db: Db, from: number, to: number, where: (t: Tables['usageLog']) => SQL | undefined): AsyncGenerator<UsageLogRow> {
  const { usageLog } = tablesOf(db);
  let next = from;
  for (;;) {
    const rows = await allOf(
      db
        .select()
        .from(usageLog)
        .where(and(gte(usageLog.seq, next), lte(usageLog.seq, to), where(usageLog)))
        .orderBy(asc(usageLog.seq))
        .limit(PAGE),
    );
    yield* rows;
    if (rows.length < PAGE) return;
    next = rows[rows.length - 1].seq + 1;
  }
}

/** Records with from ≤ seq ≤ to, in seq order, streamed (either dialect). */
export const rowsIn = (db: Db, from: number, to: number): AsyncGenerator<UsageLogRow> => pages(db, from, to, () => undefined);

/** Records of one link or agency with fromAt ≤ at < toAt, in seq order, streamed (either dialect). */
export function scopeRows(db: Db, f: ScopeFilter): AsyncGenerator<UsageLogRow> {
  return pages(db, 1, Number.MAX_SAFE_INTEGER, (t) =>
    and(
      gte(t.at, f.fromAt),
      lt(t.at, f.toAt),
      f.linkId !== undefined ? eq(t.linkId, f.linkId) : undefined,
      f.agency !== undefined ? eq(t.agency, f.agency) : undefined,
      f.types?.length ? inArray(t.type, [...f.types]) : undefined,
    ),
  );
}

export interface ScopeFilter {
  fromAt: string;
  toAt: string;
  linkId?: number;
  agency?: string;
  types?: readonly string[];
}

/** Records of these types with fromAt ≤ at ≤ toAt, optionally of one link or source IP (the anomaly rules' look-back). */
export async function window(tx: Db, f: { types: readonly string[]; fromAt: string; toAt: string; linkId?: number; ip?: string; object?: string }): Promise<UsageLogRow[]> {
  const { usageLog } = tablesOf(tx);
  const where: SQL[] = [inArray(usageLog.type, [...f.types]), gte(usageLog.at, f.fromAt), lte(usageLog.at, f.toAt)];
  if (f.linkId !== undefined) where.push(eq(usageLog.linkId, f.linkId));
  if (f.ip !== undefined) where.push(eq(usageLog.ip, f.ip));
  if (f.object !== undefined) where.push(eq(usageLog.object, f.object));
  return allOf(tx.select().from(usageLog).where(and(...where)).orderBy(asc(usageLog.seq)));
}

/** The link's newest record of one of these types before `seq` (its status history, from the log itself). */
export async function lastOfTypes(tx: Db, linkId: number, beforeSeq: number, types: readonly string[]): Promise<UsageLogRow | undefined> {
  const { usageLog } = tablesOf(tx);
  return getOf(tx
    .select()
    .from(usageLog)
    .where(and(eq(usageLog.linkId, linkId), lte(usageLog.seq, beforeSeq - 1), inArray(usageLog.type, [...types])))
    .orderBy(desc(usageLog.seq))
    .limit(1));
}
