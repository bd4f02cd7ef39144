import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Client } from 'ssh2';
import type { Config } from '../../src/config';
import type { DeliveryView } from '../../src/extract';
import { listLog } from '../../src/usagelog';
import { bigDelivery, buildDelivery, connect, cpuMs, niaKeys, processTree, REDIS, rssMiB, sftpBatch, sftpConfig } from '../helpers/sftp';
import { approvedLink, cleanupKeys, eventually, makeAgencyKeys, openTestWorld, startRole, tmpDir, type AgencyKeys, type RoleProcess, type AnyWorld } from '../helpers/world';

/**
 * Attacks on the resources of the SFTP role (its CPU, its memory, its event loop), against the role
 * as an operator runs it: `nia-link start --role sftp` in processes of its own, two of them, so what
 * each costs is measured on the service alone, in all its processes.
 */

let keys: AgencyKeys;
let w: AnyWorld;
let config: Config;
let role: RoleProcess;
let port: number;
let dir: string;
let big: { file: string; name: string; id: number };
let other: DeliveryView;
const links: number[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const key = () => readFileSync(keys.sshPrivateFile);
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const logOf = async (type: string) => (await listLog(w.cdb.db, { type })).map((r) => ({ ...r, detail: JSON.parse(r.detail) }));
const service = () => processTree(role.child.pid!);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const str = (t: string) => Buffer.concat([u32(Buffer.byteLength(t)), Buffer.from(t)]);
const packet = (type: number, id: number, body: Buffer) => Buffer.concat([u32(5 + body.length), Buffer.from([type]), u32(id), body]);

/** An SFTP channel on an ssh2 client connection, spoken raw: answers by request id. */
async function rawChannel(c: Client) {
  const ch = await new Promise<any>((resolve, reject) => c.subsys('sftp', (err, s) => (err ? reject(err) : resolve(s))));
  const chunks: Buffer[] = [];
  let have = 0;
  const waiters = new Map<number, (p: { type: number; body: Buffer }) => void>();
  let version: ((v: number) => void) | undefined;
  ch.on('data', (d: Buffer) => {
    chunks.push(d);
    have += d.length;
    let buf = chunks.length > 1 ? Buffer.concat(chunks.splice(0)) : chunks.splice(0)[0];
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const len = buf.readUInt32BE(0);
      const type = buf[4];
      if (type === 2) version?.(buf.readUInt32BE(5));
      else waiters.get(buf.readUInt32BE(5))?.({ type, body: buf.subarray(9, 4 + len) });
      buf = buf.subarray(4 + len);
    }
    if (buf.length) chunks.push(buf);
    have = buf.length;
  });
  const closed = new Promise<void>((resolve) => ch.on('close', resolve));
  ch.write(Buffer.concat([u32(5), Buffer.from([1]), u32(3)]));
  expect(await new Promise<number>((resolve) => (version = resolve))).toBe(3);
  let id = 0;
  return {
    ch,
    closed,
    answer: (n: number) => new Promise<{ type: number; body: Buffer }>((resolve) => waiters.set(n, resolve)),
    request(type: number, body: Buffer) {
      const n = ++id;
      const p = this.answer(n);
      ch.write(packet(type, n, body));
      return p;
    },
    nextId: () => ++id,
  };
}

/** Writes with the client's own backpressure (so the test does not buffer what the server refuses to read); stops at `until`. */
async function writeAll(ch: any, parts: Iterable<Buffer>, until: number): Promise<number> {
  let sent = 0;
  for (const p of parts) {
    if (Date.now() > until) break;
    sent += p.length;
    if (!ch.write(p)) {
      const drained = await Promise.race([new Promise<boolean>((r) => ch.once('drain', () => r(true))), sleep(Math.max(0, until - Date.now())).then(() => false)]);
      if (!drained) break;
    }
  }
  return sent;
}

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = await openTestWorld();
  dir = tmpDir('nia-link-sftp-resources-');
  config = sftpConfig(w.dataDir);
  await niaKeys(config, keys);
  const t0 = Date.now();
  links.push(await approvedLink(w, keys, { account: 'a001', allowIps: ['127.0.0.1/32', '127.0.0.3/32'] }));
  links.push(await approvedLink(w, keys, { account: 'b001' }));
  // The gate's cost must not grow with the registry: a hundred more links, all for 127.0.0.1 only.
  for (let i = 0; i < 100; i++) links.push(await approvedLink(w, keys, { account: `g${String(i).padStart(3, '0')}` }));
  expect(Date.now() - t0).toBeLessThan(120_000);
  big = await bigDelivery(w, links[0], 64);
  other = await buildDelivery(w, config, links[1]);
  role = await startRole(w.dataDir, 'sftp', {
    REDIS_URL: REDIS(),
    NIA_LINK_LOG_LEVEL: 'warn',
    NIA_LINK_SFTP_HOST: '127.0.0.1',
    NIA_LINK_SFTP_PORT: '0',
    NIA_LINK_SFTP_PROCESSES: '2',
    NIA_LINK_SFTP_LOGIN_GRACE: '60',
    NIA_LINK_SFTP_STALL_TIMEOUT: '8',
    NIA_LINK_SFTP_BAN_THRESHOLD: '3',
    NIA_LINK_SFTP_BAN_WINDOW: '60',
    NIA_LINK_SFTP_BAN_SECONDS: '60',
  });
  const m = /sftp: listening on 127\.0\.0\.1:(\d+) in 2 processes/.exec(role.output());
  if (!m) throw new Error(`the sftp role did not start:\n${role.output()}`);
  port = Number(m[1]);
}, 300_000);
afterAll(async () => {
  role?.kill();
  await role?.exited;
  await w?.close();
  cleanupKeys(keys);
  rmSync(dir, { recursive: true, force: true });
});

describe('pre-authentication CPU exhaustion at the gate', () => {
  /** A TCP connection from `localAddress`: the bytes the server sent before closing it, or -1 if it was still open after 10 s. */
  const knock = (localAddress: string) =>
    new Promise<number>((resolve) => {
      let bytes = 0;
      const s = net.connect({ host: '127.0.0.1', port, localAddress });
      const t = setTimeout(() => {
        s.destroy();
        resolve(-1);
      }, 10_000);
      s.on('data', (d) => (bytes += d.length));
      s.on('error', () => undefined);
      s.on('close', () => {
        clearTimeout(t);
        resolve(bytes);
      });
    });

  it('a flood from an unlisted address costs the service under 600 µs of CPU per refused connection (102 links), and a listed client still logs in within 3 s', async () => {
    const pids = service();
    expect(pids.length).toBe(3); // the primary, which accepts and gates, and two workers
    await sleep(1500); // let start-up settle
    const n = 3000;
    const cpu0 = cpuMs(pids);
    const results: number[] = [];
    let ls: Promise<{ ms: number; code: number | null; stderr: string }> | undefined;
    let next = 0;
    const worker = async () => {
      while (next < n) {
        const i = next++;
        if (i === 300) {
          const t0 = Date.now();
          ls = sftpBatch(port, keys.sshPrivateFile, 'b001', 'ls /outbox').then((r) => ({ ms: Date.now() - t0, code: r.code, stderr: r.stderr }));
        }
        results.push(await knock('127.0.0.2'));
      }
    };
    await Promise.all(Array.from({ length: 50 }, worker));
    const spent = cpuMs(pids) - cpu0;
    const login = await ls!;
    const perConnectionUs = (spent * 1000) / n;
    // Every one was closed without a byte (no banner, no key exchange).
    expect(results.filter((b) => b !== 0)).toEqual([]);
    expect(perConnectionUs).toBeLessThan(600);
    expect([login.code, login.stderr]).toEqual([0, '']);
    expect(login.ms).toBeLessThan(3000);
  }, 180_000);
});

describe('memory exhaustion by an authenticated client', () => {
  it('a client with 4 sessions that stops reading and keeps sending large and pipelined requests keeps every process of the service under 600 MiB; another account downloads meanwhile; the shut sessions are closed', async () => {
    const pids = service();
    const peak = new Map<number, number>(pids.map((p) => [p, rssMiB(p)]));
    const sample = setInterval(() => {
      for (const p of pids) peak.set(p, Math.max(peak.get(p)!, rssMiB(p)));
    }, 100);
    const c = await connect({ port, username: 'a001', privateKey: key() });
    try {
      const sessions = await Promise.all([1, 2, 3, 4].map(() => rawChannel(c)));
      const until = Date.now() + 20_000;
      const attacks = sessions.map(async (s, n) => {
        const opened = await s.request(3, Buffer.concat([str(`/outbox/${big.name}`), u32(1), u32(0)]));
        expect(opened.type).toBe(102);
        const handle = opened.body.subarray(4, 4 + opened.body.readUInt32BE(0));
        // From here on the client reads nothing: its window closes once the first answers fill it.
        s.ch.pause();
        const read = (i: number) => {
          const off = Buffer.alloc(8);
          off.writeBigUInt64BE(BigInt((i % 256) * 255 * 1024));
          return packet(5, s.nextId(), Buffer.concat([u32(handle.length), handle, off, u32(255 * 1024)]));
        };
        const junk = Buffer.alloc(256 * 1024 - 9, 0x41);
        const realpaths = () => Buffer.concat(Array.from({ length: 1024 }, () => packet(16, s.nextId(), str('.'))));
        function* requests() {
          if (n === 3) {
            // Small requests with answers five times their size, never a READ among them.
            for (;;) yield realpaths();
          }
          // Reads whose answers fill the window, then the largest packets of an unknown type (answered
          // OP_UNSUPPORTED, their bodies useless), all waiting behind the reads.
          for (let i = 0; i < 64; i++) yield read(i);
          for (;;) yield packet(250, s.nextId(), junk);
        }
        return writeAll(s.ch, requests(), until);
      });
      // Another account downloads meanwhile, twice (the primary hands connections to the two workers in turn, so one is the attacker's).
      for (const i of [1, 2]) {
        const got = await sftpBatch(port, keys.sshPrivateFile, 'b001', `get /outbox/${path.basename(other.path!)} ${dir}/other-${i}.pgp`);
        expect([got.code, got.stderr]).toEqual([0, '']);
        expect(sha256(`${dir}/other-${i}.pgp`)).toBe(other.sha256);
      }
      await Promise.all(attacks);
      // The server stopped taking what the client sent long before the 20 s were up, and closes the sessions whose window stays shut.
      let shut: Awaited<ReturnType<typeof logOf>> = [];
      for (let i = 0; i < 200 && shut.length < 4; i++) {
        shut = (await logOf('session.closed')).filter((r) => r.detail.reason === 'window.shut' && r.actor === 'a001');
        if (shut.length < 4) await sleep(100);
      }
      expect(shut).toHaveLength(4);
      for (const s of sessions) s.ch.resume();
      await Promise.race([Promise.all(sessions.map((s) => s.closed)), sleep(10_000).then(() => Promise.reject(new Error('sessions still open')))]);
    } finally {
      clearInterval(sample);
      c.end();
    }
    for (const [pid, mib] of peak) expect([pid, Math.round(mib) < 600]).toEqual([pid, true]);
  }, 120_000);
});

describe('quadratic reassembly', () => {
  it('a 256 KiB packet of an unknown type sent in 2-byte SSH channel writes is answered (OP_UNSUPPORTED, session open), and a second session answers while it still arrives (the framing copies each byte once: test/unit/sftp-packet-reader)', async () => {
    const c = await connect({ port, username: 'a001', privateKey: key() });
    try {
      const slow = await rawChannel(c);
      const second = await rawChannel(c);
      const id = slow.nextId();
      const whole = packet(250, id, Buffer.alloc(256 * 1024 - 5, 0x42));
      expect(whole.readUInt32BE(0)).toBe(256 * 1024);
      const answered = slow.answer(id);
      const t0 = Date.now();
      let sent = 0;
      const sending = (async () => {
        // A few thousand SSH messages per turn of the event loop, so this process stays responsive too.
        while (sent < whole.length) {
          for (let k = 0; k < 2000 && sent < whole.length; k++, sent += 2) slow.ch.write(whole.subarray(sent, sent + 2));
          await new Promise((r) => setImmediate(r));
        }
      })();
      await sleep(200);
      const meanwhile = await second.request(16, str('.'));
      const secondAt = Date.now();
      const reply = await Promise.race([answered, sleep(60_000).then(() => null)]);
      const ms = Date.now() - t0;
      await sending;
      expect(reply && [reply.type, reply.body.readUInt32BE(0)]).toEqual([101, 8]);
      // The other session was answered while the packet was still arriving.
      expect(meanwhile.type).toBe(104);
      expect(secondAt - t0).toBeLessThan(ms);
      expect((await slow.request(16, str('.'))).type).toBe(104);
    } finally {
      c.end();
    }
  }, 60_000);
});

describe('bans reach every SFTP process', () => {
  it('a ban decided in one worker process closes the connections from that address waiting to log in in every worker', async () => {
    const stranger = path.join(dir, 'stranger');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
    // Connections that got the banner and wait (the login grace is 60 s): the primary hands them to both workers in turn.
    const pending = await Promise.all(
      [1, 2, 3, 4].map(
        () =>
          new Promise<{ closed: Promise<number> }>((resolve) => {
            const sock = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.3' });
            sock.on('error', () => undefined);
            const closed = new Promise<number>((r) => sock.on('close', () => r(Date.now())));
            sock.once('data', () => resolve({ closed }));
          }),
      ),
    );
    for (let i = 0; i < 3; i++) {
      await expect(connect({ port, username: 'a001', privateKey: readFileSync(stranger), localAddress: '127.0.0.3' })).rejects.toThrow(/authentication methods failed/);
    }
    const banned = Date.now();
    const closedAt = await Promise.race([Promise.all(pending.map((p) => p.closed)), sleep(10_000).then(() => null)]);
    expect(closedAt).not.toBeNull();
    for (const at of closedAt!) expect(at - banned).toBeLessThan(5000);
    await eventually(async () => expect((await logOf('defender.banned')).pop()).toMatchObject({ ip: '127.0.0.3' }));
  }, 60_000);
});
