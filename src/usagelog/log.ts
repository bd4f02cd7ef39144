import type { ControlDb, Db } from '../db';
import { type InstallationMode, modeNow, modeOf } from '../db/repositories/installation';
import { isPg } from '../db/dialect';
import { pgClientOf } from '../db/pg/control';
import { appendLogBatchPg, appendLogPg } from '../db/pg/usage-log';
import * as repo from '../db/repositories/usageLog';
import { canonicalJson, chainHash, GENESIS_HASH, recordDigest } from './chain';
import { checkChain } from './verify';
import { liveStart } from './walk';

/** What an action says about itself; the log adds seq, time and the chain. */
export interface LogEntry {
  type: string;
  agency?: string | null;
  linkId?: number | null;
  revision?: number | null;
  actor?: string | null;
  ip?: string | null;
  channel?: string | null;
  object?: string | null;
  detail?: Record<string, unknown>;
}

/**
 * Text as SQLite will store it: a lone UTF-16 surrogate (a name from the network) cannot be stored
 * as UTF-8, so it is replaced before the digest is taken, never after.
 */
function text<T extends string | null | undefined>(v: T): T extends string ? string : null {
  return (typeof v === 'string' ? (v as unknown as { toWellFormed(): string }).toWellFormed() : null) as T extends string ? string : null;
}

/**
 * Append one record inside the caller's write transaction, so the record exists if and only if the
 * action it records does. The head is read inside the same transaction: never cached, since other
 * processes append too.
 *
 * R6.6: a record's time is when it was written. `now` is the caller's clock, read before the
 * transaction (which may wait for another process's lock), so a record is never dated before the
 * head it chains on: the log's times follow its order, and the verifier holds it to that.
 */
export async function appendLog(tx: Db, entry: LogEntry, now: Date): Promise<repo.UsageLogRow> {
  if (isPg(tx)) return appendLogPg(pgClientOf(tx), entry, now); // the database's clock (a drill's: `now`), after its lock
  const row = chained(await repo.head(tx), marked(entry, await modeOf(tx)), now);
  await repo.insert(tx, row);
  return row;
}

/**
 * Append several records, in order, inside the caller's write transaction (a group commit): the head
 * is read once, inside the transaction, and each record chains on the one before.
 */
export function appendLogBatch(tx: Db, records: readonly { entry: LogEntry; now: Date }[]): void {
  let h: { seq: number; hash: string; at: string | null } | undefined = repo.headNow(tx);
  const mode = modeNow(tx);
  for (const r of records) {
    const row = chained(h, marked(r.entry, mode), r.now);
    repo.insertNow(tx, row);
    h = row;
  }
}

/** `appendLogBatch` on either dialect (PostgreSQL: one statement, the database's clock). */
export async function appendLogMany(tx: Db, records: readonly { entry: LogEntry; now: Date }[]): Promise<void> {
  if (isPg(tx)) await appendLogBatchPg(pgClientOf(tx), records.map((r) => r.entry), records.map((r) => r.now));
  else appendLogBatch(tx, records);
}

/** On a drill installation every record says so: a drill's records are never mistaken for real use. */
function marked(entry: LogEntry, mode: InstallationMode | undefined): LogEntry {
  return mode === 'drill' ? { ...entry, detail: { ...entry.detail, drill: true } } : entry;
}

/** The record that follows `h` (none: the first record). Both dialects' appends build records with it. */
export function chained(h: { seq: number; hash: string; at: string | null } | undefined, entry: LogEntry, now: Date): repo.UsageLogRow {
  const at = now.toISOString();
  const body = {
    seq: (h?.seq ?? 0) + 1,
    // Same-format ISO instants order as text.
    at: h?.at && h.at > at ? h.at : at,
    type: text(entry.type),
    agency: text(entry.agency),
    linkId: entry.linkId ?? null,
    revision: entry.revision ?? null,
    actor: text(entry.actor),
    ip: text(entry.ip),
    channel: text(entry.channel),
    object: text(entry.object),
    detail: canonicalJson(entry.detail ?? {}),
  };
  const digest = recordDigest(body);
  const prevHash = h?.hash ?? GENESIS_HASH;
  return { ...body, digest, prevHash, hash: chainHash(prevHash, digest) };
}

export interface VerifyResult {
  ok: boolean;
  records: number;
  firstSeq: number | null;
  lastSeq: number | null;
  headHash: string | null;
  /** The first record that does not verify, and why. */
  bad?: { seq: number; reason: string };
}

/**
 * R6.3, the quick check: walk the live chain (from the newest archive anchor on); any edited,
 * removed, inserted or reordered record breaks it at a named seq. `verifyUsageLog` adds anchors,
 * archives and checkpoints.
 */
export async function verifyLog(cdb: ControlDb): Promise<VerifyResult> {
  const start = await liveStart(cdb);
  const max = (await repo.bounds(cdb.db, start.seq)).max;
  if (max === null) return { ok: true, records: 0, firstSeq: null, lastSeq: null, headHash: null };
  const r = await checkChain(cdb, start.seq, max, start.prevHash);
  return { ok: !r.bad, records: r.count, firstSeq: r.first, lastSeq: r.last, headHash: r.lastHash, ...(r.bad ? { bad: r.bad } : {}) };
}

export const listLog = (db: Db, f: repo.LogFilter) => repo.list(db, f);
