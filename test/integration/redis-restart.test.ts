import { QueueEvents } from 'bullmq';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { ensureKeys } from '../../src/crypto';
import { deliveries } from '../../src/db/repositories';
import { connection, openQueue, QUEUES, queuePrefix, type TypedQueue } from '../../src/queue';
import { redisAnswers } from '../../src/queue/redis';
import { listLog, verifyLog } from '../../src/usagelog';
import { person, writeEntryExitSource } from '../helpers/source';
import { approvedLink, BIN, cleanupKeys, makeAgencyKeys, openTestWorld, type AgencyKeys, type AnyWorld } from '../helpers/world';

// Redis holds the queues. Run as production runs it (append-only file, fsync on every write), a
// restart of Redis — even a crash — loses no queued job, and the roles reconnect by themselves.
// The test runs its own redis-server, never the suite's.

let keys: AgencyKeys;
let w: AnyWorld;
let redisDir: string;
let url: string;
let port: number;
let redis: ChildProcess | undefined;
let config: ReturnType<typeof loadConfig>;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}
async function startRedis(): Promise<void> {
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction', '--dir', redisDir], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !(await redisAnswers(url, 300)); i++) await new Promise((r) => setTimeout(r, 100));
  expect(await redisAnswers(url, 1000)).toBe(true);
}
/** kill -9: no shutdown save; only what the append-only file holds survives. */
async function crashRedis(): Promise<void> {
  const r = redis!;
  r.kill('SIGKILL');
  await new Promise((res) => (r.exitCode !== null || r.signalCode !== null ? res(null) : r.once('exit', res)));
}
const exited = (p: ChildProcess) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)));

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = await openTestWorld();
  port = await freePort();
  url = `redis://127.0.0.1:${port}`;
  redisDir = mkdtempSync(path.join(os.tmpdir(), 'nia-link-aof-'));
  await startRedis();
  config = loadConfig({ dataDir: w.dataDir }, { REDIS_URL: url, NIA_LINK_LOG_LEVEL: 'silent' });
  await ensureKeys(config.keysDir, new Date());
  writeEntryExitSource(w.dataDir, Array.from({ length: 200 }, (_, i) => person(i + 1)), '2026-03-01T00:00:00.000Z');
});
afterAll(async () => {
  if (redis && redis.exitCode === null && redis.signalCode === null) await crashRedis();
  rmSync(redisDir, { recursive: true, force: true });
  await w?.close();
  cleanupKeys(keys);
});

it('a job queued before Redis crashes is still there after its restart, and a running worker reconnects and takes new jobs', async () => {
  const a = await approvedLink(w, keys, { account: 'aof1', fields: [{ name: 'person_id' }] });
  const b = await approvedLink(w, keys, { account: 'aof2', fields: [{ name: 'person_id' }] });
  let queue: TypedQueue<'extract'> = openQueue(QUEUES.extract, config, url);
  // Queued while no worker runs, then Redis dies.
  await queue.add('manual-extract', { linkId: a, full: true, trigger: 'manual' }, { jobId: 'before-crash' });
  await queue.close();
  await crashRedis();
  await startRedis();

  const worker = spawn(process.execPath, [BIN, '--data-dir', w.dataDir, 'start', '--role', 'worker,scheduler'], {
    env: { ...process.env, REDIS_URL: url, NIA_LINK_LOG_LEVEL: 'silent', NIA_LINK_HTTP_PORT: '0' },
    stdio: 'ignore',
    detached: true,
  });
  let events: QueueEvents | undefined;
  try {
    const built = async (linkId: number) => (await deliveries.list(w.cdb.db, linkId)).some((d) => d.status === 'built');
    for (let i = 0; i < 300 && !(await built(a)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await built(a)).toBe(true);

    // Redis dies under a running worker and scheduler and comes back two seconds later.
    await crashRedis();
    await new Promise((r) => setTimeout(r, 2000));
    await startRedis();
    queue = openQueue(QUEUES.extract, config, url);
    events = new QueueEvents(QUEUES.extract, { connection: connection(url), prefix: queuePrefix(config) });
    await events.waitUntilReady();
    const job = await queue.add('manual-extract', { linkId: b, full: true, trigger: 'manual' }, { jobId: 'after-crash' });
    await job.waitUntilFinished(events, 60000);
    expect(await built(b)).toBe(true);
    expect(worker.exitCode).toBeNull();

    for (const id of [a, b]) {
      expect((await deliveries.list(w.cdb.db, id)).filter((d) => d.status === 'built')).toHaveLength(1);
      expect((await listLog(w.cdb.db, { limit: 100000 })).filter((e) => e.linkId === id && e.type === 'extract.built')).toHaveLength(1);
    }
    expect((await verifyLog(w.cdb)).ok).toBe(true);
  } finally {
    await events?.close();
    await queue.close();
    if (worker.exitCode === null && worker.signalCode === null) process.kill(-worker.pid!, 'SIGTERM');
    await exited(worker);
  }
}, 120000);
