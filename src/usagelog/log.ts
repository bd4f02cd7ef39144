import type { ControlDb, Db } from '../db';
import * as repo from '../db/repositories/usageLog';
import { canonicalJson, chainHash, GENESIS_HASH, recordDigest } from './chain';
import { checkRange, liveStart } from './walk';

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
 */
export function appendLog(tx: Db, entry: LogEntry, now: Date): repo.UsageLogRow {
  const row = chained(repo.head(tx), entry, now);
  repo.insert(tx, row);
  return row;
}

/**
 * Append several records, in order, inside the caller's write transaction (a group commit): the head
 * is read once, inside the transaction, and each record chains on the one before.
 */
export function appendLogBatch(tx: Db, records: readonly { entry: LogEntry; now: Date }[]): void {
  let h = repo.head(tx);
  for (const r of records) {
    const row = chained(h, r.entry, r.now);
    repo.insert(tx, row);
    h = row;
  }
}

/** The record that follows `h` (none: the first record). */
function chained(h: { seq: number; hash: string } | undefined, entry: LogEntry, now: Date): repo.UsageLogRow {
  const body = {
    seq: (h?.seq ?? 0) + 1,
    at: now.toISOString(),
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
export function verifyLog(cdb: ControlDb): VerifyResult {
  const start = liveStart(cdb);
  const max = repo.bounds(cdb.sqlite, start.seq).max;
  if (max === null) return { ok: true, records: 0, firstSeq: null, lastSeq: null, headHash: null };
  const r = checkRange(cdb.sqlite, start.seq, max, start.prevHash);
  return { ok: !r.bad, records: r.count, firstSeq: r.first, lastSeq: r.last, headHash: r.lastHash, ...(r.bad ? { bad: r.bad } : {}) };
}

export const listLog = (db: Db, f: repo.LogFilter) => repo.list(db, f);
