import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../src/config';
import { deliveries } from '../../src/db/repositories';
import type { DeliveryView } from '../../src/extract';
import type { RunningService } from '../../src/main';
import { listLog } from '../../src/usagelog';
import { bigDelivery, buildDelivery, closed, connect, niaKeys, openSftp, run, sftpBatch, sftpConfig, startSftp } from '../helpers/sftp';
import { approvedLink, changeApproveArgs, eventually, childPids, cleanupKeys, cli, makeAgencyKeys, openTestWorld, startRole, tmpDir, type AgencyKeys, type AnyWorld } from '../helpers/world';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

let keys: AgencyKeys;
let w: AnyWorld;
let config: Config;
let svc: RunningService;
let port: number;
let linkId: number;
let d: DeliveryView;
let out: string;
const name = () => path.basename(d.path!);
const logOf = async (type: string) => (await listLog(w.cdb.db, { type })).map((r) => ({ ...r, detail: JSON.parse(r.detail) }));

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = await openTestWorld();
  out = tmpDir('nia-link-sftp-out-');
  // A long periodic re-check: a session that closes within seconds was closed by the Redis announcement.
  config = sftpConfig(w.dataDir, { NIA_LINK_SFTP_RECHECK: '60' });
  await niaKeys(config, keys);
  linkId = await approvedLink(w, keys);
  d = await buildDelivery(w, config, linkId);
  ({ svc, port } = await startSftp(config, w));
});
afterAll(async () => {
  await svc?.stop();
  await w?.close();
  cleanupKeys(keys);
  rmSync(out, { recursive: true, force: true });
});

describe('SFTP pull with the OpenSSH client', () => {
  it('lists /outbox (files with ls -l modes), stats and gets a delivery that decrypts and verifies', async () => {
    const r = await sftpBatch(port, keys.sshPrivateFile, 'a001', `pwd\nls -l\ncd /outbox\nls -1\nls -l ${name()}\nget ${name()} ${out}/got.pgp\nget ${name().replace('.csv.pgp', '.manifest.json')} ${out}/m.json\nget ${name().replace('.csv.pgp', '.manifest.json.asc')} ${out}/m.json.asc`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Remote working directory: \/outbox/);
    const base = name().replace('.csv.pgp', '');
    expect(r.stdout).toContain(`${base}.csv.pgp\n${base}.manifest.json\n${base}.manifest.json.asc`);
    expect(r.stdout).toMatch(new RegExp(`-r--r--r-- +1 nia +a001 +${d.bytes} .* ${name().replace(/\./g, '\\.')}`));
    expect(sha256(`${out}/got.pgp`)).toBe(d.sha256);
    const env = { ...process.env, GNUPGHOME: keys.gnupgHome };
    const dec = spawnSync('gpg', ['--batch', '--status-fd', '2', '--decrypt', `${out}/got.pgp`], { env, encoding: 'utf8' });
    expect(dec.status).toBe(0);
    expect(dec.stderr).toMatch(/GOODSIG/);
    expect(dec.stdout.split('\r\n')[0]).toBe('person_id,nationality,crossed_at,port');
    const ver = spawnSync('gpg', ['--batch', '--status-fd', '1', '--verify', `${out}/m.json.asc`, `${out}/m.json`], { env, encoding: 'utf8' });
    expect(ver.stdout).toMatch(/GOODSIG/);
  });

  it('records each file fetched at CLOSE (file.downloaded: account, address, bytes, complete), and `delivery show` lists them', async () => {
    const rows = (await logOf('file.downloaded')).filter((r) => r.object === name());
    expect(rows.length).toBeGreaterThanOrEqual(1);
    expect(rows[0]).toMatchObject({ actor: 'a001', ip: '127.0.0.1', linkId, revision: 1, channel: 'sftp-pull', detail: { delivery: d.id, file: 'data', bytes: d.bytes, size: d.bytes, result: 'complete' } });
    const auth = await logOf('auth.succeeded');
    expect(auth[0]).toMatchObject({ actor: 'a001', ip: '127.0.0.1', detail: { method: 'publickey', algorithm: 'ssh-ed25519' } });
    expect(await logOf('auth.failed')).toEqual([]); // the client's initial `none` request is no failure
    const show = cli(w.dataDir, ['delivery', 'show', String(d.id)], { REDIS_URL: config.redisUrl! });
    expect(show.stdout).toMatch(new RegExp(`fetched +\\S+ by a001 from 127\\.0\\.0\\.1: ${name().replace(/\./g, '\\.')}, ${d.bytes} bytes, complete`));
    const json = JSON.parse(cli(w.dataDir, ['delivery', 'show', String(d.id), '--json']).stdout);
    expect(json.downloads[0]).toMatchObject({ account: 'a001', ip: '127.0.0.1', bytes: d.bytes, result: 'complete' });
  });

  it('reget resumes a partial download: the server sends only the rest, recorded as resumed', async () => {
    const whole = readFileSync(d.path!);
    writeFileSync(`${out}/part.pgp`, whole.subarray(0, 1000));
    const r = await sftpBatch(port, keys.sshPrivateFile, 'a001', `reget /outbox/${name()} ${out}/part.pgp`);
    expect(r.code).toBe(0);
    expect(readFileSync(`${out}/part.pgp`).equals(whole)).toBe(true);
    const last = (await logOf('file.downloaded')).filter((x) => x.object === name()).pop()!;
    expect(last.detail).toMatchObject({ bytes: whole.length - 1000, from: 1000, to: whole.length, result: 'resumed' });
  });

  it('a read cut off by a disconnect is recorded as partial', async () => {
    const c = await connect({ port, username: 'a001', privateKey: readFileSync(keys.sshPrivateFile) });
    const s = await openSftp(c);
    const handle = await new Promise<Buffer>((res, rej) => s.open(`/outbox/${name()}`, 'r', (e, h) => (e ? rej(e) : res(h))));
    await new Promise<void>((res, rej) => s.read(handle, Buffer.alloc(1000), 0, 1000, 0, (e) => (e ? rej(e) : res())));
    const before = (await logOf('file.downloaded')).length;
    c.end();
    for (let i = 0; i < 50 && (await logOf('file.downloaded')).length === before; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await logOf('file.downloaded')).pop()).toMatchObject({ object: name(), detail: { bytes: 1000, from: 0, to: 1000, result: 'partial' } });
  });

  it('a 48 MiB file arrives intact while the client rekeys every MiB', async () => {
    const big = await bigDelivery(w, linkId, 48);
    const r = await sftpBatch(port, keys.sshPrivateFile, 'a001', `get /outbox/${big.name} ${out}/big.bin`, ['-o', 'RekeyLimit=1M']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(sha256(`${out}/big.bin`)).toBe(sha256(big.file));
    rmSync(big.file);
  });

  it('interop: paramiko (its own SSH and SFTP implementation) lists and downloads the delivery', async () => {
    const script = `
import hashlib, paramiko, sys
port, key, name, dest = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
c = paramiko.SSHClient()
c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
c.connect('127.0.0.1', port=port, username='a001', key_filename=key, look_for_keys=False, allow_agent=False)
s = c.open_sftp()
print(sorted(s.listdir('/outbox')))
print(s.getcwd() or s.normalize('.'))
s.get('/outbox/' + name, dest)
print(s.stat('/outbox/' + name).st_size)
c.close()
print(hashlib.sha256(open(dest, 'rb').read()).hexdigest())
`;
    const r = await run('/usr/bin/python3', ['-c', script, String(port), keys.sshPrivateFile, name(), `${out}/paramiko.pgp`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toContain(`'${name()}'`);
    expect(lines[1]).toBe('/outbox');
    expect(Number(lines[2])).toBe(d.bytes);
    expect(lines[3]).toBe(d.sha256);
  });

  it('a purged delivery is gone from /outbox at once', async () => {
    const second = await buildDelivery(w, config, linkId);
    const n2 = path.basename(second.path!);
    expect((await sftpBatch(port, keys.sshPrivateFile, 'a001', 'ls -1 /outbox')).stdout).toContain(n2);
    await w.cdb.write((tx) => deliveries.update(tx, second.id, { status: 'purged', purgedAt: new Date().toISOString() }));
    expect(existsSync(second.path!)).toBe(true); // still on disk: the tree comes from the database
    expect((await sftpBatch(port, keys.sshPrivateFile, 'a001', 'ls -1 /outbox')).stdout).not.toContain(n2);
    const r = await sftpBatch(port, keys.sshPrivateFile, 'a001', `get /outbox/${n2} ${out}/purged.pgp`);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not found/);
    expect(existsSync(`${out}/purged.pgp`)).toBe(false);
  });
});

describe('open sessions follow the link and the account, whichever process changes them', () => {
  const cliEnv = () => ({ REDIS_URL: config.redisUrl! });
  const session = async (user = 'a001') => {
    const c = await connect({ port, username: user, privateKey: readFileSync(keys.sshPrivateFile) });
    const s = await openSftp(c);
    await new Promise<void>((res, rej) => s.readdir('/outbox', (e) => (e ? rej(e) : res())));
    return c;
  };

  it('`nia-link account disable` in another process closes the account\'s session within seconds and refuses new logins', async () => {
    // Another usable account keeps 127.0.0.1 through the connection gate, so the refusal is the login's.
    await approvedLink(w, keys, { account: 'c001' });
    const c = await session();
    const done = closed(c, 5000);
    expect(cli(w.dataDir, ['account', 'disable', 'a001', '--by', 'tester'], cliEnv()).code).toBe(0);
    expect(await done).toBeLessThan(5000);
    await eventually(async () => expect((await logOf('session.closed')).pop()).toMatchObject({ actor: 'a001', detail: { reason: 'account.disabled' } }));
    await expect(connect({ port, username: 'a001', privateKey: readFileSync(keys.sshPrivateFile) })).rejects.toThrow(/authentication methods failed/);
    await eventually(async () => expect((await logOf('auth.failed')).pop()).toMatchObject({ actor: 'a001', detail: { reason: 'account.disabled' } }));
    expect(cli(w.dataDir, ['account', 'enable', 'a001'], cliEnv()).code).toBe(0);
    (await session()).end();
  });

  it('a link suspended with `nia-link link suspend` (another process) closes its open session within seconds; logins are refused', async () => {
    const other = await approvedLink(w, keys, { account: 's001' });
    const c = await session('s001');
    const done = closed(c, 5000);
    expect(cli(w.dataDir, ['link', 'suspend', String(other), '--reason', '稽核缺失逾期未改善'], cliEnv()).code).toBe(0);
    expect((await w.registry.show(other)).status).toBe('suspended');
    expect(await done).toBeLessThan(5000);
    await eventually(async () => expect((await logOf('session.closed')).pop()).toMatchObject({ actor: 's001', linkId: other, detail: { reason: 'link.not-active' } }));
    await expect(connect({ port, username: 's001', privateKey: readFileSync(keys.sshPrivateFile) })).rejects.toThrow(/authentication methods failed/);
    await eventually(async () => expect((await logOf('auth.failed')).pop()).toMatchObject({ actor: 's001', linkId: other, detail: { reason: 'link.not-active' } }));
  });

  it('a link terminated by an approved stop request (CLI, another process) closes its open session within seconds', async () => {
    const other = await approvedLink(w, keys, { account: 'b001' });
    const c = await session('b001');
    // The seconds count from the approval: the two commands before it block this process while they run.
    const filed = cli(w.dataDir, ['link', 'change', String(other), '--kind', 'stop', '--letter-no', '府授字第1150000001號'], cliEnv());
    expect(filed.code).toBe(0);
    const changeId = filed.stdout.trim().split('\n').pop()!;
    const approved = cli(w.dataDir, ['change', 'approve', changeId, '--by', 'officer', ...changeApproveArgs()], cliEnv());
    expect(approved.code).toBe(0);
    const done = closed(c, 5000); // a close that came while the commands ran is delivered after this line
    expect((await w.registry.show(other)).status).toBe('terminated');
    expect(await done).toBeLessThan(5000);
    await eventually(async () => expect((await logOf('session.closed')).pop()).toMatchObject({ actor: 'b001', linkId: other, detail: { reason: 'link.not-active' } }));
  });
});

describe('the sftp role in several processes on one port', () => {
  it('`nia-link start --role sftp` with sftp.processes 2: both serve, a dead one is replaced, SIGTERM stops them all', async () => {
    const role = await startRole(w.dataDir, 'sftp', { REDIS_URL: config.redisUrl!, NIA_LINK_SFTP_PROCESSES: '2', NIA_LINK_SFTP_PORT: '0', NIA_LINK_SFTP_HOST: '127.0.0.1' });
    const { child, exited } = role;
    try {
      const log = role.output();
      const m = /sftp: listening on 127\.0\.0\.1:(\d+) in 2 processes/.exec(log);
      expect(m).not.toBeNull();
      const p = Number(m![1]);
      const workers = childPids(child.pid!);
      expect([workers.length, log]).toEqual([2, log]);
      const gets = await Promise.all([1, 2, 3, 4].map((i) => sftpBatch(p, keys.sshPrivateFile, 'a001', `get /outbox/${name()} ${out}/multi-${i}.pgp`)));
      for (const [i, g] of gets.entries()) {
        expect(g.code).toBe(0);
        expect(sha256(`${out}/multi-${i + 1}.pgp`)).toBe(d.sha256);
      }
      process.kill(workers[0], 'SIGKILL');
      // Replaced after a second, plus the time a process takes to start on a busy machine.
      const replaced = () => {
        const now = childPids(child.pid!);
        return now.length === 2 && !now.includes(workers[0]);
      };
      for (let i = 0; i < 300 && !replaced(); i++) await new Promise((r) => setTimeout(r, 100));
      expect([replaced(), role.output()]).toEqual([true, role.output()]);
      expect((await sftpBatch(p, keys.sshPrivateFile, 'a001', 'ls /outbox')).code).toBe(0);
      const now = childPids(child.pid!);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      for (const pid of now) expect(() => process.kill(pid, 0)).toThrow();
    } finally {
      role.kill();
    }
  }, 120_000);
});
