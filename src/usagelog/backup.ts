import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { type ControlDb, controlDbFile, openControlDb, schema } from '../db';
import { KEY_FILES } from '../crypto';
import { UserError } from '../errors';
import { canonicalJson } from './chain';
import { sha256File } from './files';
import { installationVerifier, loadSigner, readVerifier, signatureValid, signText, type Verifier } from './signatures';
import { verifyUsageLog, type VerifyReport } from './verify';

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
export function openReadOnly(file: string): ControlDb {
  const sqlite = new Database(file, { readonly: true, fileMustExist: true });
  const db = drizzle(sqlite, { schema });
  const readOnly = (): never => {
    throw new Error(`${file} is open read-only`);
  };
  return {
    db,
    sqlite,
    file,
    write: readOnly,
    close: () => sqlite.close(),
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
  if (!emptyOrAbsent(out)) throw new UserError(`${o.out} is not an empty directory: give a new one for the backup`);
  const signer = await loadSigner(o.keysDir);
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true, mode: 0o700 });
  try {
    await cdb.sqlite.backup(path.join(tmp, DB));
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
      ro.close();
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
  /** NIA's public key as the operator holds it; default: the target's key, else the backup's own. */
  keyFile?: string;
}

export interface RestoreResult {
  signingKey: string;
  keySource: 'given' | 'installation' | 'backup';
  files: number;
  replaced: string[];
  log: VerifyReport;
}

/**
 * Check a backup completely — NIA's signature on the manifest, every file's SHA-256, and the usage
 * log inside it (chain, anchors, checkpoints) — and only then put it in place. An existing database
 * or keys directory is moved aside (`*.replaced-<time>`), never deleted, and only with `force`.
 */
export async function restore(o: RestoreOptions): Promise<RestoreResult> {
  const from = path.resolve(o.from);
  const read = (name: string) => {
    try {
      return readFileSync(path.join(from, name), 'utf8');
    } catch {
      throw new UserError(`${o.from}: ${name} is missing; not a nia-link backup`);
    }
  };
  const text = read(MANIFEST);
  let m: BackupManifest;
  try {
    m = manifestSchema.parse(JSON.parse(text));
  } catch {
    throw new UserError(`${o.from}: manifest.json is not a nia-link backup manifest`);
  }
  let verifier: Verifier;
  let keySource: RestoreResult['keySource'];
  if (o.keyFile) {
    verifier = await readVerifier(readFileSync(o.keyFile, 'utf8'), o.keyFile);
    keySource = 'given';
  } else if (existsSync(path.join(o.keysDir, KEY_FILES.signingPublic))) {
    verifier = await installationVerifier(o.keysDir);
    keySource = 'installation';
  } else {
    verifier = await readVerifier(read(path.join(KEYS, KEY_FILES.signingPublic)), 'the backup signing key');
    keySource = 'backup';
  }
  if (!(await signatureValid(text, read(`${MANIFEST}.asc`), verifier))) {
    throw new UserError(`${o.from}: the manifest's signature does not verify with key ${verifier.fingerprint}; nothing restored`, 'backup.signature');
  }
  for (const f of m.files) {
    const file = path.join(from, f.path);
    if (path.relative(from, file).startsWith('..') || !existsSync(file) || sha256File(file) !== f.sha256) {
      throw new UserError(`${o.from}: ${f.path} is missing or does not match its SHA-256 in the signed manifest; nothing restored`, 'backup.corrupt');
    }
  }
  if (!m.files.some((f) => f.path === DB)) throw new UserError(`${o.from}: the backup holds no control database`);
  const ro = openReadOnly(path.join(from, DB));
  let before: VerifyReport;
  try {
    const archives = m.files.some((f) => f.path.startsWith(ARCHIVE + path.sep)) ? [path.join(from, ARCHIVE)] : [];
    before = await verifyUsageLog(ro, { keysDir: path.join(from, KEYS), archives });
  } finally {
    ro.close();
  }
  if (!before.ok) throw new UserError(`${o.from}: the usage log in the backup does not verify at seq ${before.bad!.seq} (${before.bad!.reason}); nothing restored`, 'backup.log');

  // Everything checked: put it in place.
  const dbFile = controlDbFile(o.dataDir);
  const hasKeys = !emptyOrAbsent(o.keysDir);
  if ((existsSync(dbFile) || hasKeys) && !o.force) {
    throw new UserError(`${o.dataDir} already holds an installation (${existsSync(dbFile) ? 'nia-link.db' : 'keys'}): restore into an empty data directory, or pass --force to move the current one aside`, 'restore.exists');
  }
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const replaced: string[] = [];
  const suffix = `.replaced-${stamp(o.now)}`;
  const tmpDb = `${dbFile}.restore-${process.pid}`;
  copyFileSync(path.join(from, DB), tmpDb);
  for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) {
    if (existsSync(f)) {
      renameSync(f, f + suffix);
      replaced.push(f + suffix);
    }
  }
  renameSync(tmpDb, dbFile);
  if (hasKeys) {
    renameSync(o.keysDir, o.keysDir + suffix);
    replaced.push(o.keysDir + suffix);
  }
  copyTree(path.join(from, KEYS), o.keysDir);
  chmodSync(o.keysDir, 0o700);
  copyTree(path.join(from, ARCHIVE), path.join(o.dataDir, ARCHIVE), true);
  if (existsSync(path.join(from, CONFIG)) && !existsSync(path.join(o.dataDir, CONFIG))) copyFileSync(path.join(from, CONFIG), path.join(o.dataDir, CONFIG));

  // Opened as the service opens it (migrations of a newer version apply), and verified once more.
  const cdb = openControlDb(o.dataDir);
  try {
    const log = await verifyUsageLog(cdb, { keysDir: o.keysDir });
    return { signingKey: verifier.fingerprint, keySource, files: m.files.length, replaced, log };
  } finally {
    cdb.close();
  }
}
