import { QueueEvents } from 'bullmq';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { ensureKeys } from '../../src/crypto';
import { deliveries } from '../../src/db/repositories';
import { connection, openQueue, QUEUES, queuePrefix, type TypedQueue } from '../../src/queue';
import { listLog, verifyLog } from '../../src/usagelog';
import { person, writeEntryExitSource } from '../helpers/source';
import { approvedLink, BIN, cleanupKeys, makeAgencyKeys, openTestWorld, type AgencyKeys, type AnyWorld } from '../helpers/world';

// Two worker processes share one installation. One is frozen (SIGSTOP, as a paused VM or a long GC)
// in the middle of a build until its job lock expires; the other takes the job over and finishes it.
// When the first one is thawed (SIGCONT) it must not publish a second file, delivery or extract.built.

const REDIS = process.env.NIA_TEST_REDIS_URL!;
const LOCK_MS = 2000;
let keys: AgencyKeys;
let w: AnyWorld;
let queue: TypedQueue<'extract'>;
let events: QueueEvents;

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = await openTestWorld();
  const config = loadConfig({ dataDir: w.dataDir }, { REDIS_URL: REDIS, NIA_LINK_LOG_LEVEL: 'silent' });
  await ensureKeys(config.keysDir, new Date());
  writeEntryExitSource(w.dataDir, Array.from({ length: 150000 }, (_, i) => person(i + 1)), '2026-03-01T00:00:00.000Z');
  queue = openQueue(QUEUES.extract, config, REDIS);
  events = new QueueEvents(QUEUES.extract, { connection: connection(REDIS), prefix: queuePrefix(config) });
  await events.waitUntilReady();
});
afterAll(async () => {
  await events?.close();
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await w?.close();
  cleanupKeys(keys);
});

const startWorker = (): ChildProcess =>
  spawn(process.execPath, [BIN, '--data-dir', w.dataDir, 'start', '--role', 'worker'], {
    env: { ...process.env, REDIS_URL: REDIS, NIA_LINK_LOG_LEVEL: 'silent', NIA_LINK_JOB_LOCK_MS: String(LOCK_MS), NIA_LINK_JOB_ATTEMPTS: '3', NIA_LINK_HTTP_PORT: '0' },
    stdio: 'ignore',
    detached: true,
  });
const exited = (p: ChildProcess) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)));

it('a worker frozen past its job lock and then thawed publishes nothing: exactly one delivery, one file, one extract.built', async () => {
  const id = await approvedLink(w, keys, { account: 'stall1', fields: [{ name: 'person_id' }, { name: 'name_en' }, { name: 'name_zh' }, { name: 'crossed_at' }] });
  const dir = path.join(w.dataDir, 'outbox', String(id));
  const job = await queue.add('manual-extract', { linkId: id, full: true, trigger: 'manual' }, { jobId: 'stall-test' });
  const frozen = startWorker();
  let other: ChildProcess | undefined;
  try {
    let building = false;
    for (let i = 0; i < 600 && !building; i++) {
      await new Promise((r) => setTimeout(r, 20));
      building = existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.partial'));
    }
    expect(building).toBe(true);
    process.kill(-frozen.pid!, 'SIGSTOP');
    // The lock expires while it sleeps; the other worker's stalled-job check hands the job to it.
    other = startWorker();
    const r = (await job.waitUntilFinished(events, 90000)) as { deliveryId: number };
    process.kill(-frozen.pid!, 'SIGCONT');
    // A worker that is told to stop first finishes the job it holds: the thawed one runs its build to
    // the end and tries to publish before it exits.
    process.kill(-frozen.pid!, 'SIGTERM');
    await exited(frozen);

    const rows = await deliveries.list(w.cdb.db, id);
    expect(rows.map((d) => [d.id, d.status])).toEqual([[r.deliveryId, 'built']]);
    const files = readdirSync(dir);
    expect(files.filter((f) => f.endsWith('.csv.pgp'))).toEqual([rows[0].fileName]);
    expect(files.filter((f) => f.endsWith('.partial'))).toEqual([]);
    const sha = (f: string) => createHash('sha256').update(readFileSync(path.join(dir, f))).digest('hex');
    expect(sha(rows[0].fileName!)).toBe(rows[0].cipherSha256);
    expect(sha(rows[0].fileName!.replace(/\.csv\.pgp$/, '.manifest.json'))).toBe(rows[0].manifestSha256);
    const log = (await listLog(w.cdb.db, { limit: 100000 })).filter((e) => e.linkId === id);
    expect(log.filter((e) => e.type === 'extract.built')).toHaveLength(1);
    expect(log.filter((e) => e.type === 'extract.failed')).toHaveLength(0);
    expect((await verifyLog(w.cdb)).ok).toBe(true);
  } finally {
    for (const p of [frozen, other]) {
      if (!p || p.exitCode !== null || p.signalCode !== null) continue;
      try {
        process.kill(-p.pid!, 'SIGCONT');
        process.kill(-p.pid!, 'SIGTERM');
      } catch {
        /* already gone */
      }
      await exited(p);
    }
  }
}, 150000);
