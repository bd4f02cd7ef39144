import type Database from 'better-sqlite3';
import type { ControlDb } from '../db';
import * as archives from '../db/repositories/logArchives';
import * as repo from '../db/repositories/usageLog';
import { chainHash, GENESIS_HASH, recordDigestOf, sha256Hex, type LogRecordBody } from './chain';

/** Where a walk of the live log starts: after the newest archive, or at the genesis. */
export function liveStart(cdb: ControlDb): { seq: number; prevHash: string } {
  const a = archives.newest(cdb.db);
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

/**
 * Walks records in seq order and checks each against the one before: seq contiguous, prev_hash the
 * previous hash, digest the record's content, hash = SHA-256(prev_hash ‖ digest). Stops at the first
 * bad record. Remembers the hash at the watched seqs (checkpoints) for the caller to compare.
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
    return this.accept(seq, prevHash, hash);
  }

  /** A record whose content was checked against its digest by the caller (`contentOk`). */
  checked(seq: number, digest: string, prevHash: string, hash: string, contentOk: boolean): boolean {
    if (this.bad || !this.order(seq)) return false;
    if (this.prevHash === null) this.prevHash = prevHash;
    if (prevHash !== this.prevHash) return this.fail(seq, 'prev_hash does not match the previous record');
    if (!contentOk) return this.fail(seq, 'record content does not match its digest (edited)');
    if (chainHash(prevHash, digest) !== hash) return this.fail(seq, 'hash does not match prev_hash and digest');
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
        if (!w.checked(seq, digest, prev, hash, true)) break;
      }
    } catch {
      // A value SQLite's JSON functions refuse (a BLOB written by hand): the rest of the range in JS.
      for (const r of repo.iterateRange(sqlite, w.next, to)) if (!w.fullRecord(r)) break;
      break;
    }
    if (recheck === null) break;
    const r = repo.rowAt(sqlite, recheck)!;
    w.checked(r.seq, r.digest, r.prevHash, r.hash, recordDigestOf(r.seq, r.at, r.type, r.agency, r.linkId, r.revision, r.actor, r.ip, r.channel, r.object, r.detail) === r.digest);
    next = recheck + 1;
  }
  w.expectEnd(to);
  return { from, to, count: w.count, first: w.first, last: w.last, firstPrevHash: w.firstPrevHash, lastHash: w.last !== null ? w.prevHash : null, bad: w.bad, hashes: [...w.hashes] };
}
