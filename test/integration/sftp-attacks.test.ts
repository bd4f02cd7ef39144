import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BaseAgent, type Client, type ParsedKey, type SFTPWrapper, utils } from 'ssh2';
import type { Config } from '../../src/config';
import { rawRun } from '../../src/db/dialect';
import { sql } from 'drizzle-orm';
import type { DeliveryView } from '../../src/extract';
import type { RunningService } from '../../src/main';
import { Redis } from 'ioredis';
import { queuePrefix } from '../../src/queue';
import { buildServices } from '../../src/services';
import { AccountService } from '../../src/registry';
import { Defender } from '../../src/sftp';
import { listLog } from '../../src/usagelog';
import { buildDelivery, closed, connect, niaKeys, openSftp, sftpBatch, sftpConfig, startSftp } from '../helpers/sftp';
import { approvedLink, cleanupKeys, cli, cliAsync, makeAgencyKeys, eventually, openTestWorld, tmpDir, type AgencyKeys, type AnyWorld } from '../helpers/world';

let keys: AgencyKeys;
let w: AnyWorld;
let config: Config;
let svc: RunningService;
let port: number;
let accounts: AccountService;
let mine: DeliveryView;
let theirs: DeliveryView;
let dir: string;
let rsaKey: string;
let strangerKey: string;
const links: Record<string, number> = {};
let redis: Redis;
let defender: Defender;

const key = () => readFileSync(keys.sshPrivateFile);
const logOf = async (type: string) => (await listLog(w.cdb.db, { type })).map((r) => ({ ...r, detail: JSON.parse(r.detail) }));
/**
 * The login refused last wrote an auth.failed record matching `expected`: the newest record, newer
 * than the one the previous call saw (the record is written as the refusal is sent, so it may land a
 * moment after the client has its answer).
 */
let seenFailure = 0;
async function expectFailure(expected: object): Promise<void> {
  await eventually(async () => {
    const last = (await logOf('auth.failed')).pop();
    expect(last?.seq ?? 0).toBeGreaterThan(seenFailure);
    expect(last).toMatchObject(expected);
    seenFailure = last!.seq;
  });
}
/** The newest record of `type`, once it matches `expected` (it may land a moment after the client's answer). */
const expectLast = (type: string, expected: object) => eventually(async () => expect((await logOf(type)).pop()).toMatchObject(expected));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Enable or disable an account behind the services' backs: straight in the database, announced to nobody. */
const setEnabledBehindTheBack = (username: string, on: boolean) =>
  w.cdb.write((tx) => rawRun(tx, sql`UPDATE sftp_account SET enabled = ${sql.raw(w.cdb.dialect === 'postgres' ? String(on) : on ? '1' : '0')} WHERE username = ${username}`));
const cliEnv = () => ({ REDIS_URL: config.redisUrl! });

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

/** Raw TCP from a given source address: what the server sends before it closes, if anything. */
function rawConnect(localAddress: string, hold = 0): Promise<{ bytes: number; socket: net.Socket }> {
  return new Promise((resolve) => {
    let bytes = 0;
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    socket.on('data', (d) => (bytes += d.length));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ bytes, socket }));
    if (hold) setTimeout(() => resolve({ bytes, socket }), hold);
  });
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

/** An SFTP channel spoken byte by byte, for what well-behaved clients never send. */
async function rawSftp(init = true) {
  const c = await connect({ port, username: 'a001', privateKey: key() });
  const ch = await call<any>((cb) => c.subsys('sftp', cb));
  let buf = Buffer.alloc(0);
  const waiting: ((p: { type: number; body: Buffer }) => void)[] = [];
  ch.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const len = buf.readUInt32BE(0);
      const p = { type: buf[4], body: buf.subarray(init ? 9 : 5, 4 + len) };
      buf = buf.subarray(4 + len);
      waiting.shift()?.(p);
    }
  });
  const ended = new Promise<void>((resolve) => {
    ch.on('close', resolve);
    c.on('close', resolve);
  });
  let id = 0;
  const send = (b: Buffer) => ch.write(b);
  const request = (type: number, body: Buffer) =>
    new Promise<{ type: number; body: Buffer }>((resolve) => {
      waiting.push(resolve);
      send(Buffer.concat([u32(5 + body.length), Buffer.from([type]), u32(++id), body]));
    });
  if (init) {
    const version = await new Promise<{ type: number; body: Buffer }>((resolve) => {
      waiting.push(resolve);
      send(Buffer.concat([u32(5), Buffer.from([1]), u32(3)]));
    });
    expect(version.type).toBe(2);
  }
  return { send, request, ended, close: () => c.end() };
}

/** An agent offering the account's public key and signing however the attack needs. */
class CraftedAgent extends BaseAgent {
  constructor(
    private readonly identity: ParsedKey,
    private readonly signer: (data: Buffer, hash?: string) => Buffer | Error,
  ) {
    super();
  }
  getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void): void {
    cb(undefined, [this.identity]);
  }
  sign(_pub: unknown, data: Buffer, options: any, cb?: any): void {
    const sig = this.signer(data, options?.hash);
    if (sig instanceof Error) cb(sig);
    else cb(undefined, sig);
  }
}
const parsed = (text: string | Buffer) => {
  const k = utils.parseKey(text);
  if (k instanceof Error) throw k;
  return Array.isArray(k) ? k[0] : k;
};

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = await openTestWorld();
  dir = tmpDir('nia-link-sftp-attacks-');
  config = sftpConfig(w.dataDir, {
    // Dual-stack: IPv4 clients arrive as ::ffff:a.b.c.d and must still match IPv4 allow-lists.
    NIA_LINK_SFTP_HOST: '::',
    NIA_LINK_SFTP_RECHECK: '1',
    NIA_LINK_SFTP_IDLE_TIMEOUT: '3',
    NIA_LINK_SFTP_LOGIN_GRACE: '2',
    NIA_LINK_SFTP_MAX_CONNECTIONS_PER_IP: '4',
    NIA_LINK_SFTP_BAN_THRESHOLD: '5',
    NIA_LINK_SFTP_BAN_WINDOW: '60',
    NIA_LINK_SFTP_BAN_SECONDS: '60',
    NIA_LINK_SFTP_REFUSED_LOG_INTERVAL: '1',
  });
  await niaKeys(config, keys);
  rsaKey = path.join(dir, 'rsa');
  strangerKey = path.join(dir, 'stranger');
  execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '3072', '-N', '', '-f', rsaKey]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', strangerKey]);
  links.a001 = await approvedLink(w, keys, { allowIps: ['127.0.0.1/32', '127.0.0.3/32', '127.0.0.4/32'] });
  links.r001 = await approvedLink(w, keys, { account: 'r001', sshKeys: [readFileSync(`${rsaKey}.pub`, 'utf8')] });
  links.x001 = await approvedLink(w, keys, { account: 'x001' });
  links.p001 = await approvedLink(w, keys, { account: 'p001', to: '2026-12-31' });
  links.d001 = await approvedLink(w, keys, { account: 'd001' });
  mine = await buildDelivery(w, config, links.a001);
  theirs = await buildDelivery(w, config, links.r001);
  accounts = new AccountService(w.cdb, w.registry, w.clock);
  redis = new Redis(config.redisUrl!);
  defender = new Defender(redis, queuePrefix(config), config.sftp.defender);
  ({ svc, port } = await startSftp(config, w));
});
afterEach(async () => {
  await defender.unban('127.0.0.1');
});
afterAll(async () => {
  redis?.disconnect();
  await svc?.stop();
  await w?.close();
  cleanupKeys(keys);
  rmSync(dir, { recursive: true, force: true });
});

describe('TestEscapeHomeDir: nothing outside the account\'s /outbox can be named', () => {
  let c: Client;
  let s: SFTPWrapper;
  beforeAll(async () => {
    c = await connect({ port, username: 'a001', privateKey: key() });
    s = await openSftp(c);
  });
  afterAll(() => c?.end());

  const own = () => path.basename(mine.path!);
  const attempts = () => [
    '..',
    '../..',
    '/..',
    '/../../../etc/passwd',
    '/outbox/../../etc/passwd',
    '../etc/passwd',
    '/etc/passwd',
    '//etc//passwd',
    '/outbox/./../../../../etc/shadow',
    '/outbox/..%2f..%2fetc%2fpasswd',
    '%2e%2e/%2e%2e/etc/passwd',
    '/outbox/%2e%2e/%2e%2e/etc/passwd',
    '..\\..\\etc\\passwd',
    '/outbox/..\\..\\etc\\passwd',
    `/outbox/${own()}\0/../../../etc/passwd`,
    `/outbox/${own()}\0`,
    '/outbox/\0',
    `/outbox/${own()}/..`,
    `/outbox/${own()}/../../etc/passwd`,
    // The real places on disk: of the delivery, of the control database, of the host key.
    mine.path!,
    path.join(w.dataDir, 'nia-link.db'),
    path.join(config.keysDir, 'ssh_host_ed25519_key'),
    `/outbox/../../../../../..${path.join(config.keysDir, 'ssh_host_ed25519_key')}`,
    // Another link's delivery, by name and by its directory.
    `/outbox/${path.basename(theirs.path!)}`,
    `/outbox/../${links.r001}/${path.basename(theirs.path!)}`,
    `/${links.r001}/${path.basename(theirs.path!)}`,
  ];

  it('REALPATH, STAT, LSTAT, OPENDIR, READLINK and OPEN resolve every attempt inside the tree or not at all', async () => {
    const ownNames = new Set(['.', '..', 'outbox', own(), own().replace('.csv.pgp', '.manifest.json'), own().replace('.csv.pgp', '.manifest.json.asc')]);
    for (const p of attempts()) {
      const real = await call<string>((cb) => s.realpath(p, cb)).catch((e) => e.code as number);
      const st = await call<any>((cb) => s.stat(p, cb)).catch((e) => e.code as number);
      const lst = await call<any>((cb) => s.lstat(p, cb)).catch((e) => e.code as number);
      const listing = await call<Buffer>((cb) => s.opendir(p, cb))
        .then((h) => call<any[]>((cb) => s.readdir(h, cb)))
        .catch((e) => e.code as number);
      const link = await code((cb) => s.readlink(p, cb));
      const opened = await code((cb) => s.open(p, 'r', cb));
      if (typeof real === 'string') {
        // Only `..` stopping at the top lands somewhere: `/` or `/outbox`, directories of the tree.
        expect([p, real]).toEqual([p, expect.stringMatching(/^\/(outbox)?$/)]);
        expect([p, st.isDirectory(), lst.isDirectory(), link, opened]).toEqual([p, true, true, 4, 4]);
        for (const e of listing as any[]) expect([p, e.filename, ownNames.has(e.filename)]).toEqual([p, e.filename, true]);
      } else {
        expect([p, real, st, lst, listing, link, opened]).toEqual([p, 2, 2, 2, 2, 2, 2]);
      }
    }
  });

  it('no attempt ever yields a byte of a file outside the tree', async () => {
    for (const p of attempts()) {
      const h = await call<Buffer>((cb) => s.open(p, 'r', cb)).catch(() => null);
      if (!h) continue;
      const buf = Buffer.alloc(64);
      const n = await call<number>((cb) => s.read(h, buf, 0, 64, 0, cb)).catch(() => 0);
      // A directory (`..` from /outbox) cannot be opened as a file; anything that opens is our own file.
      expect([p, buf.subarray(0, n).toString('latin1')]).not.toEqual([p, expect.stringMatching(/root:|SQLite|OPENSSH PRIVATE KEY/)]);
      expect([p, n > 0 ? buf.subarray(0, n).equals(readFileSync(mine.path!).subarray(0, n)) : true]).toEqual([p, true]);
      await call((cb) => s.close(h, cb));
    }
    // The attempt that names another link's file by its own name is simply not found.
    expect(await code((cb) => s.open(`/outbox/${path.basename(theirs.path!)}`, 'r', cb))).toBe(2);
  });
});

describe('read-only: every way of writing is refused', () => {
  it('open for writing, write, rename, remove, mkdir, rmdir, setstat, symlink and writing extensions get PERMISSION_DENIED', async () => {
    const c = await connect({ port, username: 'a001', privateKey: key() });
    const s = await openSftp(c);
    const f = `/outbox/${path.basename(mine.path!)}`;
    const denied = 3;
    for (const flags of ['w', 'a', 'r+', 'wx'] as const) expect([flags, await code((cb) => s.open(f, flags, cb))]).toEqual([flags, denied]);
    expect(await code((cb) => s.open('/outbox/new.txt', 'w', cb))).toBe(denied);
    const h = await call<Buffer>((cb) => s.open(f, 'r', cb));
    expect(await code((cb) => s.write(h, Buffer.from('x'), 0, 1, 0, cb))).toBe(denied);
    expect(await code((cb) => s.fsetstat(h, { mode: 0o777 }, cb))).toBe(denied);
    for (const p of [f, '/outbox', '/outbox/x', '../../etc/passwd']) {
      expect(await code((cb) => s.rename(p, '/outbox/moved', cb))).toBe(denied);
      expect(await code((cb) => s.unlink(p, cb))).toBe(denied);
      expect(await code((cb) => s.mkdir(p, cb))).toBe(denied);
      expect(await code((cb) => s.rmdir(p, cb))).toBe(denied);
      expect(await code((cb) => s.setstat(p, { mode: 0o777 }, cb))).toBe(denied);
      expect(await code((cb) => s.symlink('/etc/passwd', p, cb))).toBe(denied);
    }
    c.end();
    // Extensions are not offered, so ssh2's client will not send them: speak the protocol raw.
    const raw = await rawSftp();
    const str = (t: string) => Buffer.concat([u32(Buffer.byteLength(t)), Buffer.from(t)]);
    for (const [name, args, expected] of [
      ['posix-rename@openssh.com', [f, '/outbox/moved'], denied],
      ['hardlink@openssh.com', [f, '/outbox/linked'], denied],
      ['statvfs@openssh.com', ['/outbox'], 8],
    ] as const) {
      const reply = await raw.request(200, Buffer.concat([str(name), ...args.map(str)]));
      expect([name, reply.type, reply.body.readUInt32BE(0)]).toEqual([name, 101, expected]);
    }
    raw.close();
    const put = await sftpBatch(port, keys.sshPrivateFile, 'a001', `put ${keys.sshPrivateFile}.pub /outbox/up.txt`);
    expect(put.code).not.toBe(0);
    expect(put.stderr).toMatch(/Permission denied/);
  });
});

describe('channel policy: only the sftp subsystem', () => {
  it('refuses shell, exec, pty, env, other subsystems, and local and remote port forwarding', async () => {
    const c = await connect({ port, username: 'a001', privateKey: key() });
    await expect(call((cb) => c.shell(cb))).rejects.toThrow();
    await expect(call((cb) => c.exec('cat /etc/passwd', cb))).rejects.toThrow();
    await expect(call((cb) => c.exec('id', { env: { LD_PRELOAD: '/tmp/x.so' } }, cb))).rejects.toThrow();
    await expect(call((cb) => c.shell({ term: 'xterm' }, cb))).rejects.toThrow();
    await expect(call((cb) => c.subsys('netconf', cb))).rejects.toThrow();
    const redisPort = Number(new URL(config.redisUrl!).port);
    await expect(call((cb) => c.forwardOut('127.0.0.1', 0, '127.0.0.1', redisPort, cb))).rejects.toThrow(/prohibited|failure/i);
    await expect(call((cb) => c.forwardIn('127.0.0.1', 0, cb))).rejects.toThrow();
    await expect(call((cb) => c.openssh_forwardOutStreamLocal('/run/redis.sock', cb))).rejects.toThrow();
    // The connection is still good for what it is for.
    const s = await openSftp(c);
    expect((await call<any[]>((cb) => s.readdir('/outbox', cb))).length).toBe(3);
    c.end();
  });

  it('allows at most 10 sessions on one connection', async () => {
    const c = await connect({ port, username: 'a001', privateKey: key() });
    for (let i = 0; i < 10; i++) await openSftp(c);
    await expect(openSftp(c)).rejects.toThrow();
    c.end();
  });
});

describe('authentication', () => {
  it('a probe without a signature gets PK_OK and nothing more: it cannot log in', async () => {
    const debug: string[] = [];
    const before = (await logOf('auth.succeeded')).length;
    const agent = new CraftedAgent(parsed(keys.sshPublic), () => new Error('no private key'));
    await expect(connect({ port, username: 'a001', agent, debug: (m) => debug.push(m) })).rejects.toThrow(/no private key|authentication methods failed/);
    await sleep(200);
    expect(debug.join('\n')).toMatch(/USERAUTH_PK_OK/);
    expect(await logOf('auth.succeeded')).toHaveLength(before);
  });

  it('a signature that does not verify is refused: random bytes, or another key\'s signature over the right data', async () => {
    const stranger = parsed(readFileSync(strangerKey));
    for (const signer of [() => randomBytes(64), (data: Buffer) => stranger.sign(data)]) {
      const agent = new CraftedAgent(parsed(keys.sshPublic), signer);
      await expect(connect({ port, username: 'a001', agent })).rejects.toThrow(/authentication methods failed/);
      await expectFailure({ actor: 'a001', detail: { method: 'publickey', reason: 'signature.invalid' } });
    }
  });

  it('a key offered under another key type is refused (an Ed25519 key named as ssh-rsa)', async () => {
    const real = parsed(key());
    const disguised = Object.create(real, { type: { value: 'ssh-rsa' } }) as ParsedKey;
    const agent = new CraftedAgent(disguised, (data, hash) => real.sign(data, hash));
    await expect(connect({ port, username: 'a001', agent })).rejects.toThrow(/authentication methods failed/);
    await expectFailure({ actor: 'a001', detail: { reason: 'key.algorithm-mismatch', algorithm: 'ssh-rsa' } });
  });

  it('an RSA key logs in with rsa-sha2 signatures, never with SHA-1 ssh-rsa ones', async () => {
    expect((await sftpBatch(port, rsaKey, 'r001', 'ls /outbox')).code).toBe(0);
    await expectLast('auth.succeeded', { actor: 'r001', detail: { algorithm: 'ssh-rsa' } });
    const sha1 = await sftpBatch(port, rsaKey, 'r001', 'ls /outbox', ['-o', 'PubkeyAcceptedAlgorithms=ssh-rsa']);
    expect(sha1.code).not.toBe(0);
    await expectFailure({ actor: 'r001', detail: { reason: 'key.sha1-signature' } });
  });

  it('unknown account, a key not on the account, another account\'s key, and passwords (off) are refused with their reasons', async () => {
    await expect(connect({ port, username: 'nobody\u0007\n', privateKey: key() })).rejects.toThrow(/authentication methods failed/);
    await expectFailure({ actor: null, detail: { reason: 'account.unknown', username: 'nobody??' } });
    await expect(connect({ port, username: 'a001', privateKey: readFileSync(strangerKey) })).rejects.toThrow(/authentication methods failed/);
    await expectFailure({ actor: 'a001', detail: { reason: 'key.unknown' } });
    await expect(connect({ port, username: 'a001', privateKey: readFileSync(rsaKey) })).rejects.toThrow(/authentication methods failed/);
    await expectFailure({ actor: 'a001', detail: { reason: 'key.unknown' } });
    await expect(connect({ port, username: 'a001', password: 'secret-password-1' })).rejects.toThrow(/authentication methods failed/);
    await expectFailure({ detail: { method: 'password', reason: 'method.not-allowed' } });
  });

  it('a disabled account, an ended link and a use period that is over are refused at login', async () => {
    await accounts.setEnabled('d001', false, 'test');
    await expect(connect({ port, username: 'd001', privateKey: key() })).rejects.toThrow(/authentication methods failed/);
    await expectFailure({ actor: 'd001', detail: { reason: 'account.disabled' } });

    const cr = await w.registry.fileChange(links.x001, 'stop', { letterNo: '府授字第1150000001號' }, 'test');
    await w.registry.approveChange(cr.id, 'test');
    await buildServices(config, w.cdb, w.clock).compliance.endDue('test', links.x001);
    await expect(connect({ port, username: 'x001', privateKey: key() })).rejects.toThrow(/authentication methods failed/);
    await expectFailure({ actor: 'x001', linkId: links.x001, detail: { reason: 'link.not-active' } });

    const now = w.clock.now().toISOString();
    w.clock.set('2027-01-15T03:00:00.000Z'); // p001's period ended on 2026-12-31; a001's runs to 2027-12-31
    try {
      await expect(connect({ port, username: 'p001', privateKey: key() })).rejects.toThrow(/authentication methods failed/);
      await expectFailure({ actor: 'p001', detail: { reason: 'link.period.ended' } });
      (await connect({ port, username: 'a001', privateKey: key() })).end();
    } finally {
      w.clock.set(now);
    }
  });
});

describe('the connection gate', () => {
  it('an address outside every allow-list is refused before the key exchange (not even a banner), and refusals are logged aggregated', async () => {
    for (let i = 0; i < 20; i++) expect((await rawConnect('127.0.0.2')).bytes).toBe(0);
    const ssh = await sftpBatch(port, keys.sshPrivateFile, 'a001', 'ls /outbox', ['-o', 'BindAddress=127.0.0.2']);
    expect(ssh.code).not.toBe(0);
    expect(ssh.stderr).toMatch(/Connection closed|reset|kex_exchange_identification/);
    let rows: Awaited<ReturnType<typeof logOf>> = [];
    for (let i = 0; i < 40 && rows.reduce((n, r) => n + r.detail.count, 0) < 21; i++) {
      await sleep(100);
      rows = (await logOf('connection.refused')).filter((r) => r.ip === '127.0.0.2');
    }
    // One record for the 21 attempts of that interval (or two, if the interval turned meanwhile).
    expect(rows.length).toBeLessThanOrEqual(2);
    expect(rows.reduce((n, r) => n + r.detail.count, 0)).toBe(21);
    expect(rows[0]).toMatchObject({ channel: 'sftp-pull', detail: { reasons: { 'ip.not-allowed': expect.any(Number) } } });
    // An allowed address written as IPv4 arrives as ::ffff:127.0.0.1 on this dual-stack listener, and passes.
    expect((await rawConnect('127.0.0.1', 300)).bytes).toBeGreaterThan(0);
  });

  it('more connections from one address than allowed are refused at once', async () => {
    const held = await Promise.all([1, 2, 3, 4].map(() => rawConnect('127.0.0.4', 300)));
    expect(held.every((h) => h.bytes > 0)).toBe(true);
    expect((await rawConnect('127.0.0.4')).bytes).toBe(0);
    held.forEach((h) => h.socket.destroy());
    await sleep(100);
    const after = await rawConnect('127.0.0.4', 300);
    expect(after.bytes).toBeGreaterThan(0);
    after.socket.destroy();
  });

  it('a connection that does not log in within the grace time is closed, and so is an idle session', async () => {
    const t0 = Date.now();
    await rawConnect('127.0.0.1');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
    expect(Date.now() - t0).toBeLessThan(5000);
    const c = await connect({ port, username: 'a001', privateKey: key() });
    await openSftp(c);
    expect(await closed(c, 8000)).toBeGreaterThanOrEqual(2000);
  });
});

describe('protocol abuse', () => {
  it('malformed SFTP packets end the session: a request before INIT, a field running past its packet, a length beyond the limit', async () => {
    const beforeInit = await rawSftp(false);
    beforeInit.send(Buffer.from([0, 0, 0, 5, 17, 0, 0, 0, 1]));
    await beforeInit.ended;
    const truncated = await rawSftp();
    truncated.send(Buffer.from([0, 0, 0, 9, 17, 0, 0, 0, 2, 0, 0, 0x10, 0])); // STAT whose path claims 4096 bytes
    await truncated.ended;
    const huge = await rawSftp();
    huge.send(Buffer.from([0x7f, 0xff, 0xff, 0xff, 1]));
    await huge.ended;
  });
});

describe('backpressure', () => {
  it('10 000 reads sent at once (more than the server queues) are all answered, in turn', async () => {
    const raw = await rawSftp();
    const str = (t: string) => Buffer.concat([u32(Buffer.byteLength(t)), Buffer.from(t)]);
    const opened = await raw.request(3, Buffer.concat([str(`/outbox/${path.basename(mine.path!)}`), u32(1), u32(0)]));
    expect(opened.type).toBe(102);
    const handle = opened.body.subarray(4, 4 + opened.body.readUInt32BE(0));
    const n = 10_000;
    const answers = Array.from({ length: n }, (_, i) => {
      const off = Buffer.alloc(8);
      off.writeBigUInt64BE(BigInt(i % 1000));
      return raw.request(5, Buffer.concat([u32(handle.length), handle, off, u32(1000)]));
    });
    const got = await Promise.all(answers);
    expect(got.every((a) => a.type === 103)).toBe(true);
    raw.close();
  });
});

describe('sessions are re-checked', () => {
  it('a change made without any announcement (straight in the database) still closes the session within seconds', async () => {
    const c = await connect({ port, username: 'd001', privateKey: key() }).catch(() => null);
    expect(c).toBeNull(); // d001 is disabled: enable it behind the service's back, then disable it the same way
    await setEnabledBehindTheBack('d001', true);
    const s = await connect({ port, username: 'd001', privateKey: key() });
    await openSftp(s);
    const done = closed(s, 4000);
    await setEnabledBehindTheBack('d001', false);
    expect(await done).toBeLessThan(4000);
  });

  it('revoking the key a session logged in with closes that session', async () => {
    await accounts.addKey('a001', readFileSync(`${strangerKey}.pub`, 'utf8'), 'test');
    const c = await connect({ port, username: 'a001', privateKey: readFileSync(strangerKey) });
    await openSftp(c);
    const done = closed(c, 4000);
    await accounts.revokeKey('a001', readFileSync(`${strangerKey}.pub`, 'utf8'), 'test');
    await done;
    await expectLast('session.closed', { actor: 'a001', detail: { reason: 'key.revoked' } });
  });
});

describe('brute force', () => {
  it('failed logins from one address lead to a ban; `nia-link defender list` shows it and `unban` lifts it', async () => {
    const stranger = readFileSync(strangerKey);
    for (let i = 0; i < 5; i++) {
      await expect(connect({ port, username: 'a001', privateKey: stranger, localAddress: '127.0.0.3' })).rejects.toThrow(/authentication methods failed/);
    }
    await sleep(200);
    expect((await rawConnect('127.0.0.3')).bytes).toBe(0);
    await expectLast('defender.banned', { ip: '127.0.0.3', detail: { score: 5 } });
    // Other addresses are not affected.
    (await connect({ port, username: 'a001', privateKey: key() })).end();
    const list = cli(w.dataDir, ['defender', 'list', '--json'], cliEnv());
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ ip: '127.0.0.3', score: 5, bans: 1, reason: 'key.unknown' })]);
    expect((await cliAsync(w.dataDir, ['defender', 'unban', '127.0.0.3', '--by', 'operator'], cliEnv())).stdout).toMatch(/no longer banned/);
    await expectLast('defender.unbanned', { ip: '127.0.0.3', actor: 'operator' });
    expect(await cliAsync(w.dataDir, ['defender', 'unban', '127.0.0.3'], cliEnv())).toMatchObject({ code: 1, stderr: expect.stringMatching(/not banned/) });
    (await connect({ port, username: 'a001', privateKey: key(), localAddress: '127.0.0.3' })).end();
  });
});

describe('password login, when configured', () => {
  it('logs in with the account\'s password only; a wrong one is refused and scored', async () => {
    await accounts.setPassword('a001', 'correct horse battery staple', 'test');
    const second = await startSftp(sftpConfig(w.dataDir, { NIA_LINK_SFTP_PASSWORD_AUTH: 'true' }), w);
    try {
      (await connect({ port: second.port, username: 'a001', password: 'correct horse battery staple' })).end();
      await expectLast('auth.succeeded', { actor: 'a001', detail: { method: 'password' } });
      await expect(connect({ port: second.port, username: 'a001', password: 'wrong horse battery staple' })).rejects.toThrow(/authentication methods failed/);
      await expectFailure({ actor: 'a001', detail: { method: 'password', reason: 'password.wrong' } });
      await expect(connect({ port: second.port, username: 'r001', password: 'correct horse battery staple' })).rejects.toThrow(/authentication methods failed/);
      await expectFailure({ actor: 'r001', detail: { reason: 'password.not-set' } });
    } finally {
      await second.svc.stop();
    }
  });
});
