import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../src/config';
import type { DeliveryView } from '../../src/extract';
import type { RunningService } from '../../src/main';
import { buildDelivery, niaKeys, sftpBatch, sftpConfig, startSftp } from '../helpers/sftp';
import { approvedLink, cleanupKeys, cli, makeAgencyKeys, openTestWorld, startRole, tmpDir, type AgencyKeys, type AnyWorld } from '../helpers/world';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let keys: AgencyKeys;
let w: AnyWorld;
let shared: string;
let out: string;
let config: Config;
let svc: RunningService;
let port: number;
let linkId: number;
let d: DeliveryView;

// The outbox on a directory of its own, outside the data directory: what a shared mount looks like to each host.
beforeAll(async () => {
  keys = makeAgencyKeys();
  w = await openTestWorld();
  shared = tmpDir('nia-link-shared-outbox-');
  out = tmpDir('nia-link-outbox-dir-out-');
  config = sftpConfig(w.dataDir, { NIA_LINK_OUTBOX_DIR: shared });
  await niaKeys(config, keys);
  linkId = await approvedLink(w, keys);
  d = await buildDelivery(w, config, linkId);
  ({ svc, port } = await startSftp(config, w));
});
afterAll(async () => {
  await svc?.stop();
  await w?.close();
  cleanupKeys(keys);
  for (const dir of [shared, out]) rmSync(dir, { recursive: true, force: true });
});

describe('outbox.dir outside the data directory (NIA_LINK_OUTBOX_DIR)', () => {
  it('the extract, its manifest and signature are written there, and nothing under <data-dir>/outbox', () => {
    const name = path.basename(d.path!);
    expect(d.path).toBe(path.join(shared, String(linkId), name));
    expect(d.manifest).toBe(path.join(shared, String(linkId), name.replace('.csv.pgp', '.manifest.json')));
    expect(readdirSync(path.join(shared, String(linkId))).sort()).toEqual([name, name.replace('.csv.pgp', '.manifest.json'), name.replace('.csv.pgp', '.manifest.json.asc')].sort());
    expect(sha256(readFileSync(d.path!))).toBe(d.sha256);
    expect(existsSync(path.join(w.dataDir, 'outbox'))).toBe(false);
  });

  it('delivery show --json gives the absolute path in the configured outbox', () => {
    const r = cli(w.dataDir, ['delivery', 'show', String(d.id), '--json'], { NIA_LINK_OUTBOX_DIR: shared, REDIS_URL: config.redisUrl! });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ id: d.id, path: d.path });
  });

  it('a worker role with the same setting builds `deliver --wait --json` there: `path` is in it, nothing is under <data-dir>/outbox', async () => {
    const env = { REDIS_URL: config.redisUrl!, NIA_LINK_OUTBOX_DIR: shared, NIA_LINK_HTTP_PORT: '0' };
    const worker = await startRole(w.dataDir, 'worker', env);
    try {
      expect(worker.output()).toContain(`files into the outbox ${shared}`);
      const r = cli(w.dataDir, ['deliver', String(linkId), '--full', '--wait', '--json'], env);
      expect(r.code).toBe(0);
      const v = JSON.parse(r.stdout) as DeliveryView;
      expect(v.status).toBe('built');
      expect(path.dirname(v.path!)).toBe(path.join(shared, String(linkId)));
      expect(sha256(readFileSync(v.path!))).toBe(v.sha256);
      expect(readdirSync(path.dirname(v.path!)).filter((f) => f.startsWith('.'))).toEqual([]);
      expect(existsSync(path.join(w.dataDir, 'outbox'))).toBe(false);
    } finally {
      worker.kill();
      await worker.exited;
    }
  });

  it('the real OpenSSH sftp client lists it in /outbox and downloads it byte-identical, from the configured outbox only', async () => {
    const name = path.basename(d.path!);
    // A decoy where the default outbox would be: the server must not serve it.
    const decoyDir = path.join(w.dataDir, 'outbox', String(linkId));
    mkdirSync(decoyDir, { recursive: true });
    writeFileSync(path.join(decoyDir, name), 'not the delivery');
    try {
      const r = await sftpBatch(port, keys.sshPrivateFile, 'a001', `cd /outbox\nls -1\nget ${name} ${out}/got.pgp\nget ${name.replace('.csv.pgp', '.manifest.json')} ${out}/m.json`);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(name);
      expect(readFileSync(`${out}/got.pgp`).equals(readFileSync(d.path!))).toBe(true);
      expect(sha256(readFileSync(`${out}/got.pgp`))).toBe(d.sha256);
      expect(readFileSync(`${out}/m.json`).equals(readFileSync(d.manifest!))).toBe(true);
    } finally {
      rmSync(path.join(w.dataDir, 'outbox'), { recursive: true, force: true });
    }
  });

  it('a symbolic link planted in the outbox under a delivery\'s name is neither listed nor served', async () => {
    const manifest = path.basename(d.manifest!);
    writeFileSync(`${out}/secret`, 'host secret');
    rmSync(d.manifest!);
    symlinkSync(`${out}/secret`, d.manifest!);
    const r = await sftpBatch(port, keys.sshPrivateFile, 'a001', `cd /outbox\nls -1\nget ${manifest} ${out}/leak`);
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toMatch(new RegExp(`^${manifest.replace(/\./g, '\\.')}$`, 'm'));
    expect(existsSync(`${out}/leak`)).toBe(false);
  });

  it('a file that leaves the configured outbox is no longer listed or served', async () => {
    const name = path.basename(d.path!);
    rmSync(d.path!);
    const r = await sftpBatch(port, keys.sshPrivateFile, 'a001', `cd /outbox\nls -1\nget ${name} ${out}/gone.pgp`);
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toMatch(new RegExp(`^${name.replace(/\./g, '\\.')}$`, 'm'));
    expect(existsSync(`${out}/gone.pgp`)).toBe(false);
  });
});
