import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import type { ControlDb } from '../db';
import * as archives from '../db/repositories/logArchives';
import * as repo from '../db/repositories/usageLog';
import { addMonths, startOfTaipeiDay, taipeiDate, type IsoDate } from '../domain';
import { UserError } from '../errors';
import { canonicalJson } from './chain';
import { appendLog } from './log';
import { installationVerifier, loadSigner, signatureValid, signText, type Verifier } from './signatures';
import { ChainWalker, liveStart, type ChainBad, type StoredRecord } from './walk';

export type ArchiveRow = archives.ArchiveRow;

/**
 * R6.2: the newest day whose records may leave the live log today: `years` (at least five) before
 * today in Asia/Taipei. Records from that day on are never archived.
 */
export function retentionFloor(today: IsoDate, years: number): IsoDate {
  return addMonths(today, -12 * years);
}

/** One record as a line of an archive or evidence file: the stored form, keys in a fixed order. */
export function recordLine(r: StoredRecord): string {
  return JSON.stringify({
    seq: r.seq, at: r.at, type: r.type, agency: r.agency, linkId: r.linkId, revision: r.revision, actor: r.actor, ip: r.ip,
    channel: r.channel, object: r.object, detail: r.detail, digest: r.digest, prevHash: r.prevHash, hash: r.hash,
  });
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const manifestSchema = z.object({
  type: z.literal('nia-link.usage-log-archive'),
  version: z.literal(1),
  fromSeq: z.number().int().positive(),
  toSeq: z.number().int().positive(),
  records: z.number().int().positive(),
  prevHash: hex64,
  lastHash: hex64,
  firstAt: z.string(),
  lastAt: z.string(),
  before: z.string(),
  file: z.string().regex(/^[A-Za-z0-9._-]+$/),
  sha256: hex64,
  bytes: z.number().int().nonnegative(),
  createdAt: z.string(),
  signingKey: z.string(),
});
export type ArchiveManifest = z.infer<typeof manifestSchema>;

/** usage-log-000000000001-000000001000: names sort in seq order. */
const baseName = (from: number, to: number) => `usage-log-${String(from).padStart(12, '0')}-${String(to).padStart(12, '0')}`;
const files = (base: string) => ({ records: `${base}.jsonl`, manifest: `${base}.manifest.json`, signature: `${base}.manifest.json.asc` });

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Write `content` to a new file durably (temp name, fsync, rename); never overwrites. */
function writeNewFile(file: string, content: string | Buffer): void {
  if (existsSync(file)) throw new UserError(`${file} already exists; nothing archived`, 'archive.exists');
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'wx', 0o640);
  try {
    writeSync(fd, typeof content === 'string' ? Buffer.from(content, 'utf8') : content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

export interface ArchiveOptions {
  keysDir: string;
  dir: string;
  before: IsoDate;
  retentionYears: number;
  now: Date;
  actor: string;
}

export interface ArchiveResult {
  fromSeq: number;
  toSeq: number;
  records: number;
  lastHash: string;
  manifestFile: string;
  recordsFile: string;
  sha256: string;
}

/**
 * R6.2: move the records older than `before` (a day at least `retentionYears` back) into a signed
 * archive file that chains on to the live log, check the file as written, and only then — in one
 * transaction — record the archive anchor, log `log.archived` and remove the rows. Returns null when
 * nothing is that old.
 */
export async function archiveLog(cdb: ControlDb, o: ArchiveOptions): Promise<ArchiveResult | null> {
  const floor = retentionFloor(taipeiDate(o.now), o.retentionYears);
  if (o.before > floor) {
    throw new UserError(`the archive's end ${o.before} is inside the retention period: usage-log records are kept ${o.retentionYears} years (R6.2), so the latest date allowed today is ${floor}`, 'log.retention', { field: 'before' });
  }
  const cutoff = startOfTaipeiDay(o.before).toISOString();
  const start = await liveStart(cdb);
  const b = await repo.bounds(cdb.db, start.seq);
  if (b.max === null) return null;
  const toSeq = ((await repo.firstSeqAtOrAfter(cdb.db, cutoff, start.seq)) ?? b.max + 1) - 1;
  if (toSeq < start.seq) return null;

  const signer = await loadSigner(o.keysDir);
  const verifier = await installationVerifier(o.keysDir);
  mkdirSync(o.dir, { recursive: true, mode: 0o750 });
  const f = files(path.join(o.dir, baseName(start.seq, toSeq)));
  for (const file of Object.values(f)) if (existsSync(file)) throw new UserError(`${file} already exists; nothing archived`, 'archive.exists');

  // The records, checked as they are written: an archive never carries a broken chain.
  const tmp = `${f.records}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'wx', 0o640);
  const hash = createHash('sha256');
  const walker = new ChainWalker(start);
  let bytes = 0;
  let firstAt = '';
  let lastAt = '';
  try {
    let chunk: string[] = [];
    let size = 0;
    const flush = () => {
      const buf = Buffer.from(chunk.join(''), 'utf8');
      hash.update(buf);
      writeSync(fd, buf);
      bytes += buf.length;
      chunk = [];
      size = 0;
    };
    for await (const r of repo.rowsIn(cdb.db, start.seq, toSeq)) {
      if (!walker.fullRecord(r)) break;
      if (!firstAt) firstAt = r.at;
      lastAt = r.at;
      const line = recordLine(r) + '\n';
      chunk.push(line);
      size += line.length;
      if (size > 1 << 20) flush();
    }
    walker.expectEnd(toSeq);
    flush();
    if (walker.bad) throw new UserError(`the usage log does not verify at seq ${walker.bad.seq} (${walker.bad.reason}): nothing archived; run \`nia-link log verify\``, 'log.broken');
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, f.records);

  const manifest: ArchiveManifest = {
    type: 'nia-link.usage-log-archive',
    version: 1,
    fromSeq: start.seq,
    toSeq,
    records: walker.count,
    prevHash: start.prevHash,
    lastHash: walker.prevHash!,
    firstAt,
    lastAt,
    before: o.before,
    file: path.basename(f.records),
    sha256: hash.digest('hex'),
    bytes,
    createdAt: o.now.toISOString(),
    signingKey: signer.fingerprint,
  };
  const manifestText = canonicalJson(manifest);
  const signature = await signText(manifestText, signer.key);
  writeNewFile(f.manifest, manifestText);
  writeNewFile(f.signature, signature);
  fsyncDir(o.dir);

  // Read back what is on disk before a single row goes.
  const check = await readArchive(f.manifest, verifier);
  if (check.bad || check.manifestText !== manifestText) {
    throw new Error(`the archive just written does not verify (${check.bad?.reason ?? 'manifest differs'}); no records were removed`);
  }

  await cdb.write(async (tx) => {
    const newest = await archives.newest(tx);
    const last = await repo.bySeq(tx, toSeq);
    if ((newest ? newest.toSeq + 1 : 1) !== start.seq || !last || last.hash !== manifest.lastHash) {
      throw new UserError('the usage log changed while it was being archived (another archive ran?); nothing removed — run the command again', 'archive.log-changed', 'conflict');
    }
    await archives.insert(tx, {
      fromSeq: manifest.fromSeq,
      toSeq,
      prevHash: manifest.prevHash,
      lastHash: manifest.lastHash,
      records: manifest.records,
      fileName: manifest.file,
      sha256: manifest.sha256,
      manifest: manifestText,
      signature,
      createdAt: manifest.createdAt,
    });
    await appendLog(tx, { type: 'log.archived', actor: o.actor, object: manifest.file, detail: { fromSeq: manifest.fromSeq, toSeq, records: manifest.records, lastHash: manifest.lastHash, sha256: manifest.sha256, before: o.before } }, o.now);
    await repo.deleteThrough(tx, toSeq);
  });
  return { fromSeq: manifest.fromSeq, toSeq, records: manifest.records, lastHash: manifest.lastHash, manifestFile: f.manifest, recordsFile: f.records, sha256: manifest.sha256 };
}

export const listArchives = (cdb: ControlDb): Promise<ArchiveRow[]> => archives.all(cdb.db);

/** The manifest files named by `--archive` arguments: a manifest, its records file, or a directory of archives. */
export function findArchiveManifests(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new UserError(`archive ${p}: no such file or directory`, 'archive.unknown');
    }
    if (st.isDirectory()) {
      const found = readdirSync(p).filter((n) => /^usage-log-\d+-\d+\.manifest\.json$/.test(n)).sort();
      if (!found.length) throw new UserError(`archive directory ${p} holds no usage-log-*.manifest.json`, 'archive.unknown');
      out.push(...found.map((n) => path.join(p, n)));
    } else if (/\.(jsonl|manifest\.json\.asc|manifest\.json)$/.test(p)) {
      out.push(p.replace(/\.(jsonl|manifest\.json\.asc|manifest\.json)$/, '') + '.manifest.json');
    } else {
      throw new UserError(`archive ${p}: give an archive's manifest (usage-log-….manifest.json), its records (.jsonl) or a directory of archives`, 'archive.invalid');
    }
  }
  return [...new Set(out.map((p) => path.resolve(p)))];
}

export interface ArchiveCheck {
  manifestFile: string;
  manifestText: string;
  manifest: ArchiveManifest;
  /** Hashes at the watched seqs, for the checkpoint comparison. */
  hashes: Map<number, string>;
  bad?: ChainBad;
}

/**
 * Check one archive as an auditor would, from the files alone: NIA's signature on the manifest, the
 * records chaining from the manifest's prev_hash to its last hash, and the SHA-256 of the file.
 */
export async function readArchive(manifestFile: string, verifier: Verifier, watch: ReadonlySet<number> = new Set()): Promise<ArchiveCheck> {
  let manifestText: string;
  let signature: string;
  try {
    manifestText = readFileSync(manifestFile, 'utf8');
    signature = readFileSync(`${manifestFile}.asc`, 'utf8');
  } catch (err) {
    throw new UserError(`archive ${manifestFile}: cannot read the manifest or its signature (.asc): ${(err as NodeJS.ErrnoException).code ?? err}`, 'archive.unreadable', 'invalid');
  }
  let manifest: ArchiveManifest;
  try {
    manifest = manifestSchema.parse(JSON.parse(manifestText));
  } catch {
    throw new UserError(`archive ${manifestFile}: not a nia-link usage-log archive manifest`, 'archive.invalid');
  }
  const result: ArchiveCheck = { manifestFile, manifestText, manifest, hashes: new Map() };
  if (!(await signatureValid(manifestText, signature, verifier))) {
    result.bad = { seq: manifest.fromSeq, reason: `archive ${path.basename(manifestFile)}: the manifest's signature does not verify with key ${verifier.fingerprint}` };
    return result;
  }
  const recordsFile = path.join(path.dirname(manifestFile), manifest.file);
  if (!existsSync(recordsFile)) throw new UserError(`archive ${manifestFile}: its records file ${recordsFile} is missing`, 'archive.records-missing', 'invalid');
  const walker = new ChainWalker({ seq: manifest.fromSeq, prevHash: manifest.prevHash }, watch);
  const hash = createHash('sha256');
  const stream = createReadStream(recordsFile);
  stream.on('data', (d) => hash.update(d));
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
    if (walker.bad) continue;
    let r: StoredRecord;
    try {
      r = JSON.parse(line) as StoredRecord;
    } catch {
      walker.bad = { seq: walker.next, reason: `archive ${manifest.file}: the line of record ${walker.next} is not JSON` };
      continue;
    }
    walker.fullRecord(r);
  }
  walker.expectEnd(manifest.toSeq);
  for (const [seq, h] of walker.hashes) result.hashes.set(seq, h);
  const where = `archive ${manifest.file}`;
  if (walker.bad) result.bad = { ...walker.bad, reason: `${where}: ${walker.bad.reason}` };
  else if (walker.last !== manifest.toSeq) result.bad = { seq: (walker.last ?? manifest.fromSeq - 1) + 1, reason: `${where}: holds records past seq ${manifest.toSeq}` };
  else if (walker.prevHash !== manifest.lastHash || walker.count !== manifest.records) result.bad = { seq: manifest.toSeq, reason: `${where}: the records do not end in the manifest's last hash` };
  else if (hash.digest('hex') !== manifest.sha256) result.bad = { seq: manifest.fromSeq, reason: `${where}: the file does not match the SHA-256 in its signed manifest` };
  return result;
}
