import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateSigningKey } from '../../src/crypto';
import { backup, openReadOnly } from '../../src/backup';
import { canonicalJson } from '../../src/usagelog/chain';
import { exportEvidence, verifyEvidence } from '../../src/usagelog/evidence';
import { signText } from '../../src/usagelog/signatures';
import * as openpgp from 'openpgp';
import { approvedLink, cleanupKeys, cli, makeAgencyKeys, servicesOn, tmpDir, type AgencyKeys } from '../helpers/world';
import { logWorld, type LogWorld } from './usagelog-world';

/** Every entry under `dir` (not following links): type, mode and content hash. Two equal snapshots: nothing changed. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const r = path.join(rel, name);
      const full = path.join(dir, r);
      const st = lstatSync(full);
      if (st.isSymbolicLink()) out[r] = `link ${readlinkSync(full)}`;
      else if (st.isDirectory()) {
        out[r] = `dir ${(st.mode & 0o777).toString(8)}`;
        walk(r);
      } else out[r] = `file ${(st.mode & 0o777).toString(8)} ${createHash('sha256').update(readFileSync(full)).digest('hex')}`;
    }
  };
  walk('');
  return out;
}

const oneLine = (s: string) => s.trim().split('\n');

let scratch: string;
let nia: string; // NIA's installation
let pristine: string; // a genuine backup of it
let niaKey: string; // NIA's public key, kept apart from backups
let target: string; // an installation restored from the backup, which the attacks try to replace

beforeAll(() => {
  scratch = tmpDir('nia-link-restore-');
  nia = path.join(scratch, 'nia');
  expect(cli(nia, ['init']).code).toBe(0);
  for (const c of ['A001', 'A002']) expect(cli(nia, ['agency', 'add', '--code', c, '--name', `機關${c}`]).code).toBe(0);
  expect(cli(nia, ['log', 'checkpoint']).code).toBe(0);
  niaKey = path.join(scratch, 'nia.pub.asc');
  writeFileSync(niaKey, cli(nia, ['key', 'export-signing']).stdout);
  pristine = path.join(scratch, 'pristine');
  expect(cli(nia, ['backup', '--out', pristine]).code).toBe(0);
  target = path.join(scratch, 'target');
  const r = cli(target, ['restore', '--from', pristine, '--key', niaKey]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let n = 0;
/** A fresh copy of the genuine backup for one attack. */
function backupCopy(): string {
  const dir = path.join(scratch, `bk-${++n}`);
  cpSync(pristine, dir, { recursive: true });
  return dir;
}

/** Restore `bk` over the target installation (its own key checks the manifest), expecting a refusal that changed nothing. */
function refusedOverTarget(bk: string, why: RegExp): void {
  const before = snapshot(target);
  const r = cli(target, ['restore', '--from', bk, '--force']);
  expect(r.code).toBe(1);
  expect(oneLine(r.stderr)).toHaveLength(1);
  expect(r.stderr.trim()).toMatch(why);
  expect(r.stdout).not.toMatch(/verified/);
  expect(snapshot(target)).toEqual(before);
}

/** Restore `bk` into a new data directory, expecting a refusal that leaves no directory behind. */
function refusedIntoNew(bk: string, why: RegExp, extra: string[] = ['--key', niaKey]): void {
  const fresh = path.join(scratch, `fresh-${++n}`);
  const r = cli(fresh, ['restore', '--from', bk, ...extra]);
  expect(r.code).toBe(1);
  expect(oneLine(r.stderr)).toHaveLength(1);
  expect(r.stderr.trim()).toMatch(why);
  expect(existsSync(fresh)).toBe(false);
}

describe('restore installs only what the signed manifest covers', () => {
  it('a config.json planted in the backup (defender and auto-suspension off) is refused, not installed', () => {
    const bk = backupCopy();
    expect(existsSync(path.join(bk, 'config.json'))).toBe(false);
    writeFileSync(path.join(bk, 'config.json'), JSON.stringify({ sftp: { defender: { enabled: false } }, policy: { autoSuspend: false }, redisUrl: 'redis://evil.example:6379' }));
    refusedIntoNew(bk, /^nia-link: .*config\.json is not in the signed manifest; nothing restored/);
    refusedOverTarget(bk, /config\.json is not in the signed manifest/);
  });

  it('an extra key file planted in keys/ is refused, not installed', () => {
    const bk = backupCopy();
    writeFileSync(path.join(bk, 'keys', 'authorized_keys'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAttackerKeyAttackerKeyAttackerKey evil\n');
    refusedIntoNew(bk, /keys\/authorized_keys is not in the signed manifest/);
    refusedOverTarget(bk, /keys\/authorized_keys is not in the signed manifest/);
  });

  it('a listed file replaced by a symlink (to /dev/zero) is refused without reading it', () => {
    const bk = backupCopy();
    rmSync(path.join(bk, 'nia-link.db'));
    symlinkSync('/dev/zero', path.join(bk, 'nia-link.db'));
    refusedOverTarget(bk, /nia-link\.db is not a regular file/);
  }, 20000);

  it('a file modified after the manifest was signed is refused and the installation stays as it was', () => {
    const bk = backupCopy();
    const priv = readdirSync(path.join(bk, 'keys')).find((f) => f.endsWith('.key.asc'))!;
    writeFileSync(path.join(bk, 'keys', priv), readFileSync(path.join(bk, 'keys', priv), 'utf8').replace(/\n\n/, '\nComment: swapped\n\n'));
    refusedOverTarget(bk, new RegExp(`keys/${priv.replace(/\./g, '\\.')} does not match its SHA-256 in the signed manifest; nothing restored`));
    const bk2 = backupCopy();
    const db = path.join(bk2, 'nia-link.db');
    const bytes = readFileSync(db);
    bytes[bytes.length - 10] ^= 0xff;
    writeFileSync(db, bytes);
    refusedOverTarget(bk2, /nia-link\.db does not match its SHA-256/);
    refusedIntoNew(bk2, /nia-link\.db does not match its SHA-256/);
  });

  it('a failing check after installing (the service cannot open the restored database) exits non-zero and rolls back', async () => {
    // A copy of NIA's installation whose database lost its migration history: its usage log is
    // intact and NIA signs its backup, but opened as the service opens it, it cannot be migrated.
    const broken = path.join(scratch, 'broken');
    cpSync(nia, broken, { recursive: true });
    const db = new Database(path.join(broken, 'nia-link.db'));
    db.exec('DELETE FROM __drizzle_migrations');
    db.close();
    const bk = path.join(scratch, 'bk-broken');
    const ro = openReadOnly(path.join(broken, 'nia-link.db'));
    try {
      const b = await backup(ro, { dataDir: broken, keysDir: path.join(broken, 'keys'), out: bk, now: new Date() });
      expect(b.log.ok).toBe(true);
    } finally {
      ro.close();
    }
    refusedOverTarget(bk, /^nia-link: the restored installation does not open: .*; rolled back, .* is as it was$/);
    refusedIntoNew(bk, /rolled back/);
    // The target still works as it did.
    expect(cli(target, ['log', 'verify']).code).toBe(0);
  });

  it('the genuine backup still restores over the target with --force, moving the old installation aside', () => {
    const r = cli(target, ['restore', '--from', backupCopy(), '--force']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^restored \d+ files into .*checked with the installation key.*usage log verified through seq \d+/);
    expect(r.stdout).toMatch(/moved aside: .*nia-link\.db\.replaced-/);
    expect(readdirSync(target).filter((f) => f.startsWith('.restore'))).toEqual([]);
  });
});

describe('restore trusts NIA key held apart from the backup, never the key inside it', () => {
  it('without --key and without an installation at --data-dir, restore says in one line to give --key', () => {
    refusedIntoNew(pristine, /^nia-link: give NIA's public signing key .*\(--key\)$/, []);
  });

  it("a backup made and signed by another key (an attacker's own installation) is refused with NIA's key", () => {
    const evil = path.join(scratch, 'evil');
    expect(cli(evil, ['init']).code).toBe(0);
    const bk = path.join(scratch, 'bk-evil');
    expect(cli(evil, ['backup', '--out', bk]).code).toBe(0);
    refusedIntoNew(bk, /the manifest's signature does not verify with key [0-9A-F]{40}; nothing restored/);
    refusedIntoNew(bk, /give NIA's public signing key .*\(--key\)$/, []);
    refusedOverTarget(bk, /signature does not verify/);
  });
});

describe('log verify --evidence trusts NIA key held apart from the package', () => {
  let keys: AgencyKeys;
  let lw: LogWorld;
  let pkg: string;
  let localKey: string;
  beforeAll(async () => {
    keys = makeAgencyKeys();
    lw = await logWorld();
    const w = servicesOn(lw.cdb);
    const link = await approvedLink(w, keys);
    await lw.append({ type: 'file.downloaded', agency: 'A001', linkId: link, actor: 'a001', ip: '10.0.0.1', object: 'f.csv.pgp', detail: { bytes: 1 } });
    pkg = path.join(scratch, 'evidence');
    await exportEvidence(lw.cdb, { keysDir: lw.keysDir, linkId: link, from: '2000-01-01', to: '2099-12-31', out: pkg, now: new Date() });
    localKey = path.join(lw.keysDir, 'nia-signing.pub.asc');
  });
  afterAll(() => {
    lw?.close();
    if (keys) cleanupKeys(keys);
  });
  const packageCopy = () => {
    const dir = path.join(scratch, `pkg-${++n}`);
    cpSync(pkg, dir, { recursive: true });
    return dir;
  };

  it('without --key and without an installation at --data-dir, it says in one line to give --key', () => {
    const r = cli(path.join(scratch, 'nothing-here'), ['log', 'verify', '--evidence', packageCopy()]);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toEqual([expect.stringMatching(/^nia-link: give NIA's public signing key .*\(--key\)$/)]);
    expect(r.stdout).toBe('');
  });

  it("a package re-signed with another key (its nia-signing.pub.asc swapped) fails with NIA's key, given or the installation's", async () => {
    const dir = packageCopy();
    const k = await generateSigningKey('Not NIA', 'x@evil.example', new Date(Date.now() - 86400000));
    const evilKey = await openpgp.readPrivateKey({ armoredKey: k.privateKey });
    writeFileSync(path.join(dir, 'nia-signing.pub.asc'), k.publicKey);
    const m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    m.files['nia-signing.pub.asc'] = createHash('sha256').update(k.publicKey).digest('hex');
    m.signingKey = k.fingerprint;
    const text = canonicalJson(m);
    writeFileSync(path.join(dir, 'manifest.json'), text);
    writeFileSync(path.join(dir, 'manifest.json.asc'), await signText(text, evilKey));

    expect(await verifyEvidence(dir, localKey)).toMatchObject({ ok: false, bad: { reason: expect.stringMatching(/signature does not verify/) } });
    const r = cli(lw.dataDir, ['log', 'verify', '--evidence', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^evidence package FAILED verification at seq \d+: the manifest's signature does not verify/);
    // The genuine package verifies with the installation's key, without --key.
    const ok = cli(lw.dataDir, ['log', 'verify', '--evidence', packageCopy()]);
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toMatch(/^evidence package verified/);
  });

  it('a package whose records.jsonl or manifest.json is a symlink to /dev/zero is refused at once, not read', async () => {
    for (const name of ['records.jsonl', 'manifest.json', 'manifest.json.asc', 'checkpoints.json']) {
      const dir = packageCopy();
      rmSync(path.join(dir, name));
      symlinkSync('/dev/zero', path.join(dir, name));
      await expect(verifyEvidence(dir, localKey)).rejects.toThrow(new RegExp(`${name.replace(/\./g, '\\.')} is a symbolic link, not a regular file: refused`));
    }
    const dir = packageCopy();
    rmSync(path.join(dir, 'records.jsonl'));
    symlinkSync('/dev/zero', path.join(dir, 'records.jsonl'));
    const r = cli(lw.dataDir, ['log', 'verify', '--evidence', dir]);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toEqual([expect.stringMatching(/records\.jsonl is a symbolic link, not a regular file: refused$/)]);
  }, 20000);

  it('a package file that is a FIFO or a directory is refused without blocking', async () => {
    const dir = packageCopy();
    rmSync(path.join(dir, 'records.jsonl'));
    expect(spawnSync('mkfifo', [path.join(dir, 'records.jsonl')]).status).toBe(0);
    await expect(verifyEvidence(dir, localKey)).rejects.toThrow(/records\.jsonl is not a regular file: refused/);
    const dir2 = packageCopy();
    rmSync(path.join(dir2, 'checkpoints.json'));
    mkdirSync(path.join(dir2, 'checkpoints.json'));
    await expect(verifyEvidence(dir2, localKey)).rejects.toThrow(/checkpoints\.json is not a regular file: refused/);
  }, 20000);
});
