import { createHash } from 'node:crypto';
import { closeSync, constants, createReadStream, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import type { ControlDb } from '../db';
import * as agencies from '../db/repositories/agencies';
import * as archivesRepo from '../db/repositories/logArchives';
import * as checkpointsRepo from '../db/repositories/logCheckpoints';
import * as links from '../db/repositories/links';
import * as repo from '../db/repositories/usageLog';
import { addDays, startOfTaipeiDay, type IsoDate } from '../domain';
import { UserError } from '../errors';
import { recordLine } from './archive';
import { canonicalJson } from './chain';
import { sha256File } from './files';
import { checkpointStatement } from './checkpoints';
import { installationVerifier, loadSigner, readVerifier, signatureValid, signText, type Verifier } from './signatures';
import { KEY_FILES } from '../crypto';
import { verifyUsageLog, type VerifyReport } from './verify';
import { ChainWalker, type ChainBad, type StoredRecord } from './walk';

const FILES = {
  manifest: 'manifest.json',
  signature: 'manifest.json.asc',
  records: 'records.jsonl',
  checkpoints: 'checkpoints.json',
  verification: 'verification.json',
  key: 'nia-signing.pub.asc',
  readme: 'README.txt',
} as const;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const manifestSchema = z.object({
  type: z.literal('nia-link.evidence-package'),
  version: z.literal(1),
  link: z.object({ id: z.number().int(), agency: z.string() }),
  from: z.string(),
  to: z.string(),
  fromSeq: z.number().int().positive(),
  toSeq: z.number().int().positive(),
  prevHash: hex64,
  lastHash: hex64,
  records: z.object({ total: z.number().int(), full: z.number().int(), digestOnly: z.number().int() }),
  files: z.record(z.string(), hex64),
  createdAt: z.string(),
  signingKey: z.string(),
});
type EvidenceManifest = z.infer<typeof manifestSchema>;

const checkpointsSchema = z.object({
  checkpoints: z.array(z.object({ seq: z.number().int(), hash: hex64, at: z.string(), signature: z.string() })),
});


/**
 * Packages and backups come from elsewhere: a name in one may be a symbolic link (to /dev/zero, to a
 * file of this machine), a FIFO (an open that never returns) or a device. Only the entry itself is
 * opened, without following a link and without blocking, and only a regular file is read.
 */
const OPEN_SAFE = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

export function openRegular(file: string, what: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(file, OPEN_SAFE);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${what} is missing`, 'file.missing');
    if (code === 'ELOOP') throw new UserError(`${what} is a symbolic link, not a regular file: refused`, 'file.not-regular');
    throw new UserError(`${what}: cannot open (${code ?? 'error'})`, 'file.unreadable');
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new UserError(`${what} is not a regular file: refused`, 'file.not-regular');
  }
  return { fd, size: st.size };
}

/** A whole regular file (see openRegular), at most `maxBytes`. */
export function readRegular(file: string, what: string, maxBytes: number): Buffer {
  const { fd, size } = openRegular(file, what);
  try {
    if (size > maxBytes) throw new UserError(`${what} is larger than ${maxBytes} bytes: not what nia-link writes`, 'file.too-large');
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/** NIA's public key from a file the operator names (a link to it is fine: the operator chose it). */
export function readKeyArg(file: string): string {
  try {
    const st = statSync(file);
    if (!st.isFile() || st.size > 1024 * 1024) throw new UserError(`key file ${file}: not a key file`, 'key.file', { kind: 'invalid', field: 'key' });
    return readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`key file ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, 'key.file', { kind: 'invalid', field: 'key' });
  }
}

/** What an evidence check is told to trust: NIA's key as the auditor obtained it, never the package's copy. */
export function evidenceKeyFile(given: string | undefined, keysDir: string): string {
  if (given !== undefined) return given;
  const local = path.join(keysDir, KEY_FILES.signingPublic);
  if (existsSync(local)) return local;
  throw new UserError("give NIA's public signing key (obtained from NIA, not the copy inside the package, which whoever made the package chose)", 'evidence.no-key', { kind: 'invalid', field: 'key' });
}

export interface EvidenceOptions {
  keysDir: string;
  linkId: number;
  from: IsoDate;
  to: IsoDate;
  out: string;
  now: Date;
  /** A verification of the whole log made just before, for several packages in a row (it reads every record). */
  verification?: VerifyReport;
}

export interface EvidenceSummary {
  dir: string;
  linkId: number;
  fromSeq: number;
  toSeq: number;
  records: number;
  full: number;
  checkpoints: number;
  verification: VerifyReport;
}

const README = (m: EvidenceManifest) => `nia-link evidence package: usage log of link ${m.link.id} (${m.link.agency}), ${m.from} to ${m.to}

records.jsonl      seq ${m.fromSeq}–${m.toSeq}: the link's records in full; every other record as {seq, digest} only
checkpoints.json   NIA-signed checkpoints (seq, hash, time) inside the range
verification.json  the verification of the whole usage log when this package was made
manifest.json      what the package holds, with SHA-256 of each file; manifest.json.asc is NIA's signature
nia-signing.pub.asc  NIA's public signing key (compare its fingerprint, ${m.signingKey}, with one obtained from NIA)

Each record's digest = SHA-256 of its canonical JSON; hash = SHA-256(prev_hash ‖ digest). The chain
from prevHash to lastHash in the signed manifest shows no record of the range was edited, removed,
reordered or inserted — without disclosing other agencies' records.

Check it offline:  nia-link log verify --evidence <this directory> --key NIA-PUBLIC-KEY.asc
                   (NIA's key as you obtained it from NIA: the copy in this package proves nothing)
Or by hand:        gpg --verify manifest.json.asc manifest.json && sha256sum records.jsonl
`;

/**
 * R9.1: an evidence package an auditor checks offline without the database and without seeing other
 * agencies' records: the link's records in full, every other record in the range as its digest.
 */
export async function exportEvidence(cdb: ControlDb, o: EvidenceOptions): Promise<EvidenceSummary> {
  if (o.to < o.from) throw new UserError(`the period's end ${o.to} is before its start ${o.from}`, 'period.reversed', { kind: 'invalid', field: 'to' });
  const link = await links.byId(cdb.db, o.linkId);
  if (!link) throw new UserError(`no link ${o.linkId}`, 'link.not-found');
  const agency = (await agencies.byId(cdb.db, link.agencyId))!.code;
  const fromAt = startOfTaipeiDay(o.from).toISOString();
  const toAt = startOfTaipeiDay(addDays(o.to, 1)).toISOString();
  const anchor = await archivesRepo.newest(cdb.db);
  if (anchor) {
    const lastAt = (JSON.parse(anchor.manifest) as { lastAt?: string }).lastAt ?? '';
    if (lastAt >= fromAt) throw new UserError(`records up to seq ${anchor.toSeq} (${lastAt}) are archived in ${anchor.fileName}: start the period after ${lastAt.slice(0, 10)}`, 'log.archived', { field: 'from' });
  }
  const fromSeq = await repo.firstSeqAtOrAfter(cdb.db, fromAt, anchor ? anchor.toSeq + 1 : 1);
  const toSeq = await repo.lastSeqBefore(cdb.db, toAt);
  if (fromSeq === null || toSeq === null || toSeq < fromSeq) throw new UserError(`the usage log has no records between ${o.from} and ${o.to}`, 'log.empty-range');
  if (existsSync(o.out) && readdirSync(o.out).length) throw new UserError(`${o.out} is not empty: give a new directory for the evidence package`, 'evidence.out-not-empty', 'conflict');

  const verification = o.verification ?? (await verifyUsageLog(cdb, { keysDir: o.keysDir }));
  if (!verification.ok) {
    throw new UserError(`the usage log does not verify at seq ${verification.bad!.seq} (${verification.bad!.reason}): no evidence package written; run \`nia-link log verify\``, 'log.broken');
  }
  const signer = await loadSigner(o.keysDir);
  const verifier = await installationVerifier(o.keysDir);

  // Written beside the target, renamed into place when complete.
  const out = path.resolve(o.out);
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true, mode: 0o750 });
  try {
    let total = 0;
    let full = 0;
    let prevHash = '';
    let lastHash = '';
    const fd = openSync(path.join(tmp, FILES.records), 'wx', 0o640);
    try {
      let chunk: string[] = [];
      const flush = () => {
        writeSync(fd, chunk.join(''));
        chunk = [];
      };
      for await (const r of repo.rowsIn(cdb.db, fromSeq, toSeq)) {
        if (!prevHash) prevHash = r.prevHash;
        lastHash = r.hash;
        total++;
        if (r.linkId === o.linkId) full++;
        chunk.push((r.linkId === o.linkId ? recordLine(r) : JSON.stringify({ seq: r.seq, digest: r.digest })) + '\n');
        if (chunk.length >= 10_000) flush();
      }
      flush();
    } finally {
      closeSync(fd);
    }
    const cps = (await checkpointsRepo.all(cdb.db)).filter((c) => c.seq >= fromSeq - 1 && c.seq <= toSeq);
    writeFileSync(
      path.join(tmp, FILES.checkpoints),
      JSON.stringify({ type: 'nia-link.usage-log-checkpoints', version: 1, signingKey: { fingerprint: verifier.fingerprint, armored: verifier.armored }, checkpoints: cps.map((c) => ({ seq: c.seq, hash: c.hash, at: c.at, signature: c.signature, statement: checkpointStatement(c) })) }, null, 2) + '\n',
    );
    writeFileSync(path.join(tmp, FILES.verification), JSON.stringify(verification, null, 2) + '\n');
    writeFileSync(path.join(tmp, FILES.key), verifier.armored);
    const manifest: EvidenceManifest = {
      type: 'nia-link.evidence-package',
      version: 1,
      link: { id: o.linkId, agency },
      from: o.from,
      to: o.to,
      fromSeq,
      toSeq,
      prevHash,
      lastHash,
      records: { total, full, digestOnly: total - full },
      files: Object.fromEntries([FILES.records, FILES.checkpoints, FILES.verification, FILES.key].map((f) => [f, sha256File(path.join(tmp, f))])),
      createdAt: o.now.toISOString(),
      signingKey: signer.fingerprint,
    };
    const text = canonicalJson(manifest);
    writeFileSync(path.join(tmp, FILES.manifest), text);
    writeFileSync(path.join(tmp, FILES.signature), await signText(text, signer.key));
    writeFileSync(path.join(tmp, FILES.readme), README(manifest));
    if (existsSync(out)) rmSync(out, { recursive: true }); // empty, checked above
    renameSync(tmp, out);
    return { dir: out, linkId: o.linkId, fromSeq, toSeq, records: total, full, checkpoints: cps.length, verification };
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

export interface EvidenceCheck {
  ok: boolean;
  linkId: number | null;
  agency: string | null;
  fromSeq: number | null;
  toSeq: number | null;
  records: number;
  full: number;
  checkpoints: number;
  signingKey: string;
  bad?: ChainBad;
}

/** Bounds on the small files of a package: nia-link writes far less; anything larger is not a package. */
const MAX_SMALL = 1024 * 1024;
const MAX_CHECKPOINTS = 256 * 1024 * 1024;

/**
 * Check an evidence package from its files alone (no database): NIA's signature on the manifest,
 * each record's digest (an edited record is named), the chain from prevHash to lastHash, the files'
 * SHA-256, and the signed checkpoints inside the range. `keyFile`: NIA's public key as the auditor
 * obtained it; the package's own copy is never the trust anchor (whoever made the package chose it).
 * Only the package's fixed file names are opened, each once, regular files only: the bytes checked
 * against the manifest are the bytes verified.
 */
export async function verifyEvidence(dir: string, keyFile: string): Promise<EvidenceCheck> {
  const file = (name: string) => path.join(dir, name);
  const what = (name: string) => `evidence package ${dir}: ${name}`;
  const manifestText = readRegular(file(FILES.manifest), what(FILES.manifest), MAX_SMALL).toString('utf8');
  let m: EvidenceManifest;
  try {
    m = manifestSchema.parse(JSON.parse(manifestText));
  } catch {
    throw new UserError(`evidence package ${dir}: manifest.json is not a nia-link evidence manifest`, 'evidence.manifest', 'invalid');
  }
  const verifier: Verifier = await readVerifier(readKeyArg(keyFile), keyFile);
  const result: EvidenceCheck = { ok: false, linkId: m.link.id, agency: m.link.agency, fromSeq: m.fromSeq, toSeq: m.toSeq, records: 0, full: 0, checkpoints: 0, signingKey: verifier.fingerprint };
  const fail = (bad: ChainBad): EvidenceCheck => ({ ...result, bad });
  const signature = readRegular(file(FILES.signature), what(FILES.signature), MAX_SMALL).toString('utf8');
  if (!(await signatureValid(manifestText, signature, verifier))) {
    return fail({ seq: m.fromSeq, reason: `the manifest's signature does not verify with key ${verifier.fingerprint}` });
  }
  // The signed manifest names the files it covers: they must be exactly the ones a package holds.
  const covered = [FILES.records, FILES.checkpoints, FILES.verification, FILES.key];
  const listed = Object.keys(m.files).sort();
  if (listed.join('\n') !== [...covered].sort().join('\n')) {
    return fail({ seq: m.fromSeq, reason: `the manifest covers ${listed.join(', ') || 'no files'}, not the package's ${covered.join(', ')}` });
  }
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const small = new Map<string, Buffer>();
  for (const name of [FILES.checkpoints, FILES.verification, FILES.key]) small.set(name, readRegular(file(name), what(name), name === FILES.checkpoints ? MAX_CHECKPOINTS : MAX_SMALL));

  const cps = (() => {
    try {
      return checkpointsSchema.parse(JSON.parse(small.get(FILES.checkpoints)!.toString('utf8'))).checkpoints;
    } catch {
      return null;
    }
  })();
  const watch = new Set((cps ?? []).map((c) => c.seq));
  const walker = new ChainWalker({ seq: m.fromSeq, prevHash: m.prevHash }, watch);
  const records = openRegular(file(FILES.records), what(FILES.records));
  const recordsHash = createHash('sha256');
  const input = createReadStream('', { fd: records.fd, autoClose: true, start: 0 });
  input.on('data', (chunk) => recordsHash.update(chunk));
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    if (walker.bad || line === '') continue;
    let r: Partial<StoredRecord>;
    try {
      r = JSON.parse(line) as Partial<StoredRecord>;
    } catch {
      walker.bad = { seq: walker.next, reason: `the line of record ${walker.next} is not JSON` };
      continue;
    }
    if (r.type === undefined) {
      walker.digestOnly(r.seq as number, r.digest as string);
      continue;
    }
    if (r.linkId !== m.link.id) {
      walker.bad = { seq: walker.next, reason: `record ${r.seq} is shown in full but is not a record of link ${m.link.id}` };
      continue;
    }
    if (walker.fullRecord(r as StoredRecord)) result.full++;
  }
  walker.expectEnd(m.toSeq);
  result.records = walker.count;
  if (walker.bad) return fail(walker.bad);
  if (walker.last !== m.toSeq) return fail({ seq: m.toSeq + 1, reason: `records past seq ${m.toSeq} were added` });
  if (walker.prevHash !== m.lastHash) return fail({ seq: m.toSeq, reason: "the chain does not end in the signed manifest's last hash" });
  if (result.full !== m.records.full || walker.count !== m.records.total) return fail({ seq: m.fromSeq, reason: 'the package holds other records than its manifest lists' });
  const hashes = new Map<string, string>([[FILES.records, recordsHash.digest('hex')], ...[...small].map(([n, b]) => [n, sha(b)] as [string, string])]);
  for (const [name, expected] of Object.entries(m.files)) {
    if (hashes.get(name) !== expected) return fail({ seq: m.fromSeq, reason: `${name} does not match the SHA-256 in the signed manifest` });
  }
  if (cps === null) return fail({ seq: m.fromSeq, reason: 'checkpoints.json is not a checkpoint list' });
  // Every checkpoint's hash is compared; a signature is checked where one disagrees, and on the
  // newest that agrees (its hash commits to every record before it).
  let newest: (typeof cps)[number] | undefined;
  for (const c of cps) {
    const h = c.seq === m.fromSeq - 1 ? m.prevHash : walker.hashes.get(c.seq);
    if (h === undefined) continue;
    if (h !== c.hash) {
      const genuine = await signatureValid(checkpointStatement(c), c.signature, verifier);
      return fail({ seq: c.seq, reason: genuine ? `the chain at seq ${c.seq} differs from NIA's checkpoint signed at ${c.at}` : `the checkpoint at seq ${c.seq} does not carry a valid signature` });
    }
    result.checkpoints++;
    if (!newest || c.seq > newest.seq) newest = c;
  }
  if (newest && !(await signatureValid(checkpointStatement(newest), newest.signature, verifier))) {
    return fail({ seq: newest.seq, reason: `the checkpoint at seq ${newest.seq} does not carry a valid signature` });
  }
  return { ...result, ok: true };
}
