import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { chmodSync, closeSync, copyFileSync, existsSync, fsyncSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { type ControlDb, controlDbFile, openControlDb, schema, type SqliteControlDb } from '../db';
import { snapshotToSqlite } from '../db/pg/snapshot';
import { KEY_FILES } from '../crypto';
import { UserError } from '../errors';
import { canonicalJson } from '../usagelog/chain';
import { openRegular, readKeyArg, readRegular } from '../usagelog/evidence';
import { sha256File } from '../usagelog/files';
import { installationVerifier, loadSigner, readVerifier, signatureValid, signText, type Verifier } from '../usagelog/signatures';
import { verifyUsageLog, type VerifyReport } from '../usagelog/verify';

/** Inside a backup: the database, NIA's keys, the usage-log archives, the config file. */
const DB = 'nia-link.db';
const KEYS = 'keys';
const ARCHIVE = 'archive';
const CONFIG = 'config.json';
const MANIFEST = 'manifest.json';

const manifestSchema = z.object({
  type: z.literal('nia-link.backup'),
  version: z.literal(1),
  createdAt: z.string(),
  files: z.array(z.object({ path: z.string(), bytes: z.number().int(), sha256: z.string().regex(/^[0-9a-f]{64}$/), mode: z.number().int() })),
  log: z.object({ ok: z.boolean(), records: z.number().int(), lastSeq: z.number().int().nullable(), headHash: z.string().nullable() }),
  signingKey: z.string(),
});
type BackupManifest = z.infer<typeof manifestSchema>;


/** A control database opened for reading only: no migrations, nothing written (a backup being checked). */
export function openReadOnly(file: string): SqliteControlDb {
  const sqlite = new Database(file, { readonly: true, fileMustExist: true });
  const db = drizzle(sqlite, { schema });
  const readOnly = async (): Promise<never> => {
    throw new Error(`${file} is open read-only`);
  };
  return {
    dialect: 'sqlite',
    db,
    sqlite,
    file,
    where: file,
    write: readOnly,
    ping: async () => void sqlite.prepare('SELECT 1').get(),
    size: async () => statSync(file).size,
    close: async () => void sqlite.close(),
  };
}

/** Regular files under `dir`, as paths relative to it. */
function filesUnder(dir: string, rel = ''): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) return filesUnder(dir, r);
    return e.isFile() && !/\.tmp-\d+$/.test(e.name) ? [r] : [];
  });
}

function copyTree(from: string, to: string, onlyNew = false): void {
  for (const rel of filesUnder(from)) {
    const dst = path.join(to, rel);
    if (onlyNew && existsSync(dst)) continue;
    mkdirSync(path.dirname(dst), { recursive: true, mode: 0o700 });
    copyFileSync(path.join(from, rel), dst);
    chmodSync(dst, statSync(path.join(from, rel)).mode & 0o777);
  }
}

function emptyOrAbsent(dir: string): boolean {
  return !existsSync(dir) || (statSync(dir).isDirectory() && readdirSync(dir).length === 0);
}

const stamp = (now: Date) => now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');

export interface BackupOptions {
  dataDir: string;
  keysDir: string;
  out: string;
  now: Date;
}

export interface BackupResult {
  dir: string;
  files: number;
  bytes: number;
  log: VerifyReport;
}

/**
 * A consistent copy of everything the five years of evidence need: the control database through
 * SQLite's online backup API (the service keeps running), the keys directory, the usage-log
 * archives and the config file, with a manifest of SHA-256 sums signed by NIA. The copy's usage log
 * is verified and the result written into the manifest.
 */
export async function backup(cdb: ControlDb, o: BackupOptions): Promise<BackupResult> {
  const out = path.resolve(o.out);
  if (!emptyOrAbsent(out)) throw new UserError(`${o.out} is not an empty directory: give a new one for the backup`, 'backup.out-not-empty', 'conflict');
  const signer = await loadSigner(o.keysDir);
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true, mode: 0o700 });
  try {
    // One snapshot of the control database as a SQLite file: SQLite's online backup, or every
    // table of PostgreSQL read in one repeatable-read transaction (db migrate moves it back).
    if (cdb.dialect === 'sqlite') await cdb.sqlite.backup(path.join(tmp, DB));
    else await snapshotToSqlite(cdb, tmp);
    // One self-contained file: no -wal beside it.
    const copy = new Database(path.join(tmp, DB));
    copy.pragma('journal_mode = DELETE');
    copy.close();
    copyTree(o.keysDir, path.join(tmp, KEYS));
    copyTree(path.join(o.dataDir, ARCHIVE), path.join(tmp, ARCHIVE));
    if (existsSync(path.join(o.dataDir, CONFIG))) copyFileSync(path.join(o.dataDir, CONFIG), path.join(tmp, CONFIG));

    const ro = openReadOnly(path.join(tmp, DB));
    let log: VerifyReport;
    try {
      log = await verifyUsageLog(ro, { keysDir: path.join(tmp, KEYS), archives: existsSync(path.join(tmp, ARCHIVE)) && filesUnder(path.join(tmp, ARCHIVE)).length ? [path.join(tmp, ARCHIVE)] : [] });
    } finally {
      await ro.close();
    }
    const files = filesUnder(tmp).sort().map((rel) => {
      const st = statSync(path.join(tmp, rel));
      return { path: rel, bytes: st.size, sha256: sha256File(path.join(tmp, rel)), mode: st.mode & 0o777 };
    });
    const manifest: BackupManifest = {
      type: 'nia-link.backup',
      version: 1,
      createdAt: o.now.toISOString(),
      files,
      log: { ok: log.ok, records: log.records, lastSeq: log.lastSeq, headHash: log.headHash },
      signingKey: signer.fingerprint,
    };
    const text = canonicalJson(manifest);
    writeFileSync(path.join(tmp, MANIFEST), text);
    writeFileSync(path.join(tmp, `${MANIFEST}.asc`), await signText(text, signer.key));
    if (existsSync(out)) rmSync(out, { recursive: true });
    renameSync(tmp, out);
    return { dir: out, files: files.length, bytes: files.reduce((n, f) => n + f.bytes, 0), log };
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

export interface RestoreOptions {
  from: string;
  dataDir: string;
  keysDir: string;
  now: Date;
  /** Replace an existing installation (it is moved aside, not deleted). */
  force?: boolean;
  /** NIA's public key as the operator holds it; default: the target installation's own key. */
  keyFile?: string;
}

export interface RestoreResult {
  signingKey: string;
  keySource: 'given' | 'installation';
  files: number;
  replaced: string[];
  log: VerifyReport;
}

/**
 * What a manifest may list, as the backup writes it: the database, the config file, and files under
 * keys/ and archive/. No absolute path, no `..`, no hidden name: a listed path can only land where
 * a backup's file belongs.
 */
const LISTABLE = /^(?:nia-link\.db|config\.json|(?:keys|archive)(?:\/[A-Za-z0-9][A-Za-z0-9._-]*)+)$/;
const MAX_MANIFEST = 64 * 1024 * 1024;

/** What is wrong with each entry of the backup directory that is not a listed regular file (symlinks included). */
function unlisted(from: string, listed: ReadonlySet<string>): string[] {
  const dirs = new Set<string>([KEYS, ARCHIVE]);
  for (const f of listed) for (let d = path.posix.dirname(f); d !== '.'; d = path.posix.dirname(d)) dirs.add(d);
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(from, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory() && dirs.has(r)) walk(r);
      else if (e.isFile() && (listed.has(r) || (!rel && (e.name === MANIFEST || e.name === `${MANIFEST}.asc`)))) continue;
      else out.push(listed.has(r) ? `${r} is not a regular file` : `${r} is not in the signed manifest`);
    }
  };
  walk('');
  return out;
}

/**
 * Copy one listed file of the backup into the private staging directory: the entry itself (never
 * what a symlink points to), then the copy is hashed. Whatever happens to the backup directory
 * afterwards, what is installed is the copy whose SHA-256 the signed manifest names.
 */
function stageFile(src: string, dst: string, f: BackupManifest['files'][number], label: string): void {
  const { fd } = openRegular(src, label);
  try {
    mkdirSync(path.dirname(dst), { recursive: true, mode: 0o700 });
    const out = openSync(dst, 'wx', 0o600);
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) writeSync(out, buf, 0, n);
      fsyncSync(out);
    } finally {
      closeSync(out);
    }
  } finally {
    closeSync(fd);
  }
  if (statSync(dst).size !== f.bytes || sha256File(dst) !== f.sha256) {
    throw new UserError(`${label} does not match its SHA-256 in the signed manifest; nothing restored`, 'backup.corrupt');
  }
  // The signed mode, but never writable by others.
  chmodSync(dst, f.mode & 0o755);
}

/** A free name beside `p` to move the current file or directory to. */
function asideName(p: string, suffix: string): string {
  let name = p + suffix;
  for (let i = 2; existsSync(name); i++) name = `${p}${suffix}-${i}`;
  return name;
}

/**
 * Check a backup completely and only then put it in place: NIA's signature on the manifest (with
 * the key the operator gives, or the target installation's own: never the backup's copy); that the
 * backup directory holds nothing the manifest does not list; each listed file copied into a private
 * staging directory inside the target, where the copy is hashed; the usage log of the staged copy
 * (chain, anchors, checkpoints, head as signed). Then the staged files are renamed into place, the
 * installation is opened as the service opens it and verified again; if that fails, everything is
 * put back as it was. An existing database, keys or archive directory is moved aside
 * (`*.replaced-<time>`), never deleted, and only with `force`.
 */
export async function restore(o: RestoreOptions): Promise<RestoreResult> {
  const from = path.resolve(o.from);
  const dataDir = path.resolve(o.dataDir);
  const keysDir = path.resolve(o.keysDir);
  const inBackup = (name: string) => `${o.from}: ${name}`;

  let verifier: Verifier;
  let keySource: RestoreResult['keySource'];
  if (o.keyFile) {
    verifier = await readVerifier(readKeyArg(o.keyFile), o.keyFile);
    keySource = 'given';
  } else if (existsSync(path.join(keysDir, KEY_FILES.signingPublic))) {
    verifier = await installationVerifier(keysDir);
    keySource = 'installation';
  } else {
    throw new UserError(`give NIA's public signing key (kept apart from the backup, as NIA exports it): ${o.dataDir} has no installation key, and the backup's own copy proves nothing`, 'restore.no-key', { kind: 'invalid', field: 'key' });
  }

  const text = readRegular(path.join(from, MANIFEST), inBackup(MANIFEST), MAX_MANIFEST).toString('utf8');
  const signature = readRegular(path.join(from, `${MANIFEST}.asc`), inBackup(`${MANIFEST}.asc`), 1024 * 1024).toString('utf8');
  let m: BackupManifest;
  try {
    m = manifestSchema.parse(JSON.parse(text));
  } catch {
    throw new UserError(`${o.from}: manifest.json is not a nia-link backup manifest`, 'backup.manifest', 'invalid');
  }
  if (!(await signatureValid(text, signature, verifier))) {
    throw new UserError(`${o.from}: the manifest's signature does not verify with key ${verifier.fingerprint}; nothing restored`, 'backup.signature');
  }
  const listed = new Set(m.files.map((f) => f.path));
  const odd = m.files.find((f) => !LISTABLE.test(f.path) || f.path.split('/').includes('..'));
  if (odd || listed.size !== m.files.length) throw new UserError(`${o.from}: the manifest lists ${odd ? `a path a backup never holds (${JSON.stringify(odd.path)})` : 'a file twice'}; nothing restored`, 'backup.manifest');
  if (!listed.has(DB)) throw new UserError(`${o.from}: the backup holds no control database`, 'backup.no-database', 'invalid');
  const extra = unlisted(from, listed);
  if (extra.length) {
    throw new UserError(`${o.from}: ${extra[0]}${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''}; nothing restored (only what NIA signed is installed: remove it, or make a new backup)`, 'backup.unlisted');
  }

  const dbFile = controlDbFile(dataDir);
  const hasKeys = !emptyOrAbsent(keysDir);
  if ((existsSync(dbFile) || hasKeys) && !o.force) {
    throw new UserError(`${o.dataDir} already holds an installation (${existsSync(dbFile) ? 'nia-link.db' : 'keys'}): restore into an empty data directory, or have the current one moved aside`, 'restore.exists', { field: 'force' });
  }

  // Staging: private directories inside the target (and beside the keys directory, which may live
  // elsewhere), so that each install step is a rename on one file system.
  const createdDataDir = mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const createdKeysParent = mkdirSync(path.dirname(keysDir), { recursive: true, mode: 0o700 });
  const staging = mkdtempSync(path.join(dataDir, '.restore-'));
  const keyStaging = mkdtempSync(path.join(path.dirname(keysDir), '.restore-keys-'));
  chmodSync(staging, 0o700);
  chmodSync(keyStaging, 0o700);
  const stagedKeys = path.join(keyStaging, 'keys');
  const stagedPath = (rel: string) => (rel.startsWith(KEYS + '/') ? path.join(stagedKeys, rel.slice(KEYS.length + 1)) : path.join(staging, rel));
  /** Undo steps of the install, run in reverse if anything after them fails. */
  const undo: (() => void)[] = [];
  const replaced: string[] = [];
  const suffix = `.replaced-${stamp(o.now)}`;
  try {
    for (const f of m.files) stageFile(path.join(from, f.path), stagedPath(f.path), f, inBackup(f.path));
    mkdirSync(stagedKeys, { recursive: true, mode: 0o700 });
    chmodSync(stagedKeys, 0o700);
    const stagedArchive = path.join(staging, ARCHIVE);
    const hasArchive = m.files.some((f) => f.path.startsWith(ARCHIVE + '/'));

    // The staged copy: the key that signed the manifest is the installation's, and its log verifies up to the signed head.
    const stagedPub = path.join(stagedKeys, KEY_FILES.signingPublic);
    if (existsSync(stagedPub)) {
      const own = await installationVerifier(stagedKeys);
      if (own.fingerprint !== verifier.fingerprint) throw new UserError(`${o.from}: the backup's signing key ${own.fingerprint} is not the key ${verifier.fingerprint} that signed its manifest; nothing restored`, 'backup.key');
    }
    const ro = openReadOnly(stagedPath(DB));
    let before: VerifyReport;
    try {
      before = await verifyUsageLog(ro, { keysDir: stagedKeys, archives: hasArchive ? [stagedArchive] : [] });
    } finally {
      await ro.close();
    }
    if (!before.ok) throw new UserError(`${o.from}: the usage log in the backup does not verify at seq ${before.bad!.seq} (${before.bad!.reason}); nothing restored`, 'backup.log');
    const headMismatch = (r: VerifyReport) => r.lastSeq !== m.log.lastSeq || r.headHash !== m.log.headHash;
    if (headMismatch(before)) throw new UserError(`${o.from}: the usage log in the backup ends at seq ${before.lastSeq ?? '-'}, not at seq ${m.log.lastSeq ?? '-'} as the signed manifest says; nothing restored`, 'backup.log');

    // Everything checked: rename into place, each step with its undo.
    const moveAside = (p: string) => {
      if (!existsSync(p) && !isSymlink(p)) return;
      const to = asideName(p, suffix);
      renameSync(p, to);
      undo.push(() => renameSync(to, p));
      replaced.push(to);
    };
    const install = (staged: string, p: string, kind: 'file' | 'dir') => {
      renameSync(staged, p);
      undo.push(() => rmSync(p, { recursive: kind === 'dir', force: true }));
    };
    for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`, `${dbFile}-journal`]) moveAside(f);
    // The service's connection leaves these beside a restored database: they go when it is undone.
    undo.push(() => {
      for (const f of [`${dbFile}-wal`, `${dbFile}-shm`]) rmSync(f, { force: true });
    });
    install(stagedPath(DB), dbFile, 'file');
    moveAside(keysDir);
    install(stagedKeys, keysDir, 'dir');
    const archiveDir = path.join(dataDir, ARCHIVE);
    if (hasArchive) {
      moveAside(archiveDir);
      install(stagedArchive, archiveDir, 'dir');
    }
    const configFile = path.join(dataDir, CONFIG);
    // The operator's current config file stays; a restored one is installed only where there is none.
    if (listed.has(CONFIG) && !existsSync(configFile) && !isSymlink(configFile)) install(stagedPath(CONFIG), configFile, 'file');

    // Opened as the service opens it (migrations of a newer version apply), and verified once more.
    let log: VerifyReport;
    try {
      const cdb = openControlDb(dataDir);
      try {
        log = await verifyUsageLog(cdb, { keysDir, archives: hasArchive ? [archiveDir] : [] });
      } finally {
        await cdb.close();
      }
    } catch (err) {
      throw new UserError(`the restored installation does not open: ${(err as Error).message.split('\n')[0]}; rolled back, ${o.dataDir} is as it was`, 'restore.post-check');
    }
    if (!log.ok) throw new UserError(`the restored usage log does not verify at seq ${log.bad!.seq} (${log.bad!.reason}); rolled back, ${o.dataDir} is as it was`, 'restore.post-check');
    if (headMismatch(log)) throw new UserError(`the restored usage log ends at seq ${log.lastSeq ?? '-'}, not at seq ${m.log.lastSeq ?? '-'} as the signed manifest says; rolled back, ${o.dataDir} is as it was`, 'restore.post-check');

    // Done: an empty directory moved aside is no evidence of anything.
    for (const r of replaced) if (statSync(r).isDirectory() && readdirSync(r).length === 0) rmdirSync(r);
    return { signingKey: verifier.fingerprint, keySource, files: m.files.length, replaced: replaced.filter((r) => existsSync(r)), log };
  } catch (err) {
    for (const step of undo.reverse()) step();
    if (createdDataDir) rmSync(createdDataDir, { recursive: true, force: true });
    if (createdKeysParent) rmSync(createdKeysParent, { recursive: true, force: true });
    throw err;
  } finally {
    rmSync(staging, { recursive: true, force: true });
    rmSync(keyStaging, { recursive: true, force: true });
  }
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
