import type pg from 'pg';
import { chained, type LogEntry } from '../../usagelog/log';
import type { UsageLogRow } from '../repositories/usageLog';

/*
 * The usage-log append on PostgreSQL, with SQLite's guarantees (src/usagelog/log.ts):
 * - appends are serialised across every process and host by a transaction-scoped advisory lock,
 *   taken inside the caller's transaction and held until it commits or rolls back, so the record
 *   exists if and only if the action it records does;
 * - the head is read after the lock is granted, in its own statement: under READ COMMITTED (the
 *   default) that statement's snapshot sees every record committed before, so seq = previous + 1
 *   and prev_hash = previous hash. A caller in REPEATABLE READ or SERIALIZABLE whose snapshot is
 *   older would read a stale head; the primary key on seq then refuses the record (never a fork);
 * - the record's time is the database's clock (clock_timestamp(), read after the lock), written as
 *   toISOString writes it, and never earlier than the previous record's;
 * - the record is built by the same function as on SQLite (`chained`: well-formed text, canonical
 *   detail, chain.ts digest and hash), so a log copied between dialects verifies byte for byte;
 * - on a drill installation every record carries detail.drill = true, as on SQLite.
 */

/** A connection inside a transaction (pg.PoolClient, pg.Client). */
export type PgTxClient = Pick<pg.ClientBase, 'query'>;

/** The application's advisory-lock key for the usage-log head ('nia-log'). */
export const USAGE_LOG_LOCK = 0x6e69612d6c6f67n;

const COLUMNS = 'seq, at, type, agency, link_id, revision, actor, ip, channel, object, detail, digest, prev_hash, hash';

// Named statements: node-postgres prepares each once per connection.
const LOCK: pg.QueryConfig = { name: 'nia_usage_log_lock', text: 'SELECT pg_advisory_xact_lock($1)' };

/**
 * The head (the newest record, else the newest archive anchor, whose time is not kept), the
 * database's clock in epoch milliseconds, and the installation mode, in one statement.
 */
const HEAD: pg.QueryConfig = {
  name: 'nia_usage_log_head',
  text: `SELECT h.seq::text AS seq, h.hash, h.at,
       floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint::text AS now_ms,
       (SELECT mode FROM installation WHERE id = 1) AS mode
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
  (SELECT seq, hash, at, 0 AS o FROM usage_log ORDER BY seq DESC LIMIT 1)
  UNION ALL
  (SELECT to_seq, last_hash, NULL::text, 1 FROM log_archive ORDER BY to_seq DESC LIMIT 1)
  ORDER BY o LIMIT 1
) AS h ON true`,
};

const INSERT_ONE: pg.QueryConfig = {
  name: 'nia_usage_log_insert',
  text: `INSERT INTO usage_log (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
};

const INSERT_MANY: pg.QueryConfig = {
  name: 'nia_usage_log_insert_many',
  text:
    `INSERT INTO usage_log (${COLUMNS}) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::integer[], ` +
    `$6::integer[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[])`,
};

type Head = { seq: number; hash: string; at: string | null } | undefined;

/** Lock the head, then read it with the database's time. */
async function lockedHead(client: PgTxClient): Promise<{ head: Head; now: Date; drill: boolean }> {
  await client.query({ ...LOCK, values: [USAGE_LOG_LOCK.toString()] });
  const r = await client.query<{ seq: string | null; hash: string | null; at: string | null; now_ms: string; mode: string | null }>(HEAD);
  const row = r.rows[0];
  const head: Head = row.seq === null ? undefined : { seq: Number(row.seq), hash: row.hash as string, at: row.at };
  return { head, now: new Date(Number(row.now_ms)), drill: row.mode === 'drill' };
}

const marked = (entry: LogEntry, drill: boolean): LogEntry => (drill ? { ...entry, detail: { ...entry.detail, drill: true } } : entry);

const values = (r: UsageLogRow): unknown[] => [r.seq, r.at, r.type, r.agency, r.linkId, r.revision, r.actor, r.ip, r.channel, r.object, r.detail, r.digest, r.prevHash, r.hash];

/**
 * Append one record inside the caller's transaction on `client` (BEGIN … COMMIT, READ COMMITTED).
 * Other appends, from any process or host, wait until that transaction ends. `claimed` is the
 * caller's clock: only a drill installation, whose clock may be moved, dates its records by it (never
 * before the head, as `chained` holds); production records take the database's time.
 */
export async function appendLogPg(client: PgTxClient, entry: LogEntry, claimed?: Date): Promise<UsageLogRow> {
  const { head, now, drill } = await lockedHead(client);
  const row = chained(head, marked(entry, drill), drill && claimed ? claimed : now);
  await client.query({ ...INSERT_ONE, values: values(row) });
  return row;
}

/**
 * Append several records, in order, inside the caller's transaction (the online query's group
 * commit): one lock, one head read, one clock reading for the batch, one INSERT. Each record chains
 * on the one before it.
 */
export async function appendLogBatchPg(client: PgTxClient, entries: readonly LogEntry[], claimed?: readonly Date[]): Promise<UsageLogRow[]> {
  if (entries.length === 0) return [];
  const { head, now, drill } = await lockedHead(client);
  const rows: UsageLogRow[] = [];
  let h: Head = head;
  for (const [i, e] of entries.entries()) {
    const row = chained(h, marked(e, drill), drill && claimed?.[i] ? claimed[i] : now);
    rows.push(row);
    h = row;
  }
  const columns: unknown[][] = Array.from({ length: 14 }, () => new Array(rows.length));
  rows.forEach((r, i) => values(r).forEach((v, c) => (columns[c][i] = v)));
  await client.query({ ...INSERT_MANY, values: columns });
  return rows;
}
