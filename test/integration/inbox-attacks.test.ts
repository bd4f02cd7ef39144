import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Client, SFTPWrapper } from 'ssh2';
import type { Config } from '../../src/config';
import { inbox } from '../../src/db/repositories';
import type { DeliveryView } from '../../src/extract';
import type { RunningService } from '../../src/main';
import { spoolDirOf } from '../../src/sftp/inbox';
import { listLog } from '../../src/usagelog';
import { buildDelivery, connect, niaKeys, openSftp, sftpBatch, sftpConfig, startSftp } from '../helpers/sftp';
import { approvedLink, cleanupKeys, eventually, makeAgencyKeys, openTestWorld, tmpDir, type AgencyKeys, type AnyWorld } from '../helpers/world';

const MAX_BYTES = 256 * 1024;
const MAX_PENDING_FILES = 10;
const MAX_PENDING_BYTES = 600 * 1024;
const OK = 0;
const NO_SUCH_FILE = 2;
const PERMISSION_DENIED = 3;
const FAILURE = 4;
// SFTP open flags (draft-ietf-secsh-filexfer-02).
const F = { READ: 1, WRITE: 2, APPEND: 4, CREAT: 8, TRUNC: 16, EXCL: 32 };

let keys: AgencyKeys;
let w: AnyWorld;
let config: Config;
let svc: RunningService;
let port: number;
let dir: string;
let delivery: DeliveryView;
const links: Record<string, number> = {};

const key = () => readFileSync(keys.sshPrivateFile);
const logOf = async (type: string) => (await listLog(w.cdb.db, { type })).map((r) => ({ ...r, detail: JSON.parse(r.detail) }));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Files in the spool directory that no pending upload holds: what an attack may have left. */
async function strayFiles(): Promise<string[]> {
  let names: string[];
  try {
    names = readdirSync(spoolDirOf(config.dataDir));
  } catch {
    return [];
  }
  const held = new Set((await inbox.stalePending(w.cdb.db, '9999')).map((u) => path.basename(u.spool)));
  return names.filter((n) => !held.has(n));
}
const pendingNames = async (linkId: number) => (await inbox.pendingUploads(w.cdb.db, linkId)).map((u) => u.name);

function call<T>(fn: (cb: (err: any, v?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));
}
/** The SFTP status code a request ends with (0 when it succeeds). */
async function code(fn: (cb: (err: any, v?: unknown) => void) => void): Promise<number> {
  try {
    await call(fn);
    return OK;
  } catch (err) {
    return (err as { code: number }).code;
  }
}
/** The status and message a request ends with. */
async function outcome(fn: (cb: (err: any, v?: unknown) => void) => void): Promise<{ code: number; message: string }> {
  try {
    await call(fn);
    return { code: OK, message: '' };
  } catch (err) {
    return { code: (err as { code: number }).code, message: (err as Error).message };
  }
}

async function session(user = 'a001', on = port): Promise<{ c: Client; s: SFTPWrapper }> {
  const c = await connect({ port: on, username: user, privateKey: key() });
  return { c, s: await openSftp(c) };
}
const open = (s: SFTPWrapper, p: string, flags: number | string) => call<Buffer>((cb) => s.open(p, flags as any, cb));
const write = (s: SFTPWrapper, h: Buffer, data: Buffer, at: number) => code((cb) => s.write(h, data, 0, data.length, at, cb));
const close = (s: SFTPWrapper, h: Buffer) => code((cb) => s.close(h, cb));
/** A complete upload over ssh2: open, one write per chunk in order, close. */
async function upload(s: SFTPWrapper, name: string, content: Buffer): Promise<number> {
  const h = await open(s, `/inbox/${name}`, 'w');
  for (let at = 0; at < content.length; at += 32 * 1024) {
    const rc = await write(s, h, content.subarray(at, at + 32 * 1024), at);
    if (rc !== OK) {
      await close(s, h);
      return rc;
    }
  }
  return close(s, h);
}
async function until(what: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  for (const t0 = Date.now(); Date.now() - t0 < ms; await sleep(50)) if (await what()) return true;
  return what();
}

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = await openTestWorld();
  dir = tmpDir('nia-link-inbox-attacks-');
  config = sftpConfig(w.dataDir, {
    NIA_LINK_SFTP_RECHECK: '60',
    NIA_LINK_INBOX_MAX_BYTES: String(MAX_BYTES),
    NIA_LINK_INBOX_MAX_PENDING_FILES: String(MAX_PENDING_FILES),
    NIA_LINK_INBOX_MAX_PENDING_BYTES: String(MAX_PENDING_BYTES),
    NIA_LINK_SFTP_REFUSED_LOG_INTERVAL: '1',
  });
  await niaKeys(config, keys);
  for (const account of ['a001', 'q001', 'q002', 'q003', 'q004', 's001']) links[account] = await approvedLink(w, keys, { account, methods: ['sftp-pull', 'batch-query'] });
  links.x001 = await approvedLink(w, keys, { account: 'x001', methods: ['sftp-pull'] });
  delivery = await buildDelivery(w, config, links.a001);
  // Nothing picks the uploads up here: they stay pending, as the quota needs.
  ({ svc, port } = await startSftp({ ...config }, w));
});
afterAll(async () => {
  await svc?.stop();
  await w?.close();
  cleanupKeys(keys);
  rmSync(dir, { recursive: true, force: true });
});

describe('R2.2 /inbox under attack', () => {
  let c: Client;
  let s: SFTPWrapper;
  beforeAll(async () => ({ c, s } = await session()));
  afterAll(() => c?.end());

  it('R2.2 traversal and odd names: PERMISSION_DENIED, and nothing reaches the disk', async () => {
    const names = [
      '/inbox/../outbox/x.csv.pgp',
      '/inbox/../../etc/x.csv.pgp',
      '../inbox/../../x.csv.pgp',
      '/inbox/.hidden.csv.pgp',
      '/inbox/-dash.csv.pgp',
      '/inbox/_under.csv.pgp',
      '/inbox/x.csv',
      '/inbox/x.pgp',
      '/inbox/x.txt',
      '/inbox/x.csv.pgp.exe',
      '/inbox/a b.csv.pgp',
      '/inbox/a/b.csv.pgp',
      '/inbox/..%2f..%2fx.csv.pgp',
      '/inbox/..\\..\\x.csv.pgp',
      '/inbox/x\0.csv.pgp',
      '/inbox/x.csv.pgp\0',
      '/inbox/x\n.csv.pgp',
      '/inbox/ümlaut.csv.pgp',
      `/inbox/${'a'.repeat(101)}.csv.pgp`,
      '/inbox/.csv.pgp',
      '/inbox',
      '/inbox/',
    ];
    for (const n of names) {
      for (const flags of ['w', 'wx']) expect([n, flags, await code((cb) => s.open(n, flags as any, cb))]).toEqual([n, flags, PERMISSION_DENIED]);
    }
    expect(await strayFiles()).toEqual([]);
    expect(await pendingNames(links.a001)).toEqual([]);
    expect(await logOf('file.uploaded')).toHaveLength(0);
    // The longest name allowed is taken (100 characters before .csv.pgp).
    expect(await upload(s, `${'a'.repeat(100)}.csv.pgp`, Buffer.from('x'))).toBe(OK);
  });

  it('R2.2 overwrite of a pending name: PERMISSION_DENIED however it is opened, and the upload stays as it was', async () => {
    const first = randomBytes(5000);
    expect(await upload(s, 'dup.csv.pgp', first)).toBe(OK);
    for (const flags of ['w', 'wx', F.WRITE | F.CREAT | F.TRUNC, F.WRITE | F.CREAT | F.EXCL, F.WRITE | F.CREAT, F.WRITE]) {
      expect([flags, await code((cb) => s.open('/inbox/dup.csv.pgp', flags as any, cb))]).toEqual([flags, PERMISSION_DENIED]);
    }
    // Relative to the start directory, and through `..`.
    expect(await code((cb) => s.open('../inbox/dup.csv.pgp', 'w', cb))).toBe(PERMISSION_DENIED);
    // The same new name from two sessions at once: the second is refused while the first is in progress.
    const other = await session();
    try {
      const h = await open(s, '/inbox/race.csv.pgp', 'w');
      expect(await code((cb) => other.s.open('/inbox/race.csv.pgp', 'w', cb))).toBe(PERMISSION_DENIED);
      expect(await write(s, h, Buffer.from('abc'), 0)).toBe(OK);
      expect(await close(s, h)).toBe(OK);
    } finally {
      other.c.end();
    }
    const rows = (await inbox.pendingUploads(w.cdb.db, links.a001)).filter((u) => u.name === 'dup.csv.pgp');
    expect(rows).toHaveLength(1);
    expect(rows[0].sha256).toBe(sha256(first));
    expect(sha256(readFileSync(rows[0].spool))).toBe(sha256(first));
    expect(await strayFiles()).toEqual([]);
  });

  it('R2.2 writes to / or /outbox: PERMISSION_DENIED (new names, delivered files, a read handle)', async () => {
    const own = `/outbox/${path.basename(delivery.path!)}`;
    for (const p of ['/x.csv.pgp', '/outbox/x.csv.pgp', own, '/outbox', '/']) {
      for (const flags of ['w', 'wx', 'a', 'r+', F.WRITE]) expect([p, flags, await code((cb) => s.open(p, flags as any, cb))]).toEqual([p, flags, PERMISSION_DENIED]);
    }
    const h = await open(s, own, 'r');
    expect(await write(s, h, Buffer.from('x'), 0)).toBe(PERMISSION_DENIED);
    expect(await code((cb) => s.fsetstat(h, { mode: 0o666 }, cb))).toBe(PERMISSION_DENIED);
    await close(s, h);
    expect(sha256(readFileSync(delivery.path!))).toBe(delivery.sha256);
  });

  it('R2.2 every other writing operation: RENAME, REMOVE, MKDIR, RMDIR, SETSTAT on a path, SYMLINK, READ of an inbox file → PERMISSION_DENIED, the upload kept', async () => {
    const p = '/inbox/dup.csv.pgp';
    const own = `/outbox/${path.basename(delivery.path!)}`;
    expect(await code((cb) => s.rename(p, '/inbox/moved.csv.pgp', cb))).toBe(PERMISSION_DENIED);
    expect(await code((cb) => s.rename(own, '/inbox/stolen.csv.pgp', cb))).toBe(PERMISSION_DENIED);
    expect(await code((cb) => s.unlink(p, cb))).toBe(PERMISSION_DENIED);
    expect(await code((cb) => s.unlink(own, cb))).toBe(PERMISSION_DENIED);
    expect(await code((cb) => s.mkdir('/inbox/sub', cb))).toBe(PERMISSION_DENIED);
    expect(await code((cb) => s.rmdir('/inbox', cb))).toBe(PERMISSION_DENIED);
    expect(await code((cb) => s.setstat('/inbox', { mode: 0o777 }, cb))).toBe(PERMISSION_DENIED);
    expect(await code((cb) => s.setstat(own, { mode: 0o666 }, cb))).toBe(PERMISSION_DENIED);
    expect(await code((cb) => s.setstat('/inbox/absent.csv.pgp', { mode: 0o666 }, cb))).toBe(PERMISSION_DENIED);
    expect(await code((cb) => s.symlink(own, '/inbox/link.csv.pgp', cb))).toBe(PERMISSION_DENIED);
    expect(await code((cb) => s.symlink('/etc/passwd', '/inbox/passwd.csv.pgp', cb))).toBe(PERMISSION_DENIED);
    for (const flags of ['r', 'r+', 'w+', F.READ | F.WRITE | F.CREAT | F.EXCL]) {
      expect([flags, await code((cb) => s.open(p, flags as any, cb))]).toEqual([flags, PERMISSION_DENIED]);
      expect([flags, await code((cb) => s.open('/inbox/fresh.csv.pgp', flags as any, cb))]).toEqual([flags, PERMISSION_DENIED]);
    }
    // Appending, or writing without creating: not an upload.
    for (const flags of ['a', 'ax', F.WRITE, F.WRITE | F.TRUNC, F.WRITE | F.CREAT]) {
      expect([flags, await code((cb) => s.open('/inbox/fresh.csv.pgp', flags as any, cb))]).toEqual([flags, PERMISSION_DENIED]);
    }
    // A read on an upload's own handle.
    const h = await open(s, '/inbox/readback.csv.pgp', 'w');
    expect(await write(s, h, Buffer.from('secret'), 0)).toBe(OK);
    expect(await code((cb) => s.read(h, Buffer.alloc(6), 0, 6, 0, cb))).toBe(PERMISSION_DENIED);
    await code((cb) => s.close(h, cb));
    expect(await pendingNames(links.a001)).toContain('dup.csv.pgp');
    expect((await pendingNames(links.a001)).some((n) => /moved|stolen|link|passwd|hard|fresh/.test(n))).toBe(false);
    expect(await strayFiles()).toEqual([]);
  });

  it('R2.2 what clients send around an upload: STAT/LSTAT (absent → NO_SUCH_FILE, pending → its size), OPENDIR/READDIR /inbox, FSETSTAT and SETSTAT of the upload → a no-op that keeps it', async () => {
    expect(await code((cb) => s.stat('/inbox/absent.csv.pgp', cb))).toBe(NO_SUCH_FILE);
    expect(await code((cb) => s.lstat('/inbox/absent.csv.pgp', cb))).toBe(NO_SUCH_FILE);
    const content = randomBytes(70_000);
    const h = await open(s, '/inbox/kept.csv.pgp', 'w');
    expect(await write(s, h, content.subarray(0, 40_000), 0)).toBe(OK);
    expect((await call<any>((cb) => s.fstat(h, cb))).size).toBe(40_000);
    expect(await code((cb) => s.fsetstat(h, { mtime: 1_700_000_000, atime: 1_700_000_000, mode: 0o644 }, cb))).toBe(OK);
    expect(await code((cb) => s.setstat('/inbox/kept.csv.pgp', { mtime: 1_700_000_000, atime: 1_700_000_000 }, cb))).toBe(OK);
    expect(await write(s, h, content.subarray(40_000), 40_000)).toBe(OK);
    expect(await close(s, h)).toBe(OK);
    // rclone sets the time after CLOSE: still a no-op.
    expect(await code((cb) => s.setstat('/inbox/kept.csv.pgp', { mtime: 1_700_000_000, atime: 1_700_000_000 }, cb))).toBe(OK);
    expect((await call<any>((cb) => s.stat('/inbox/kept.csv.pgp', cb))).size).toBe(content.length);
    expect((await call<any>((cb) => s.lstat('/inbox/kept.csv.pgp', cb))).size).toBe(content.length);
    const listing = await call<any[]>((cb) => s.readdir('/inbox', cb));
    expect(listing.find((e) => e.filename === 'kept.csv.pgp')?.attrs.size).toBe(content.length);
    const row = (await inbox.pendingUploads(w.cdb.db, links.a001)).find((u) => u.name === 'kept.csv.pgp')!;
    expect(row.sha256).toBe(sha256(content));
    expect(sha256(readFileSync(row.spool))).toBe(sha256(content));
  });

  it('R2.2 out-of-order and sparse writes: FAILURE, the upload is discarded, nothing is left, and the name is free again', async () => {
    const cases = [
      { name: 'hole.csv.pgp', writes: [[0, 100], [200, 100]], reason: 'upload.hole' },
      { name: 'rewrite.csv.pgp', writes: [[0, 100], [50, 100]], reason: 'upload.rewrite' },
      { name: 'late-start.csv.pgp', writes: [[4096, 100]], reason: 'upload.hole' },
      { name: 'again.csv.pgp', writes: [[0, 100], [0, 100]], reason: 'upload.rewrite' },
    ];
    for (const k of cases) {
      const h = await open(s, `/inbox/${k.name}`, 'w');
      const codes = [];
      for (const [at, n] of k.writes) codes.push(await write(s, h, randomBytes(n), at));
      expect(codes[codes.length - 1]).toBe(FAILURE);
      // Once discarded, nothing more is taken, and CLOSE does not pretend it was received.
      expect(await write(s, h, randomBytes(10), 100)).toBe(FAILURE);
      expect(await close(s, h)).toBe(FAILURE);
      expect(await pendingNames(links.a001)).not.toContain(k.name);
      await eventually(async () => expect((await logOf('upload.aborted')).find((r) => r.object === k.name)?.detail).toMatchObject({ reason: k.reason }));
    }
    expect((await logOf('file.uploaded')).some((r) => cases.some((k) => k.name === r.object))).toBe(false);
    expect(await strayFiles()).toEqual([]);
    // A malformed upload does not block the name.
    expect(await upload(s, 'hole.csv.pgp', Buffer.from('fine'))).toBe(OK);
  });

  it('R2.2 a file over the byte limit is refused while it is written (not after), and nothing is left on disk', async () => {
    const h = await open(s, '/inbox/huge.csv.pgp', 'w');
    const chunk = randomBytes(32 * 1024);
    let at = 0;
    let rc = OK;
    while (rc === OK && at < 4 * MAX_BYTES) {
      rc = await write(s, h, chunk, at);
      if (rc === OK) at += chunk.length;
    }
    // Refused at the first write that would pass the limit, long before the client stopped sending.
    expect(rc).toBe(FAILURE);
    expect(at).toBe(MAX_BYTES);
    expect(await strayFiles()).toEqual([]);
    expect(await close(s, h)).toBe(FAILURE);
    await eventually(async () => expect((await logOf('upload.aborted')).find((r) => r.object === 'huge.csv.pgp')?.detail).toMatchObject({ reason: 'upload.too-large', bytes: MAX_BYTES }));
    // The OpenSSH client gets the same.
    const big = path.join(dir, 'big.csv.pgp');
    writeFileSync(big, randomBytes(MAX_BYTES + 1));
    const r = await sftpBatch(port, keys.sshPrivateFile, 's001', `put ${big} /inbox/big.csv.pgp`);
    expect(r.code).not.toBe(0);
    expect(await pendingNames(links.s001)).not.toContain('big.csv.pgp');
    expect(await pendingNames(links.a001)).not.toContain('huge.csv.pgp');
    expect(await strayFiles()).toEqual([]);
  });
});

describe('R2.2 /inbox limits', () => {
  it('R2.2 the pending quota: files and bytes per link waiting for an answer; other links are not held back', async () => {
    const q = await session('q001');
    try {
      for (let i = 0; i < MAX_PENDING_FILES; i++) expect(await upload(q.s, `q${i}.csv.pgp`, randomBytes(100))).toBe(OK);
      const refused = await outcome((cb) => q.s.open('/inbox/one-more.csv.pgp', 'w', cb));
      expect(refused.code).toBe(FAILURE);
      expect(refused.message).toContain('inbox.pending-files');
      expect(await pendingNames(links.q001)).toHaveLength(MAX_PENDING_FILES);
      // Once one is answered, there is room again.
      const first = (await inbox.pendingUploads(w.cdb.db, links.q001))[0];
      await w.cdb.write((tx) => inbox.setState(tx, first.id, 'answered', { at: new Date().toISOString() }));
      rmSync(first.spool);
      expect(await upload(q.s, 'one-more.csv.pgp', randomBytes(100))).toBe(OK);
    } finally {
      q.c.end();
    }
    const b = await session('q002');
    try {
      // Bytes: two uploads of the largest size leave less than one more; what is left bounds the next upload too.
      expect(await upload(b.s, 'b1.csv.pgp', randomBytes(MAX_BYTES))).toBe(OK);
      expect(await upload(b.s, 'b2.csv.pgp', randomBytes(MAX_BYTES))).toBe(OK);
      const room = MAX_PENDING_BYTES - 2 * MAX_BYTES;
      expect(await upload(b.s, 'b3.csv.pgp', randomBytes(room + 1))).toBe(FAILURE);
      expect(await upload(b.s, 'b3.csv.pgp', randomBytes(room))).toBe(OK);
      const refused = await outcome((cb) => b.s.open('/inbox/b4.csv.pgp', 'w', cb));
      expect(refused.code).toBe(FAILURE);
      expect(refused.message).toContain('inbox.pending-bytes');
    } finally {
      b.c.end();
    }
    expect(await strayFiles()).toEqual([]);
  });

  it('R2.2 uploads opened side by side hold their share of the pending-bytes quota: together they never pass it', async () => {
    const { c, s } = await session('q003');
    try {
      // Each open upload holds the most it may grow to: two of the largest size, then what is left.
      const h = [await open(s, '/inbox/p1.csv.pgp', 'w'), await open(s, '/inbox/p2.csv.pgp', 'w'), await open(s, '/inbox/p3.csv.pgp', 'w')];
      const refused = await outcome((cb) => s.open('/inbox/p4.csv.pgp', 'w', cb));
      expect(refused.code).toBe(FAILURE);
      expect(refused.message).toContain('inbox.pending-bytes');
      const room = MAX_PENDING_BYTES - 2 * MAX_BYTES;
      expect(await write(s, h[0], randomBytes(MAX_BYTES), 0)).toBe(OK);
      expect(await write(s, h[1], randomBytes(MAX_BYTES), 0)).toBe(OK);
      expect(await write(s, h[2], randomBytes(room + 1), 0)).toBe(FAILURE);
      expect(await close(s, h[0])).toBe(OK);
      expect(await close(s, h[1])).toBe(OK);
      const pending = await inbox.pendingUploads(w.cdb.db, links.q003);
      expect(pending.map((u) => u.name).sort()).toEqual(['p1.csv.pgp', 'p2.csv.pgp']);
      expect(pending.reduce((n, u) => n + u.bytes, 0)).toBeLessThanOrEqual(MAX_PENDING_BYTES);
    } finally {
      c.end();
    }
    // The refusal is in the usage log, counted per account and address (a flood adds one record an interval).
    const refusedHere = async () => (await logOf('upload.refused')).filter((r) => r.linkId === links.q003);
    expect(await until(async () => (await refusedHere()).length > 0)).toBe(true);
    expect((await refusedHere())[0]).toMatchObject({ actor: 'q003', ip: '127.0.0.1', channel: 'batch-query', detail: { count: 1, reasons: { 'inbox.pending-bytes': 1 } } });
    expect(await until(async () => (await strayFiles()).length === 0)).toBe(true);
  });

  it('R2.2 the quota holds across front ends: uploads let through side by side by two SFTP servers (processes or hosts) that together would pass it are refused when recorded', async () => {
    // A second front end on the same installation: it knows nothing of the first one's uploads in progress.
    const other = await startSftp({ ...config }, w);
    const one = await session('q004');
    const two = await session('q004', other.port);
    try {
      for (let i = 0; i < MAX_PENDING_FILES - 1; i++) expect(await upload(one.s, `f${i}.csv.pgp`, randomBytes(100))).toBe(OK);
      // One file of room left: each front end lets one upload begin.
      const h1 = await open(one.s, '/inbox/last-a.csv.pgp', 'w');
      const h2 = await open(two.s, '/inbox/last-b.csv.pgp', 'w');
      expect(await write(one.s, h1, randomBytes(100), 0)).toBe(OK);
      expect(await write(two.s, h2, randomBytes(100), 0)).toBe(OK);
      const closed = await Promise.all([outcome((cb) => one.s.close(h1, cb)), outcome((cb) => two.s.close(h2, cb))]);
      expect(closed.map((r) => r.code).sort()).toEqual([OK, FAILURE]);
      expect(closed.find((r) => r.code === FAILURE)!.message).toContain('inbox.pending-files');
      expect(await pendingNames(links.q004)).toHaveLength(MAX_PENDING_FILES);
    } finally {
      one.c.end();
      two.c.end();
      await other.svc.stop();
    }
    expect(await until(async () => (await strayFiles()).length === 0)).toBe(true);
  });

  it('R6.1 refused uploads are logged in aggregate: a flood of refused OPENs adds a record per interval, not one per OPEN', async () => {
    const { c, s } = await session('s001');
    try {
      for (let i = 0; i < 30; i++) expect((await outcome((cb) => s.open(`/inbox/bad name ${i}.exe`, 'w', cb))).code).not.toBe(OK);
    } finally {
      c.end();
    }
    const rows = async () => (await logOf('upload.refused')).filter((r) => r.actor === 's001');
    expect(await until(async () => (await rows()).reduce((n, r) => n + r.detail.count, 0) >= 30)).toBe(true);
    expect((await rows()).length).toBeLessThanOrEqual(3);
    expect((await rows()).reduce((n, r) => n + (r.detail.reasons['inbox.name'] ?? 0), 0)).toBe(30);
  });

  it('R2.2 a disconnect mid-upload leaves nothing behind and writes upload.aborted (account, address, name, bytes so far); the name can be sent again', async () => {
    const { c, s } = await session();
    const h = await open(s, '/inbox/gone.csv.pgp', 'w');
    expect(await write(s, h, randomBytes(10_000), 0)).toBe(OK);
    expect(await write(s, h, randomBytes(5_000), 10_000)).toBe(OK);
    c.end();
    expect(await until(async () => (await logOf('upload.aborted')).some((r) => r.object === 'gone.csv.pgp'))).toBe(true);
    const rec = (await logOf('upload.aborted')).find((r) => r.object === 'gone.csv.pgp')!;
    expect(rec).toMatchObject({ actor: 'a001', ip: '127.0.0.1', linkId: links.a001 });
    expect(rec.detail).toMatchObject({ bytes: 15_000, reason: 'session.ended' });
    expect(await strayFiles()).toEqual([]);
    expect(await pendingNames(links.a001)).not.toContain('gone.csv.pgp');
    const again = await session();
    try {
      expect(await upload(again.s, 'gone.csv.pgp', randomBytes(10))).toBe(OK);
    } finally {
      again.c.end();
    }
  });

  it('R2.2 a 64 KiB upload sent as 1-byte writes finishes whole, and another session stays responsive meanwhile', async () => {
    const content = randomBytes(64 * 1024);
    const src = path.join(dir, 'trickle.bin');
    writeFileSync(src, content);
    // paramiko in its own process, unbuffered and pipelined: one WRITE request per byte, sent without waiting for answers.
    const script = `
import paramiko, sys
port, key, src = int(sys.argv[1]), sys.argv[2], sys.argv[3]
data = open(src, 'rb').read()
c = paramiko.SSHClient()
c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
c.connect('127.0.0.1', port=port, username='s001', key_filename=key, look_for_keys=False, allow_agent=False)
s = c.open_sftp()
f = s.open('/inbox/trickle.csv.pgp', 'wb', bufsize=0)
f.set_pipelined(True)
print('opened', flush=True)
for i in range(len(data)):
    f.write(data[i:i + 1])
f.close()
print('closed', flush=True)
c.close()
`;
    const child = spawn('/usr/bin/python3', ['-c', script, String(port), keys.sshPrivateFile, src], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const other = await session('a001');
    try {
      expect(await until(() => out.includes('opened'), 30_000)).toBe(true);
      // Another session is answered while the trickle is still being taken (before its CLOSE is answered).
      for (let i = 0; i < 20; i++) expect((await call<any>((cb) => other.s.stat('/outbox', cb))).mode & 0o170000).toBe(0o040000);
      expect((await call<any[]>((cb) => other.s.readdir('/outbox', cb))).length).toBeGreaterThan(0);
      expect(out).not.toContain('closed');
    } finally {
      other.c.end();
    }
    expect(await exited).toBe(0);
    expect(err).toBe('');
    expect(out).toContain('closed');
    const row = (await inbox.pendingUploads(w.cdb.db, links.s001)).find((u) => u.name === 'trickle.csv.pgp')!;
    expect(row.bytes).toBe(content.length);
    expect(row.sha256).toBe(sha256(content));
  });

  it('R2.2 an account whose link has no batch-query (nor subject list) sees no /inbox and cannot write there', async () => {
    const { c, s } = await session('x001');
    try {
      const root = await call<any[]>((cb) => s.readdir('/', cb));
      expect(root.map((e) => e.filename).sort()).toEqual(['outbox']);
      expect(await code((cb) => s.stat('/inbox', cb))).toBe(NO_SUCH_FILE);
      expect(await code((cb) => s.opendir('/inbox', cb))).toBe(NO_SUCH_FILE);
      expect(await code((cb) => s.open('/inbox/x.csv.pgp', 'w', cb))).toBe(PERMISSION_DENIED);
      expect(await code((cb) => s.open('/inbox/x.csv.pgp', 'wx', cb))).toBe(PERMISSION_DENIED);
    } finally {
      c.end();
    }
    expect(await pendingNames(links.x001)).toEqual([]);
  });
});
