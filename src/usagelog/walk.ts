import type Database from 'better-sqlite3';
import type { ControlDb } from '../db';
import * as archives from '../db/repositories/logArchives';
import * as repo from '../db/repositories/usageLog';
import { chainHash, GENESIS_HASH, recordDigestOf, sha256Hex, type LogRecordBody } from './chain';

/** Where a walk of the live log starts: after the newest archive, or at the genesis. */
export async function liveStart(cdb: ControlDb): Promise<{ seq: number; prevHash: string }> {
  const a = await archives.newest(cdb.db);
  return a ? { seq: a.toSeq + 1, prevHash: a.lastHash } : { seq: 1, prevHash: GENESIS_HASH };
}

/** The first record that does not verify, and why; `range` when only a span can be named. */
export interface ChainBad {
  seq: number;
  reason: string;
  range?: [number, number];
}

/** A record in its stored form, as archives and evidence packages carry it. */
export interface StoredRecord extends LogRecordBody {
  digest: string;
  prevHash: string;
  hash: string;
}

/** Milliseconds of an ISO instant; NaN for anything else. */
function instant(at: string): number {
  return Date.parse(at);
}

/**
 * R6.6: a record is written at its own time, so no record is older than the one before it. A
 * back-dated record re-chained by someone holding the file passes every hash; this is what shows it.
 */
export function timeOrder(seq: number, at: string, previousAt: string | null): string | null {
  // toISOString's form orders as text: parse only what is not in it.
  if (previousAt !== null && at.length === 24 && previousAt.length === 24 && at.endsWith('Z') && previousAt.endsWith('Z')) {
    return at >= previousAt ? null : `record ${seq} is dated ${at}, before record ${seq - 1} (${previousAt}): a record older than the one before it (back-dated)`;
  }
  const t = instant(at);
  if (Number.isNaN(t)) return `record ${seq} has no valid time (${JSON.stringify(at)})`;
  if (previousAt === null) return null;
  const p = instant(previousAt);
  return Number.isNaN(p) || t >= p ? null : `record ${seq} is dated ${at}, before record ${seq - 1} (${previousAt}): a record older than the one before it (back-dated)`;
}

/** The `at` of a record's canonical text (repositories/usageLog CANONICAL_SQL): `…,"at":"<iso>",…`. */
export function atOfCanonical(text: string): string {
  const i = text.indexOf(',"at":"');
  if (i < 0) return '';
  const from = i + 7;
  const end = text.indexOf('"', from);
  return end < 0 ? '' : text.slice(from, end);
}

/**
 * Walks records in seq order and checks each against the one before: seq contiguous, prev_hash the
 * previous hash, digest the record's content, hash = SHA-256(prev_hash ‖ digest), and its time not
 * before the previous record's. Stops at the first bad record. Remembers the hash at the watched seqs
 * (checkpoints) for the caller to compare.
 */
export class ChainWalker {
  next: number;
  /** The hash the next record must chain on; null: take the first record's prev_hash (a range of a split walk). */
  prevHash: string | null;
  /** The prev_hash of the first record walked. */
  firstPrevHash: string | null = null;
  count = 0;
  first: number | null = null;
  last: number | null = null;
  /** Times of the first and the last record walked (digest-only records have none to show). */
  firstAt: string | null = null;
  lastAt: string | null = null;
  bad: ChainBad | undefined;
  readonly hashes = new Map<number, string>();

  constructor(start: { seq: number; prevHash: string | null }, private readonly watch: ReadonlySet<number> = new Set()) {
    this.next = start.seq;
    this.prevHash = start.prevHash;
  }

  get ok(): boolean {
    return this.bad === undefined;
  }

  private fail(seq: number, reason: string): false {
    this.bad = { seq, reason };
    return false;
  }

  private order(seq: number): boolean {
    if (seq === this.next) return true;
    if (typeof seq === 'number' && seq > this.next) return this.fail(this.next, `record ${this.next} is missing (next present is ${seq})`);
    return this.fail(this.next, `record ${this.next} is missing (found ${String(seq)} in its place)`);
  }

  /** The record's time against the one before it (none known: a range's first record, or after a digest-only one). */
  private timed(seq: number, at: string | undefined): boolean {
    if (at === undefined) return true;
    const wrong = timeOrder(seq, at, this.lastAt);
    if (wrong) return this.fail(seq, wrong);
    this.firstAt ??= at;
    this.lastAt = at;
    return true;
  }

  private accept(seq: number, prevHash: string, hash: string): true {
    if (this.first === null) {
      this.first = seq;
      this.firstPrevHash = prevHash;
    }
    if (this.watch.has(seq)) this.hashes.set(seq, hash);
    this.prevHash = hash;
    this.next = seq + 1;
    this.last = seq;
    this.count++;
    return true;
  }

  /** A record in full. */
  full(
    seq: number, at: string, type: string, agency: string | null, linkId: number | null, revision: number | null, actor: string | null,
    ip: string | null, channel: string | null, object: string | null, detail: string, digest: string, prevHash: string, hash: string,
  ): boolean {
    if (this.bad || !this.order(seq)) return false;
    if (this.prevHash === null) this.prevHash = prevHash;
    if (prevHash !== this.prevHash) return this.fail(seq, 'prev_hash does not match the previous record');
    if (recordDigestOf(seq, at, type, agency, linkId, revision, actor, ip, channel, object, detail) !== digest) return this.fail(seq, 'record content does not match its digest (edited)');
    if (chainHash(prevHash, digest) !== hash) return this.fail(seq, 'hash does not match prev_hash and digest');
    if (!this.timed(seq, at)) return false;
    return this.accept(seq, prevHash, hash);
  }

  /** A record whose content was checked against its digest by the caller (`contentOk`); `at` its time. */
  checked(seq: number, digest: string, prevHash: string, hash: string, contentOk: boolean, at?: string): boolean {
    if (this.bad || !this.order(seq)) return false;
    if (this.prevHash === null) this.prevHash = prevHash;
    if (prevHash !== this.prevHash) return this.fail(seq, 'prev_hash does not match the previous record');
    if (!contentOk) return this.fail(seq, 'record content does not match its digest (edited)');
    if (chainHash(prevHash, digest) !== hash) return this.fail(seq, 'hash does not match prev_hash and digest');
    if (!this.timed(seq, at)) return false;
    return this.accept(seq, prevHash, hash);
  }

  fullRecord(r: StoredRecord): boolean {
    return this.full(r.seq, r.at, r.type, r.agency, r.linkId, r.revision, r.actor, r.ip, r.channel, r.object, r.detail, r.digest, r.prevHash, r.hash);
  }

  /** A record shown as its digest only (another agency's record in an evidence package): its place in the chain. */
  digestOnly(seq: number, digest: string): boolean {
    if (this.bad || !this.order(seq)) return false;
    if (this.prevHash === null) return this.fail(seq, 'a range cannot start with a digest-only record');
    if (typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest)) return this.fail(seq, 'digest is not a SHA-256 in hex');
    return this.accept(seq, this.prevHash, chainHash(this.prevHash, digest));
  }

  /** After the last record: a range that should end at `to` and stopped short. */
  expectEnd(to: number): void {
    if (!this.bad && this.next <= to) this.fail(this.next, `record ${this.next} is missing`);
  }
}

export interface RangeResult {
  from: number;
  to: number;
  count: number;
  first: number | null;
  last: number | null;
  firstPrevHash: string | null;
  lastHash: string | null;
  /** Times of the first and last record checked: ranges checked apart are joined in time order too. */
  firstAt?: string | null;
  lastAt?: string | null;
  bad?: ChainBad;
  hashes: [number, string][];
}

/**
 * Check the stored records from..to of the database (the whole range must be present). `prevHash`
 * null takes the first record's prev_hash as given; the caller joins ranges checked in parallel.
 */
export function checkRange(sqlite: Database.Database, from: number, to: number, prevHash: string | null, watch: ReadonlySet<number> = new Set()): RangeResult {
  const w = new ChainWalker({ seq: from, prevHash }, watch);
  // SQLite builds the text each digest covers; a record whose text does not hash to its digest is
  // re-checked field by field in JS (the authority) once the reading statement is closed.
  for (let next = from; next <= to && w.ok; ) {
    let recheck: number | null = null;
    try {
      for (const [seq, text, digest, prev, hash] of repo.iterateCanonical(sqlite, next, to)) {
        if (sha256Hex(text) !== digest) {
          recheck = seq;
          break;
        }
        if (!w.checked(seq, digest, prev, hash, true, atOfCanonical(text))) break;
      }
    } catch {
      // A value SQLite's JSON functions refuse (a BLOB written by hand): the rest of the range in JS.
      for (const r of repo.iterateRange(sqlite, w.next, to)) if (!w.fullRecord(r)) break;
      break;
    }
    if (recheck === null) break;
    const r = repo.rowAt(sqlite, recheck)!;
    w.checked(r.seq, r.digest, r.prevHash, r.hash, recordDigestOf(r.seq, r.at, r.type, r.agency, r.linkId, r.revision, r.actor, r.ip, r.channel, r.object, r.detail) === r.digest, r.at);
    next = recheck + 1;
  }
  w.expectEnd(to);
  return { from, to, count: w.count, first: w.first, last: w.last, firstPrevHash: w.firstPrevHash, lastHash: w.last !== null ? w.prevHash : null, firstAt: w.firstAt, lastAt: w.lastAt, bad: w.bad, hashes: [...w.hashes] };
}

/**
 * Join seq ranges walked apart (in threads) into one result: each must chain on the one before and
 * follow it in time, as the records inside a range do. The first bad record wins.
 */
export function joinRanges(parts: readonly RangeResult[], from: number, to: number, prevHash: string): RangeResult {
  const out: RangeResult = { from, to, count: 0, first: null, last: null, firstPrevHash: prevHash, lastHash: null, hashes: [] };
  let prev = prevHash;
  let prevAt: string | null = null;
  for (const p of parts) {
    if (p.count > 0 && p.firstPrevHash !== prev) {
      out.bad = { seq: p.first!, reason: 'prev_hash does not match the previous record' };
      break;
    }
    const late = p.count > 0 && p.firstAt ? timeOrder(p.first!, p.firstAt, prevAt) : null;
    if (late) {
      out.bad = { seq: p.first!, reason: late };
      break;
    }
    if (p.lastAt) prevAt = p.lastAt;
    out.count += p.count;
    out.first ??= p.first;
    if (p.last !== null) out.last = p.last;
    out.hashes.push(...p.hashes);
    if (p.bad) {
      out.bad = p.bad;
      break;
    }
    prev = p.lastHash!;
  }
  if (!out.bad) out.lastHash = prev;
  return out;
}
