import type { ControlDb, Db } from '../db';
import * as repo from '../db/repositories/usageLog';
import { canonicalJson, chainHash, GENESIS_HASH, recordDigest } from './chain';

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
 * Append one record inside the caller's write transaction, so the record exists if and only if the
 * action it records does. The head is read inside the same transaction: never cached, since other
 * processes append too.
 */
export function appendLog(tx: Db, entry: LogEntry, now: Date): repo.UsageLogRow {
  const h = repo.head(tx);
  const body = {
    seq: (h?.seq ?? 0) + 1,
    at: now.toISOString(),
    type: entry.type,
    agency: entry.agency ?? null,
    linkId: entry.linkId ?? null,
    revision: entry.revision ?? null,
    actor: entry.actor ?? null,
    ip: entry.ip ?? null,
    channel: entry.channel ?? null,
    object: entry.object ?? null,
    detail: canonicalJson(entry.detail ?? {}),
  };
  const digest = recordDigest(body);
  const prevHash = h?.hash ?? GENESIS_HASH;
  const row = { ...body, digest, prevHash, hash: chainHash(prevHash, digest) };
  repo.insert(tx, row);
  return row;
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

/** R6.3: walk the chain; any edited, removed, inserted or reordered record breaks it at a named seq. */
export function verifyLog(cdb: ControlDb): VerifyResult {
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1;
  let records = 0;
  let firstSeq: number | null = null;
  let lastSeq: number | null = null;
  for (const r of repo.iterateAll(cdb)) {
    const fail = (reason: string): VerifyResult => ({ ok: false, records, firstSeq, lastSeq, headHash: prevHash, bad: { seq: r.seq, reason } });
    if (firstSeq === null) firstSeq = r.seq;
    if (r.seq !== expectedSeq) {
      return { ok: false, records, firstSeq, lastSeq, headHash: prevHash, bad: { seq: expectedSeq, reason: `record ${expectedSeq} is missing (next present is ${r.seq})` } };
    }
    if (r.prevHash !== prevHash) return fail('prev_hash does not match the previous record');
    if (recordDigest(r) !== r.digest) return fail('record content does not match its digest (edited)');
    if (chainHash(r.prevHash, r.digest) !== r.hash) return fail('hash does not match prev_hash and digest');
    prevHash = r.hash;
    expectedSeq = r.seq + 1;
    lastSeq = r.seq;
    records++;
  }
  return { ok: true, records, firstSeq, lastSeq, headHash: records ? prevHash : null };
}

export const listLog = (db: Db, f: repo.LogFilter) => repo.list(db, f);
