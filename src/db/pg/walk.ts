import os from 'node:os';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { GENESIS_HASH } from '../../usagelog/chain';
import { ChainWalker, joinRanges, type RangeResult } from '../../usagelog/walk';
import { threadScript } from '../../paths';
import { checkout } from './connect';

/*
 * The usage-log walk on PostgreSQL. Every digest and hash is computed here, in JavaScript, from the
 * stored values: the server only hands rows over (a server whose functions someone replaced cannot
 * vouch for its own records). Large logs are split into seq ranges walked by threads, each on its own
 * connection, and joined as on SQLite (walk.ts joinRanges).
 */

/** Records per round trip. */
const PAGE = 20_000;
/** Below this many records one thread is faster than starting several. */
const THREADED_FROM = 200_000;
const WALK_THREAD = threadScript('db/pg/walk-thread');

const PAGE_SQL =
  'SELECT seq::text, at, type, agency, link_id, revision, actor, ip, channel, object, detail, digest, prev_hash, hash FROM usage_log WHERE usage_log.seq BETWEEN $1 AND $2 ORDER BY usage_log.seq';
type Row = [string, string, string, string | null, number | null, number | null, string | null, string | null, string | null, string | null, string, string, string, string];

/** Walk records from..to on `client`, chained on `prevHash` (null: a range of a split walk takes its first record's). */
export async function walkRange(client: pg.ClientBase, from: number, to: number, prevHash: string | null, watch: ReadonlySet<number> = new Set()): Promise<RangeResult> {
  const w = new ChainWalker({ seq: from, prevHash }, watch);
  // A page is a seq span (a gap inside it is the walker's to name), read by the primary key's index;
  // the next page is asked for before this one is checked, so the server reads while this hashes.
  const page = (a: number) => client.query<Row>({ text: PAGE_SQL, values: [a, Math.min(to, a + PAGE - 1)], rowMode: 'array' });
  let next = from;
  let pending = next <= to ? page(next) : undefined;
  while (pending) {
    const r = await pending;
    next = Math.min(to, next + PAGE - 1) + 1;
    pending = next <= to ? page(next) : undefined;
    for (const x of r.rows) {
      if (!w.full(Number(x[0]), x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9], x[10], x[11], x[12], x[13])) break;
    }
    if (!w.ok) {
      await pending?.catch(() => undefined); // asked for already: let it finish before the connection is reused
      break;
    }
  }
  w.expectEnd(to);
  return { from, to, count: w.count, first: w.first, last: w.last, firstPrevHash: w.firstPrevHash, lastHash: w.last !== null ? w.prevHash : null, firstAt: w.firstAt, lastAt: w.lastAt, bad: w.bad, hashes: [...w.hashes] };
}

/**
 * Walk records from..to chained on `prevHash`: on one connection of `pool` for small ranges, else
 * split into seq ranges walked by `threads` threads (default: one per core, up to 4), each on its
 * own connection to `url`, and joined. Remembers the hashes at the `watch`ed seqs.
 */
export async function walkPgRange(url: string, pool: pg.Pool | pg.Client, from: number, to: number, prevHash: string, watch: ReadonlySet<number> = new Set(), threads?: number): Promise<RangeResult> {
  const n = to - from + 1;
  const t = Math.max(1, threads ?? (n >= THREADED_FROM ? Math.min(os.availableParallelism(), 4) : 1));
  if (t === 1 || n < 2 * t) {
    if (pool instanceof pg.Client) return walkRange(pool, from, to, prevHash, watch);
    const { client, release } = await checkout(pool);
    try {
      return await walkRange(client, from, to, prevHash, watch);
    } finally {
      release();
    }
  }
  const size = Math.ceil(n / t);
  const ranges = Array.from({ length: t }, (_, i) => ({ from: from + i * size, to: Math.min(to, from + (i + 1) * size - 1) })).filter((r) => r.from <= r.to);
  const parts = await Promise.all(ranges.map((r) => inThread(url, r.from, r.to, [...watch].filter((s) => s >= r.from && s <= r.to))));
  return joinRanges(parts, from, to, prevHash);
}

export interface PgWalkResult {
  records: number;
  firstSeq: number | null;
  lastSeq: number | null;
  head: string | null;
  verified: boolean;
  bad?: RangeResult['bad'];
}

/**
 * Walk the live usage log of the PostgreSQL database at `url`: from after the newest archive anchor
 * (or the genesis) to the last record, on `threads` threads (default: one per core, up to 4, for
 * large logs).
 */
export async function walkPgLog(url: string, opts: { threads?: number } = {}): Promise<PgWalkResult> {
  const client = new pg.Client({ connectionString: url, application_name: 'nia-link verify' });
  client.on('error', () => undefined); // a dropped connection fails the statement in flight; unheard, it would end the process
  await client.connect();
  let start: { seq: number; prevHash: string };
  let max: number | null;
  let result: RangeResult;
  try {
    const a = await client.query<{ to_seq: string; last_hash: string }>('SELECT to_seq::text, last_hash FROM log_archive ORDER BY log_archive.to_seq DESC LIMIT 1');
    start = a.rows[0] ? { seq: Number(a.rows[0].to_seq) + 1, prevHash: a.rows[0].last_hash } : { seq: 1, prevHash: GENESIS_HASH };
    const b = await client.query<{ max: string | null }>('SELECT max(seq)::text AS max FROM usage_log WHERE seq >= $1', [start.seq]);
    max = b.rows[0].max === null ? null : Number(b.rows[0].max);
    if (max === null) return { records: 0, firstSeq: null, lastSeq: null, head: null, verified: true };
    result = await walkPgRange(url, client, start.seq, max, start.prevHash, new Set(), opts.threads);
  } finally {
    await client.end();
  }
  return { records: result.count, firstSeq: result.first, lastSeq: result.last, head: result.lastHash, verified: !result.bad, ...(result.bad ? { bad: result.bad } : {}) };
}

function inThread(url: string, from: number, to: number, watch: number[]): Promise<RangeResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WALK_THREAD, { workerData: { url, from, to, watch } });
    w.once('message', (m: RangeResult | { error: string }) => ('error' in m ? reject(new Error(`usage-log walk thread: ${m.error}`)) : resolve(m)));
    w.once('error', reject);
    w.once('exit', (code) => code !== 0 && reject(new Error(`usage-log walk thread exited with ${code}`)));
  });
}
