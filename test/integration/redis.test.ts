import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { connection, queuePrefix, redisAnswers, resolveRedis } from '../../src/queue';
import { alive, approvedLink, childPids, cleanupKeys, cli, makeAgencyKeys, openTestWorld, startRole, tmpDir } from '../helpers/world';

const TEST_URL = process.env.NIA_TEST_REDIS_URL!;
const NOBODY = 'redis://127.0.0.1:1'; // nothing listens on port 1

/** A client that knows the address but not the password, speaking RESP itself: the server's first reply. */
function pingWithoutPassword(url: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname, () => sock.write('PING\r\n'));
    sock.setTimeout(3000, () => sock.destroy(new Error('no reply')));
    sock.once('data', (d) => {
      resolve(d.toString('utf8').trim());
      sock.destroy();
    });
    sock.once('error', reject);
  });
}

describe('Redis resolution (REDIS_URL → the embedded server recorded in the data dir → a new embedded redis-server with a password)', () => {
  let dir: string;
  beforeEach(() => (dir = tmpDir()));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('uses REDIS_URL when it answers, and refuses with a clear message when it does not', async () => {
    expect(await resolveRedis(loadConfig({ dataDir: dir }, { REDIS_URL: TEST_URL }), { spawn: false })).toMatchObject({ url: TEST_URL, source: 'REDIS_URL' });
    await expect(resolveRedis(loadConfig({ dataDir: dir }, { REDIS_URL: NOBODY }), { spawn: true })).rejects.toThrow(/does not answer/);
  });

  it('with no REDIS_URL, a Redis without a password at the would-be default address is never used: the service starts its own, a CLI command says to name it in REDIS_URL', async () => {
    // The suite's redis-server has no password: what anyone on the machine could start on 6379.
    const cfg = loadConfig({ dataDir: dir }, {});
    await expect(resolveRedis(cfg, { spawn: false, defaultUrl: TEST_URL })).rejects.toThrow(/answers on redis:\/\/127\.0\.0\.1:\d+, but nia-link uses one there only if REDIS_URL names it/);
    const r = await resolveRedis(cfg, { spawn: true, defaultUrl: TEST_URL });
    try {
      expect(r.source).toBe('embedded');
      expect(new URL(r.url).port).not.toBe(new URL(TEST_URL).port);
    } finally {
      await r.stop!();
    }
    // Named in REDIS_URL, it is used.
    expect(await resolveRedis(loadConfig({ dataDir: dir }, { REDIS_URL: TEST_URL }), { spawn: true, defaultUrl: TEST_URL })).toMatchObject({ url: TEST_URL, source: 'REDIS_URL' });
  });

  it('a CLI command with no Redis anywhere says how to get one', async () => {
    await expect(resolveRedis(loadConfig({ dataDir: dir }, {}), { spawn: false, defaultUrl: NOBODY })).rejects.toThrow(/set REDIS_URL.*docker compose up -d redis/);
  });

  it('the embedded redis-server refuses a client without its password; the URL file and the configuration holding the password are 0600, and the password is not on its command line', async () => {
    const r = await resolveRedis(loadConfig({ dataDir: dir }, {}), { spawn: true, defaultUrl: NOBODY });
    try {
      expect(r.url).toMatch(/^redis:\/\/:[0-9a-f]{64}@127\.0\.0\.1:\d+$/);
      const password = new URL(r.url).password;
      expect(await pingWithoutPassword(r.url)).toMatch(/^-NOAUTH/);
      expect(await pingWithoutPassword(TEST_URL)).toBe('+PONG'); // what it would have been without one
      expect(await redisAnswers(r.url.replace(`:${password}@`, ''))).toBe(false);
      expect(await redisAnswers(r.url.replace(password, 'f'.repeat(64)))).toBe(false);
      expect(await redisAnswers(r.url)).toBe(true);
      for (const file of [path.join(dir, 'redis.url'), path.join(dir, 'redis', 'redis.conf')]) expect([file, statSync(file).mode & 0o777]).toEqual([file, 0o600]);
      const c = new Redis(r.url);
      try {
        const pid = Number(/process_id:(\d+)/.exec(await c.info('server'))![1]);
        expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).not.toContain(password);
      } finally {
        c.disconnect();
      }
    } finally {
      await r.stop!();
    }
  });

  it('a URL file that is not ours alone, or names a server without a password, is not believed', async () => {
    const file = path.join(dir, 'redis.url');
    writeFileSync(file, TEST_URL + '\n', { mode: 0o600 });
    await expect(resolveRedis(loadConfig({ dataDir: dir }, {}), { spawn: false, defaultUrl: NOBODY })).rejects.toThrow(/no Redis to use/);
    const r = await resolveRedis(loadConfig({ dataDir: dir }, {}), { spawn: true, defaultUrl: NOBODY });
    try {
      // The service's own URL, made readable by others: a CLI command does not use it.
      const url = readFileSync(file, 'utf8');
      rmSync(file);
      writeFileSync(file, url, { mode: 0o644 });
      await expect(resolveRedis(loadConfig({ dataDir: dir }, {}), { spawn: false, defaultUrl: NOBODY })).rejects.toThrow(/no Redis to use/);
    } finally {
      await r.stop!();
    }
  });

  it('the service starts an embedded redis-server under the data dir, records its URL for CLI commands, and stops it', async () => {
    const cfg = loadConfig({ dataDir: dir }, {});
    const r = await resolveRedis(cfg, { spawn: true, defaultUrl: NOBODY });
    try {
      expect(r.source).toBe('embedded');
      expect(await redisAnswers(r.url)).toBe(true);
      expect(readFileSync(path.join(dir, 'redis.url'), 'utf8').split('\n')[0]).toBe(r.url);
      expect(existsSync(path.join(dir, 'redis'))).toBe(true);
      // A CLI command (no spawning) finds the same server through the data dir.
      expect(await resolveRedis(cfg, { spawn: false, defaultUrl: NOBODY })).toMatchObject({ url: r.url, source: 'embedded-file' });
    } finally {
      await r.stop!();
    }
    expect(await redisAnswers(r.url)).toBe(false);
    expect(existsSync(path.join(dir, 'redis.url'))).toBe(false);
  });

  it("a second service on the data directory uses the running service's embedded Redis and never stops it; one left by a dead service is adopted", async () => {
    const cfg = loadConfig({ dataDir: dir }, {});
    const r = await resolveRedis(cfg, { spawn: true, defaultUrl: NOBODY });
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      // As if another process (alive) had started it.
      writeFileSync(path.join(dir, 'redis.url'), `${r.url}\n${other.pid}\n`, { mode: 0o600 });
      const second = await resolveRedis(cfg, { spawn: true, defaultUrl: NOBODY });
      expect(second).toMatchObject({ url: r.url, source: 'embedded-file' });
      expect(second.stop).toBeUndefined();
      other.kill('SIGKILL');
      await new Promise((resolve) => other.once('exit', resolve));
      const adopted = await resolveRedis(cfg, { spawn: true, defaultUrl: NOBODY });
      expect(adopted.stop).toBeDefined();
      expect(readFileSync(path.join(dir, 'redis.url'), 'utf8').split('\n')[1]).toBe(String(process.pid));
    } finally {
      other.kill('SIGKILL');
      await r.stop!();
    }
  });

  it('two installations sharing one Redis never see each other\'s jobs (instance prefix)', async () => {
    const a = loadConfig({ dataDir: path.join(dir, 'a') }, {});
    const b = loadConfig({ dataDir: path.join(dir, 'b') }, {});
    expect(a.instanceId).not.toBe(b.instanceId);
    const qa = new Queue('extract', { connection: connection(TEST_URL), prefix: queuePrefix(a) });
    const qb = new Queue('extract', { connection: connection(TEST_URL), prefix: queuePrefix(b) });
    try {
      await qa.add('x', { link: 1 });
      expect(await qa.getJobCounts('waiting')).toEqual({ waiting: 1 });
      expect(await qb.getJobCounts('waiting')).toEqual({ waiting: 0 });
    } finally {
      await qa.obliterate({ force: true });
      await qa.close();
      await qb.close();
    }
  });
});

describe('the embedded Redis seen from the commands', () => {
  it('`nia-link start` without REDIS_URL prints its embedded Redis without the password, and stops it on SIGTERM', async () => {
    const dir = tmpDir();
    const role = await startRole(dir, 'scheduler', { REDIS_URL: undefined, NIA_LINK_LOG_LEVEL: 'info' });
    try {
      expect([/ready/.test(role.output()), role.output()]).toEqual([true, role.output()]);
      // The file holds the URL, then the owning process's pid.
      const url = readFileSync(path.join(dir, 'redis.url'), 'utf8').split('\n')[0].trim();
      const password = new URL(url).password;
      expect(password).toMatch(/^[0-9a-f]{64}$/);
      expect(role.output()).toMatch(/redis: redis:\/\/\*\*\*@127\.0\.0\.1:\d+ \(embedded/);
      expect(role.output()).not.toContain(password);
      role.child.kill('SIGTERM');
      expect(await role.exited).toBe(0);
      expect(role.output()).not.toContain(password);
      expect(await redisAnswers(url)).toBe(false);
    } finally {
      role.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a signal to the whole process group (a terminal\'s Ctrl-C), even repeated, stops the service and its embedded redis-server cleanly: exit 0, no stack traces, nothing left running', async () => {
    const dir = tmpDir();
    const role = await startRole(dir, 'worker', { REDIS_URL: undefined }, { detached: true });
    let server: number | undefined;
    try {
      expect([/ready/.test(role.output()), role.output()]).toEqual([true, role.output()]);
      const url = readFileSync(path.join(dir, 'redis.url'), 'utf8').split('\n')[0].trim();
      server = childPids(role.child.pid!).find((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'redis-server');
      expect(server).toBeDefined();
      // The server gets the signal too, and exits at once: the workers' close must not wait on it.
      process.kill(-role.child.pid!, 'SIGINT');
      // Under npx the same Ctrl-C comes again, forwarded: it must not cut the stop short.
      await new Promise((r) => setTimeout(r, 20));
      process.kill(role.child.pid!, 'SIGINT');
      // Forced after 30 s it would exit 1 ("shutdown took longer than 30 s").
      const code = await role.exited;
      expect([code, role.output()]).toEqual([0, role.output()]);
      expect(role.output()).toMatch(/SIGINT: stopping[^]*\nstopped\n/);
      expect(role.output()).not.toMatch(/^\s+at /m);
      expect(await redisAnswers(url)).toBe(false);
      expect(alive(server!)).toBe(false);
      expect(existsSync(path.join(dir, 'redis.url'))).toBe(false);
    } finally {
      role.kill();
      if (server && alive(server)) process.kill(server, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a Redis gone just before the service is stopped (one signal to both, or down) does not hold its shutdown: the workers\' connections are dropped, it exits 0 without stack traces, long before the 30 s limit', async () => {
    const dir = tmpDir();
    const port = 20000 + Math.floor(Math.random() * 20000);
    const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
    const url = `redis://127.0.0.1:${port}`;
    let role: Awaited<ReturnType<typeof startRole>> | undefined;
    try {
      for (let i = 0; i < 50 && !(await redisAnswers(url, 200)); i++) await new Promise((r) => setTimeout(r, 100));
      role = await startRole(dir, 'worker', { REDIS_URL: url });
      expect([/ready/.test(role.output()), role.output()]).toEqual([true, role.output()]);
      // Redis first, the service as it notices: its connections are reconnecting when it closes them.
      const gone = new Promise((r) => redis.once('exit', r));
      redis.kill('SIGTERM');
      await gone;
      await new Promise((r) => setTimeout(r, 1500));
      role.child.kill('SIGTERM');
      // Forced after 30 s it would exit 1 ("shutdown took longer than 30 s").
      const code = await role.exited;
      expect([code, role.output()]).toEqual([0, role.output()]);
      expect(role.output()).toMatch(/\nstopped\n/);
      expect(role.output()).not.toMatch(/^\s+at /m);
    } finally {
      role?.kill();
      redis.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('with the service stopped (no Redis anywhere), `link suspend` still works: the change is in the database, which the roles re-check', async () => {
    const keys = makeAgencyKeys();
    const w = await openTestWorld();
    try {
      const id = await approvedLink(w, keys);
      await w.cdb.close();
      const started = Date.now();
      const r = cli(w.dataDir, ['link', 'suspend', String(id), '--reason', 'audit finding overdue'], { REDIS_URL: undefined as unknown as string });
      expect([r.code, r.stderr]).toEqual([0, r.stderr]);
      expect(Date.now() - started).toBeLessThan(15_000);
      const show = cli(w.dataDir, ['link', 'show', String(id), '--json'], { REDIS_URL: undefined as unknown as string });
      expect(JSON.parse(show.stdout).status).toBe('suspended');
    } finally {
      rmSync(w.dataDir, { recursive: true, force: true });
      cleanupKeys(keys);
    }
  });
});
