import { sql } from 'drizzle-orm';
import { rawRun } from '../../src/db/dialect';
import fs, { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Client, SFTPWrapper } from 'ssh2';
import type { Config } from '../../src/config';
import { deliveries, queries } from '../../src/db/repositories';
import type { DeliveryView } from '../../src/extract';
import type { RunningService } from '../../src/main';
import { listLog } from '../../src/usagelog';
import { buildDelivery, closed, connect, niaKeys, openSftp, sftpConfig, startSftp } from '../helpers/sftp';
import { approvedLink, cleanupKeys, makeAgencyKeys, eventually, openTestWorld, type AgencyKeys, type AnyWorld } from '../helpers/world';

/**
 * What an authenticated client can make a session cost, and what a session must stop doing when the
 * registry says so: the tree is not rebuilt per request, handles (file descriptors) are capped per
 * connection and account, a download loop does not write a record per turn, a re-check that fails
 * closes the session, and expired deliveries are neither listed nor served. In process, on the
 * world's clock.
 */

let keys: AgencyKeys;
let w: AnyWorld;
let config: Config;
let svc: RunningService;
let port: number;
let mine: DeliveryView;
const links: Record<string, number> = {};

const key = () => readFileSync(keys.sshPrivateFile);
const logOf = async (type: string) => (await listLog(w.cdb.db, { type })).map((r) => ({ ...r, detail: JSON.parse(r.detail) }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function call<T>(fn: (cb: (err: any, v?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));
}
/** The SFTP status code a request ends with (0 when it succeeds). */
async function code(fn: (cb: (err: any, v?: unknown) => void) => void): Promise<number> {
  try {
    await call(fn);
    return 0;
  } catch (err) {
    return (err as { code: number }).code;
  }
}
const session = async (user: string) => {
  const c = await connect({ port, username: user, privateKey: key() });
  return { c, s: await openSftp(c) };
};
const names = async (s: SFTPWrapper) => (await call<{ filename: string }[]>((cb) => s.readdir('/outbox', cb))).map((e) => e.filename);

/** `n` small built deliveries of a link, straight in the database and its outbox (three files each). */
async function manyDeliveries(linkId: number, n: number): Promise<void> {
  const dir = path.join(w.dataDir, 'outbox', String(linkId));
  mkdirSync(dir, { recursive: true });
  const now = w.clock.now().toISOString();
  await w.cdb.write(async (tx) => {
    for (let i = 0; i < n; i++) {
      const name = `entry_exit-L${linkId}-r1-many-${i}.csv.pgp`;
      writeFileSync(path.join(dir, name), `data ${i}`);
      writeFileSync(path.join(dir, name.replace('.csv.pgp', '.manifest.json')), '{}');
      writeFileSync(path.join(dir, name.replace('.csv.pgp', '.manifest.json.asc')), 'sig');
      await deliveries.insert(tx, { linkId, revision: 1, idempotencyKey: `many-${linkId}-${i}`, trigger: 'manual', mode: 'full', status: 'built', dataset: 'entry_exit', fields: ['person_id'], rows: 0, fileName: name, bytes: 6, plainSha256: null, cipherSha256: null, manifestSha256: null, watermarkFrom: null, watermarkTo: null, createdAt: now, builtAt: now, durationMs: 0, expiresAt: null, purgedAt: null, error: null, channels: {} });
    }
  });
}

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = await openTestWorld();
  config = sftpConfig(w.dataDir, {
    NIA_LINK_SFTP_RECHECK: '1',
    NIA_LINK_SFTP_MAX_HANDLES_PER_CONNECTION: '8',
    NIA_LINK_SFTP_MAX_HANDLES_PER_ACCOUNT: '12',
  });
  await niaKeys(config, keys);
  for (const account of ['a001', 'b001', 'c001', 'e001', 't001']) links[account] = await approvedLink(w, keys, { account });
  mine = await buildDelivery(w, config, links.a001);
  await buildDelivery(w, config, links.b001);
  await manyDeliveries(links.t001, 300);
  ({ svc, port } = await startSftp(config, w));
}, 120_000);
afterAll(async () => {
  await svc?.stop();
  await w?.close();
  cleanupKeys(keys);
});

describe('per-request tree rebuild', () => {
  it('2 000 STATs on a link with 900 files read its list of files only when the database may have changed, not per request, and stat() each file at most once; a delivery built or purged meanwhile shows at once in the same session', async () => {
    const { c, s } = await session('t001');
    try {
      const file = '/outbox/entry_exit-L' + links.t001 + '-r1-many-7.csv.pgp';
      const stats = jest.spyOn(fs, 'statSync');
      const reads = jest.spyOn(deliveries, 'builtForLink');
      const tokens = jest.spyOn(queries, 'dataChangeToken');
      const sizes = await Promise.all(Array.from({ length: 2000 }, () => call<{ size: number }>((cb) => s.stat(file, cb))));
      const calls = stats.mock.calls.length;
      const listed = reads.mock.calls.length;
      const changes = new Set(await Promise.all(tokens.mock.results.map((r) => r.value as Promise<string>))).size;
      stats.mockRestore();
      reads.mockRestore();
      tokens.mockRestore();
      expect(sizes.every((st) => st.size === 6)).toBe(true);
      expect(calls).toBeLessThanOrEqual(900);
      // The list of files is read again only when the database may have changed, not once per
      // request: work counted, not timed. On SQLite only this test's writes change it (a few
      // records); PostgreSQL's token is the server's WAL position, which other databases move too.
      expect(listed).toBeGreaterThanOrEqual(1);
      expect(listed).toBeLessThanOrEqual(changes + 1);
      if (w.cdb.dialect === 'sqlite') expect(listed).toBeLessThanOrEqual(10);

      expect((await names(s)).length).toBe(900);
      const built = await buildDelivery(w, config, links.t001);
      expect(await names(s)).toContain(path.basename(built.path!));
      await w.cdb.write((tx) => deliveries.update(tx, built.id, { status: 'purged', purgedAt: w.clock.now().toISOString() }));
      expect(await names(s)).not.toContain(path.basename(built.path!));
      expect(await code((cb) => s.stat(`/outbox/${path.basename(built.path!)}`, cb))).toBe(2);
    } finally {
      c.end();
    }
  }, 60_000);
});

describe('descriptor exhaustion', () => {
  it('handles are capped per connection (8 here) and per account (12 here), over all sessions; other accounts are not affected; descriptors never outnumber them', async () => {
    const f = `/outbox/${path.basename(mine.path!)}`;
    const fds = () => readdirSync('/proc/self/fd').length;
    const fds0 = fds();
    const first = await session('a001');
    const second = await openSftp(first.c);
    const other = await session('a001');
    const b = await session('b001');
    try {
      const opened: { s: SFTPWrapper; h: Buffer }[] = [];
      const open = async (s: SFTPWrapper) => {
        const h = await call<Buffer>((cb) => s.open(f, 'r', cb)).catch((e) => e.code as number);
        if (Buffer.isBuffer(h)) opened.push({ s, h });
        return Buffer.isBuffer(h) ? 0 : h;
      };
      // Ten tries on each of two sessions of one connection: eight handles between them.
      const results = await Promise.all([...Array.from({ length: 10 }, () => open(first.s)), ...Array.from({ length: 10 }, () => open(second))]);
      expect(results.filter((r) => r === 0)).toHaveLength(8);
      expect(results.filter((r) => r !== 0)).toEqual(Array(12).fill(4));
      expect(await code((cb) => first.s.opendir('/outbox', cb))).toBe(4);
      // A second connection of the same account gets what is left of the account's twelve.
      const more = await Promise.all(Array.from({ length: 10 }, () => open(other.s)));
      expect(more.filter((r) => r === 0)).toHaveLength(4);
      expect(fds() - fds0).toBeLessThan(12 + 16); // the handles, plus the sockets of four connections and slack
      // Another account is not held back by this one.
      const theirs = (await names(b.s)).find((n) => n.endsWith('.csv.pgp'));
      const hb = await call<Buffer>((cb) => b.s.open(`/outbox/${theirs}`, 'r', cb));
      await call((cb) => b.s.close(hb, cb));
      // Closing gives a handle back.
      const one = opened.find((o) => o.s === first.s)!;
      await call((cb) => one.s.close(one.h, cb));
      expect(await open(other.s)).toBe(0);
    } finally {
      first.c.end();
      other.c.end();
      b.c.end();
    }
    // Every handle is given back when its connection ends.
    await sleep(300);
    const again = await session('a001');
    try {
      const results = await Promise.all(Array.from({ length: 8 }, () => code((cb) => again.s.open(f, 'r', cb))));
      expect(results).toEqual(Array(8).fill(0));
    } finally {
      again.c.end();
    }
  }, 60_000);
});

describe('usage-log flooding', () => {
  it('2 000 rounds of OPEN, READ 1 byte, CLOSE on one file add at most a few dozen file.downloaded records, and the download that follows is still recorded', async () => {
    const name = path.basename(mine.path!);
    const f = `/outbox/${name}`;
    const size = mine.bytes!;
    const before = (await logOf('file.downloaded')).length;
    const { c, s } = await session('a001');
    const done = closed(c, 60_000);
    const buf = Buffer.alloc(size);
    const loop = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const h = await call<Buffer>((cb) => s.open(f, 'r', cb));
        await call((cb) => s.read(h, buf, 0, 1, 0, cb));
        await call((cb) => s.close(h, cb));
      }
    };
    await Promise.all([loop(500), loop(500), loop(500), loop(500)]);
    const during = (await logOf('file.downloaded')).length - before;
    const h = await call<Buffer>((cb) => s.open(f, 'r', cb));
    let got = 0;
    while (got < size) got += await call<number>((cb) => s.read(h, buf, got, size - got, got, cb));
    await call((cb) => s.close(h, cb));
    c.end();
    await done;
    await sleep(200);
    const added = (await logOf('file.downloaded')).slice(before).filter((r) => r.object === name);
    expect(during).toBeLessThanOrEqual(30);
    expect(added.length).toBeLessThanOrEqual(30);
    expect(added.reduce((n, r) => n + r.detail.bytes, 0)).toBe(2000 + size);
    expect(added.pop()).toMatchObject({ actor: 'a001', detail: { result: 'complete', size } });
  }, 120_000);
});

describe('sessions follow the registry', () => {
  it('a re-check that itself fails closes the session (fail closed)', async () => {
    const { c } = await session('c001');
    const done = closed(c, 5000);
    // A link whose current revision cannot be read: the check throws.
    await w.cdb.write((tx) => rawRun(tx, sql`UPDATE link SET current_revision = 99 WHERE id = ${links.c001}`));
    try {
      expect(await done).toBeLessThan(5000);
      await eventually(async () => expect((await logOf('session.closed')).pop()).toMatchObject({ actor: 'c001', detail: { reason: 'check.failed' } }));
    } finally {
      await w.cdb.write((tx) => rawRun(tx, sql`UPDATE link SET current_revision = 1 WHERE id = ${links.c001}`));
    }
  });

  it('a delivery past its expiry is no longer listed or served, though the purge has not run: not by name, and not through a handle opened before', async () => {
    const d = await buildDelivery(w, config, links.e001);
    const name = path.basename(d.path!);
    expect(d.expiresAt).not.toBeNull();
    const { c, s } = await session('e001');
    const now = w.clock.now().toISOString();
    try {
      expect(await names(s)).toContain(name);
      const h = await call<Buffer>((cb) => s.open(`/outbox/${name}`, 'r', cb));
      const buf = Buffer.alloc(100);
      expect(await call<number>((cb) => s.read(h, buf, 0, 100, 0, cb))).toBe(100);
      w.clock.set(new Date(Date.parse(d.expiresAt!) + 1000).toISOString());
      expect(await names(s)).toEqual([]);
      expect(await code((cb) => s.stat(`/outbox/${name}`, cb))).toBe(2);
      expect(await code((cb) => s.open(`/outbox/${name}`, 'r', cb))).toBe(2);
      let refused = 0;
      for (let i = 0; i < 30 && !refused; i++) {
        refused = await code((cb) => s.read(h, buf, 0, 100, 100, cb));
        if (!refused) await sleep(100);
      }
      expect(refused).toBe(4);
      expect(await deliveries.byId(w.cdb.db, d.id)).toMatchObject({ status: 'built', purgedAt: null });
    } finally {
      w.clock.set(now);
      c.end();
    }
  });
});
