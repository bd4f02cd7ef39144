import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ControlDb } from '../db';
import * as archivesRepo from '../db/repositories/logArchives';
import * as checkpointsRepo from '../db/repositories/logCheckpoints';
import * as repo from '../db/repositories/usageLog';
import { threadScript } from '../paths';
import { findArchiveManifests, readArchive } from './archive';
import { GENESIS_HASH } from './chain';
import { readCheckpointFile, checkpointStatement, type Pin } from './checkpoints';
import { installationVerifier, signatureValid } from './signatures';
import type { VerifyThreadInput } from './verify-thread';
import { type ChainBad, checkRange, joinRanges, type RangeResult } from './walk';
import { walkPgRange } from '../db/pg/walk';

export interface VerifyOptions {
  /** NIA's public key (archive anchors and the database's checkpoints are checked with it). */
  keysDir: string;
  /** Exported checkpoint files (`log checkpoints --export`), kept off the box by an auditor. */
  checkpointFiles?: readonly string[];
  /** Archive manifests, records files or directories of archives (`log archive`). */
  archives?: readonly string[];
  /** Threads for the chain walk; default: one per core (up to 4) for large logs. */
  threads?: number;
}

export interface VerifyReport {
  ok: boolean;
  /** Records of the live log that were checked. */
  records: number;
  firstSeq: number | null;
  lastSeq: number | null;
  headHash: string | null;
  archived: { throughSeq: number; archives: number; checked: number } | null;
  checkpoints: { database: number; exported: number; matched: number; newestSeq: number | null; signaturesChecked: number };
  /** NIA's key that checked the signatures (null: there were none to check). */
  signingKey: string | null;
  notes: string[];
  bad?: ChainBad;
}

/** Below this many records one thread is faster than starting several. */
const THREADED_FROM = 200_000;

const VERIFY_THREAD = threadScript('usagelog/verify-thread');

/**
 * Check records from..to, chained on `prevHash`: split into seq ranges checked in parallel threads
 * (each on its own connection) and joined here, or in this thread for small logs. Remembers the
 * hashes at the `watch`ed seqs (checkpoints).
 */
export async function checkChain(cdb: ControlDb, from: number, to: number, prevHash: string, watch: ReadonlySet<number> = new Set(), threads?: number): Promise<RangeResult> {
  if (cdb.dialect === 'postgres') return walkPgRange(cdb.url, cdb.pg.pool, from, to, prevHash, watch, threads);
  const n = to - from + 1;
  const t = Math.max(1, threads ?? (n >= THREADED_FROM ? Math.min(os.availableParallelism(), 4) : 1));
  if (t === 1 || n < 2 * t) return checkRange(cdb.sqlite, from, to, prevHash, watch);
  const size = Math.ceil(n / t);
  const ranges = Array.from({ length: t }, (_, i) => ({ from: from + i * size, to: Math.min(to, from + (i + 1) * size - 1) })).filter((r) => r.from <= r.to);
  const parts = await Promise.all(
    ranges.map(
      (r) =>
        new Promise<RangeResult>((resolve, reject) => {
          const input: VerifyThreadInput = { file: cdb.file, from: r.from, to: r.to, watch: [...watch].filter((s) => s >= r.from && s <= r.to) };
          const w = new Worker(VERIFY_THREAD, { workerData: input });
          w.once('message', (m: RangeResult | { error: string }) => ('error' in m ? reject(new Error(`verify thread: ${m.error}`)) : resolve(m)));
          w.once('error', reject);
          w.once('exit', (code) => code !== 0 && reject(new Error(`verify thread exited with ${code}`)));
        }),
    ),
  );
  return joinRanges(parts, from, to, prevHash);
}

/**
 * R6.3, the auditor's check. Walks the archive anchors (NIA-signed), the archives given, and the
 * live log: seq contiguity, prev_hash, digests, hashes. Then compares every checkpoint — the
 * database's and the exported files' — with the chain: a checkpoint past the end means truncation,
 * a different hash means records up to it were rewritten. The newest matching checkpoint's
 * signature is checked (its hash commits to every record before it), and every checkpoint that
 * disagrees is checked too, to tell a tampered log from a tampered checkpoint. The first bad seq wins.
 */
export async function verifyUsageLog(cdb: ControlDb, o: VerifyOptions): Promise<VerifyReport> {
  const problems: ChainBad[] = [];
  const notes: string[] = [];
  const anchors = await archivesRepo.all(cdb.db);
  const checkpointRows = await checkpointsRepo.all(cdb.db);
  // NIA's key is needed only for signatures: a log with none verifies without the keys directory.
  const needKey = anchors.length || checkpointRows.length || o.archives?.length || o.checkpointFiles?.length;
  const verifier = needKey ? await installationVerifier(o.keysDir) : null;

  // Archive anchors: each signed by NIA and continuing the one before.
  let start = { seq: 1, prevHash: GENESIS_HASH };
  for (const a of anchors) {
    if (a.fromSeq !== start.seq || a.prevHash !== start.prevHash) {
      problems.push({ seq: start.seq, reason: `the archive anchor of seq ${a.fromSeq}–${a.toSeq} does not continue the log at seq ${start.seq}` });
    } else {
      let m: Record<string, unknown> = {};
      try {
        m = JSON.parse(a.manifest) as Record<string, unknown>;
      } catch {
        /* reported below */
      }
      const consistent = m.fromSeq === a.fromSeq && m.toSeq === a.toSeq && m.prevHash === a.prevHash && m.lastHash === a.lastHash && m.sha256 === a.sha256 && m.records === a.records;
      if (!consistent || !(await signatureValid(a.manifest, a.signature, verifier!))) {
        problems.push({ seq: a.fromSeq, reason: `records ${a.fromSeq}–${a.toSeq} are gone under an archive anchor whose signed manifest does not verify (a forged anchor: removed without an archive)`, range: [a.fromSeq, a.toSeq] });
      }
    }
    start = { seq: a.toSeq + 1, prevHash: a.lastHash };
  }
  const archivedThrough = anchors.length ? anchors[anchors.length - 1].toSeq : 0;

  const dbPins: Pin[] = checkpointRows.map((c) => ({ ...c, source: 'database', verifier: verifier! }));
  const filePins: Pin[] = [];
  for (const f of o.checkpointFiles ?? []) filePins.push(...(await readCheckpointFile(f)));
  for (const fpr of new Set(filePins.map((p) => p.verifier.fingerprint))) {
    if (fpr !== verifier!.fingerprint) notes.push(`exported checkpoints are signed by key ${fpr}, not by this installation's key ${verifier!.fingerprint}`);
  }
  const pins = [...dbPins, ...filePins].sort((a, b) => a.seq - b.seq);
  const watch = new Set(pins.map((p) => p.seq));
  const hashAt = new Map<number, string>();

  // Archives given: each must be the one its anchor was written for, and verify on its own.
  const checked: [number, number][] = [];
  for (const mf of findArchiveManifests(o.archives ?? [])) {
    const chk = await readArchive(mf, verifier!, watch);
    const { fromSeq, toSeq } = chk.manifest;
    const anchor = anchors.find((a) => a.fromSeq === fromSeq && a.toSeq === toSeq);
    if (!anchor || anchor.manifest !== chk.manifestText) {
      problems.push({ seq: fromSeq, reason: `archive ${path.basename(mf)} (seq ${fromSeq}–${toSeq}) is not the archive this log was anchored to` });
    } else if (chk.bad) {
      problems.push(chk.bad);
    } else {
      checked.push([fromSeq, toSeq]);
      for (const [s, h] of chk.hashes) hashAt.set(s, h);
    }
  }
  const covered = (seq: number) => checked.some(([a, b]) => seq >= a && seq <= b);

  // The live log.
  const b = await repo.bounds(cdb.db, start.seq);
  const live: RangeResult =
    b.max === null
      ? { from: start.seq, to: start.seq - 1, count: 0, first: null, last: null, firstPrevHash: null, lastHash: null, hashes: [] }
      : await checkChain(cdb, start.seq, b.max, start.prevHash, watch, o.threads);
  if (live.bad) problems.push(live.bad);
  for (const [s, h] of live.hashes) hashAt.set(s, h);
  const head = live.last ?? archivedThrough;

  // Exported checkpoints are the auditor's: over an archived stretch they need the archive itself,
  // or a forged anchor could hide removed records.
  if (filePins.length) {
    const missing = anchors.find((a) => !covered(a.fromSeq));
    if (missing) {
      problems.push({ seq: missing.fromSeq, reason: `records ${missing.fromSeq}–${archivedThrough} are archived: give their archive files (--archive FILE|DIR) to verify them against exported checkpoints`, range: [missing.fromSeq, archivedThrough] });
    }
  } else if (anchors.length && checked.length < anchors.length) {
    notes.push(`records 1–${archivedThrough} are archived (${anchors.length} signed archive${anchors.length > 1 ? 's' : ''}); pass --archive to re-read them`);
  }

  // Checkpoints against the chain.
  let signaturesChecked = 0;
  const sigOk = async (p: Pin) => {
    signaturesChecked++;
    return signatureValid(checkpointStatement(p), p.signature, p.verifier);
  };
  const forged = (p: Pin): ChainBad => ({ seq: p.seq, reason: `the checkpoint at seq ${p.seq} (${p.source}) does not carry a valid signature: the checkpoint, not the log, was altered` });
  let lastGood = 0;
  let matched = 0;
  const newestMatched = new Map<string, Pin>();
  for (const p of pins) {
    let h: string | undefined;
    if (p.seq <= archivedThrough) {
      if (!covered(p.seq)) continue; // the signed anchor stands for it (exported checkpoints: see above)
      h = hashAt.get(p.seq);
    } else if (live.bad && p.seq >= live.bad.seq) {
      continue; // past the first break, which is the first problem anyway
    } else if (p.seq > head) {
      // Truncation: the newest genuine checkpoint past the end says how much is gone.
      const beyond = pins.filter((q) => q.seq > head).reverse();
      let genuine: Pin | undefined;
      for (const q of beyond) if (await sigOk(q)) { genuine = q; break; }
      const span = (q: Pin) => (q.seq === head + 1 ? `record ${q.seq} was` : `records ${head + 1}–${q.seq} were`);
      problems.push(
        genuine
          ? { seq: head + 1, reason: `the log ends at seq ${head}, but a checkpoint signed at ${genuine.at} (${genuine.source}) covers seq ${genuine.seq}: ${span(genuine)} removed`, range: [head + 1, genuine.seq] }
          : forged(p),
      );
      break;
    } else {
      h = hashAt.get(p.seq);
    }
    if (h === p.hash) {
      matched++;
      lastGood = p.seq;
      newestMatched.set(p.source, p);
      continue;
    }
    problems.push(
      (await sigOk(p))
        ? { seq: p.seq, reason: `the hash at seq ${p.seq} differs from the checkpoint signed at ${p.at} (${p.source}): records ${lastGood + 1}–${p.seq} were rewritten and re-chained`, range: [lastGood + 1, p.seq] }
        : forged(p),
    );
    break;
  }
  // The newest matching checkpoint of each source commits to every record before it: its signature decides.
  for (const p of newestMatched.values()) if (!(await sigOk(p))) problems.push(forged(p));

  problems.sort((x, y) => x.seq - y.seq);
  return {
    ok: problems.length === 0,
    records: live.count,
    firstSeq: live.first,
    lastSeq: live.last,
    headHash: live.bad ? null : (live.lastHash ?? (anchors.length ? anchors[anchors.length - 1].lastHash : null)),
    archived: anchors.length ? { throughSeq: archivedThrough, archives: anchors.length, checked: checked.length } : null,
    checkpoints: { database: dbPins.length, exported: filePins.length, matched, newestSeq: pins.length ? pins[pins.length - 1].seq : null, signaturesChecked },
    signingKey: verifier?.fingerprint ?? null,
    notes,
    bad: problems[0],
  };
}
