import { QueueEvents } from 'bullmq';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config';
import { ensureKeys } from '../../src/crypto';
import type { PostgresControlDb } from '../../src/db';
import { openPostgresControlDb } from '../../src/db/pg/control';
import { deliveries } from '../../src/db/repositories';
import { publishedFiles } from '../../src/outbox';
import { connection, openQueue, QUEUES, queuePrefix, type TypedQueue } from '../../src/queue';
import { listLog, verifyLog } from '../../src/usagelog';
import { createScratchDb, pgProxy, type PgProxy, type ScratchDb } from '../helpers/pg';
import { freePort } from '../helpers/console';
import { askQuery } from '../helpers/query';
import { person, writeEntryExitSource } from '../helpers/source';
import { approvedLink, BIN, cleanupKeys, makeAgencyKeys, servicesOn, startRole, tmpDir, TestClock, type AgencyKeys, type RoleProcess } from '../helpers/world';

// The control database on PostgreSQL is down when nia-link starts, or goes away while it runs (a server
// restart): start-up fails with one line naming the URL without its password; at run time the requests
// caught in it fail cleanly, every role reconnects by itself, and nothing is half-written. A TCP proxy
// in front of a scratch database stands for the server: it drops every connection and refuses new ones
// for a moment, as a restart does, without touching anyone else's connections.

const REDIS = process.env.NIA_TEST_REDIS_URL!;
/** Put into every URL the roles are given: trust authentication ignores it; nothing may ever show it. */
const PASSWORD = 'Pw-never-shown-7f3a9';

let scratch: ScratchDb;
let proxy: PgProxy;
/** The scratch database through the proxy, with a password in it: what the roles are configured with. */
let proxyUrl: string;
/** The control database as the test sets it up (through the proxy, as the roles reach it). */
let cdb: PostgresControlDb;
/** A direct connection, unaffected by the proxy: what PostgreSQL holds, for the checks. */
let direct: PostgresControlDb;
let keys: AgencyKeys;
let dataDir: string;
let config: Config;
let certDir: string;
let queue: TypedQueue<'extract'>;
let events: QueueEvents;



/** `nia-link …` in a child process, without blocking this one (the proxy lives here); killed after `ms`. */
function run(args: string[], env: Record<string, string>, ms = 30_000): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, '--data-dir', dataDir, ...args], { env: { ...process.env, NIA_LINK_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** A client certificate made the way an agency makes one: openssl, self-signed, P-256. */
function makeCert(name: string): { cert: string; key: string } {
  const key = path.join(certDir, `${name}.key`);
  const cert = path.join(certDir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj', `/CN=${name}`, '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

/** What every role process is started with: this world's data, the test Redis, the control database through the proxy. */
/** Extract jobs are retried (backoff 0.3, 0.6, 1.2, 2.4, 4.8 s): one caught in the restart is built by a later attempt. */
const JOBS_RETRIED = { NIA_LINK_JOB_ATTEMPTS: '6', NIA_LINK_JOB_BACKOFF_MS: '300' };

const roleEnv = (more: Record<string, string> = {}): Record<string, string> => ({
  REDIS_URL: REDIS,
  NIA_LINK_DATABASE_URL: proxyUrl,
  NIA_LINK_LOG_LEVEL: 'warn',
  ...JOBS_RETRIED,
  ...more,
});

beforeAll(async () => {
  scratch = await createScratchDb();
  proxy = await pgProxy(scratch.url);
  const via = new URL(proxy.url);
  via.password = PASSWORD;
  proxyUrl = via.toString();

  keys = makeAgencyKeys();
  dataDir = tmpDir();
  certDir = tmpDir('nia-link-certs-');
  // Migrated through the proxy, as a role would on a new host.
  cdb = await openPostgresControlDb(proxyUrl);
  direct = await openPostgresControlDb(scratch.url, { migrate: false });
  config = loadConfig({ dataDir }, { REDIS_URL: REDIS, NIA_LINK_DATABASE_URL: proxyUrl, NIA_LINK_LOG_LEVEL: 'silent', ...JOBS_RETRIED });
  await ensureKeys(config.keysDir, new Date());
  writeEntryExitSource(dataDir, Array.from({ length: 40_000 }, (_, i) => person(i + 1)), '2026-01-01T00:00:00.000Z');
  queue = openQueue(QUEUES.extract, config, REDIS);
  events = new QueueEvents(QUEUES.extract, { connection: connection(REDIS), prefix: queuePrefix(config) });
  await events.waitUntilReady();
}, 120_000);

afterAll(async () => {
  await events?.close();
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await cdb?.close();
  await direct?.close();
  await proxy?.close();
  await scratch?.drop();
  if (keys) cleanupKeys(keys);
  for (const d of [dataDir, certDir]) if (d) rmSync(d, { recursive: true, force: true });
});

describe('a PostgreSQL control database that is down at start-up', () => {
  it('`nia-link start` exits at once with one line naming the URL without its password (closed port, server refusing)', async () => {
    const dead = new URL(proxyUrl);
    dead.port = String(await freePort());
    const cases = [
      { what: 'nothing listens', url: dead.toString() },
      { what: 'the server drops every connection', url: proxyUrl },
    ];
    proxy.refuse(true);
    try {
      for (const c of cases) {
        const shown = new URL(c.url);
        shown.password = '';
        const r = await run(['start', '--role', 'query'], { REDIS_URL: REDIS, NIA_LINK_DATABASE_URL: c.url, NIA_LINK_QUERY_PORT: '0', NIA_LINK_QUERY_HOST: '127.0.0.1' });
        const out = `${r.stdout}${r.stderr}`;
        expect({ what: c.what, code: r.code, out }).toEqual({ what: c.what, code: 1, out });
        expect(out.trimEnd().split('\n')).toHaveLength(1);
        expect(r.stderr).toContain(shown.toString()); // the URL, without its password
        expect(r.stderr).toMatch(/control database/);
        expect(out).not.toContain(PASSWORD);
        expect(r.ms).toBeLessThan(15_000); // not a hang until some timeout
      }
    } finally {
      proxy.refuse(false);
    }
  }, 60_000);
});

describe('a PostgreSQL control database restarted while nia-link runs', () => {
  let queryRole: RoleProcess | undefined;
  let workerRole: RoleProcess | undefined;
  afterEach(() => {
    queryRole?.kill();
    workerRole?.kill();
  });

  it('restart PostgreSQL during a stream of deliveries and online queries: every role recovers by itself; every answered query and every delivery is in the log; nothing is half-written', async () => {
    const { registry, rules } = servicesOn(cdb, new TestClock());
    const client = makeCert('agency-outage');
    const queryLink = await approvedLink({ registry, rules }, keys, { account: undefined, sshKeys: [], methods: ['online-query'], clientCerts: [client.cert], fields: [{ name: 'person_id' }, { name: 'port' }] });
    const pullLink = await approvedLink({ registry, rules }, keys, { account: 'outage', fields: [{ name: 'person_id' }, { name: 'name_en' }, { name: 'name_zh' }, { name: 'crossed_at' }] });

    queryRole = await startRole(dataDir, 'query', roleEnv({ NIA_LINK_QUERY_PORT: '0', NIA_LINK_QUERY_HOST: '127.0.0.1', NIA_LINK_QUERY_PROCESSES: '1', NIA_LINK_QUERY_RATE_PER_MINUTE: '100000' }));
    workerRole = await startRole(dataDir, 'worker', roleEnv());
    const q = queryRole;
    const wk = workerRole;
    const port = Number(/query: listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(q.output())?.[1]);
    expect([port > 0, q.output()]).toEqual([true, q.output()]);
    expect([/ready/.test(wk.output()), wk.output()]).toEqual([true, wk.output()]);

    type Outcome = { reference: string; startedAt: number; status?: number; body?: any; error?: string };
    const outcomes: Outcome[] = [];
    const tag = randomUUID().slice(0, 8);
    let n = 0;
    /** One look-up with a reference of its own; what came back, or why nothing did. */
    const askOne = async (): Promise<Outcome> => {
      const o: Outcome = { reference: `outage-${tag}-${n}`, startedAt: Date.now() };
      const id = `A8${String((n++ % 500) + 1).padStart(8, '0')}`;
      outcomes.push(o);
      try {
        const r = await askQuery({ keysDir: config.keysDir, port, dataset: 'entry_exit', body: { ids: [id], reference: o.reference }, client });
        o.status = r.status;
        o.body = r.body;
      } catch (err) {
        o.error = (err as Error).message; // no answer at all: a hang, a reset connection, a dead role
      }
      return o;
    };
    // Before the restart, the role answers.
    for (let i = 0; i < 20; i++) expect((await askOne()).status).toBe(200);

    // A stream of deliveries: the worker builds them one after another while the queries go on.
    const JOBS = 8;
    const jobs = await Promise.all(Array.from({ length: JOBS }, (_, i) => queue.add('manual-extract', { linkId: pullLink, full: true, trigger: 'manual' }, { jobId: `outage-${tag}-${i}` })));
    const settled: { id: string; deliveryId?: number; error?: string }[] = [];
    const allSettled = Promise.all(
      jobs.map((j) =>
        j.waitUntilFinished(events, 150_000).then(
          (r: { deliveryId: number }) => void settled.push({ id: j.id!, deliveryId: r.deliveryId }),
          (err: Error) => void settled.push({ id: j.id!, error: err.message }),
        ),
      ),
    );

    // A stream of online queries from four clients. PostgreSQL restarts (every connection dropped, new
    // ones refused for 2.5 s, longer than a build takes) while a delivery is being built: after it was
    // claimed, before it is published, so its publishing meets the outage.
    let restartedAt: number | undefined;
    let caught: number | undefined;
    let upAgainAt: number | undefined;
    const outbox = path.join(config.outbox.dir, String(pullLink));
    /** The delivery whose file is being written now (`.<name>-D<id>.csv.pgp.<random>.partial`), if any. */
    const building = (): number | undefined => {
      try {
        const m = readdirSync(outbox)
          .map((f) => /-D(\d+)\.csv\.pgp\..*\.partial$/.exec(f))
          .find(Boolean);
        return m ? Number(m[1]) : undefined;
      } catch {
        return undefined;
      }
    };
    const answeredSinceUp = () => outcomes.filter((o) => upAgainAt !== undefined && o.startedAt > upAgainAt && o.status === 200).length;
    const deadline = Date.now() + 120_000;
    let outage: Promise<void> | undefined;
    const asker = async () => {
      // A role that died ends the stream: what follows would only wait for the deadline.
      while (Date.now() < deadline && q.child.exitCode === null && q.child.signalCode === null) {
        if (restartedAt === undefined && (caught = building()) !== undefined) {
          restartedAt = Date.now();
          outage = proxy.restart(2500).then(() => void (upAgainAt = Date.now()));
        }
        if (upAgainAt !== undefined && answeredSinceUp() >= 40 && settled.length === JOBS) return;
        if ((await askOne()).status !== 200) await new Promise((r) => setTimeout(r, 20));
      }
    };
    await Promise.all(Array.from({ length: 4 }, asker));
    await outage;
    await allSettled;
    const attemptsOf = async (jobId: string) => (await queue.getJob(jobId))?.attemptsMade;
    /** 'running', or how the role ended and the last of what it printed (a crash's stack). */
    const state = (r: RoleProcess) => (r.child.exitCode === null && r.child.signalCode === null ? 'running' : `exited (${r.child.exitCode ?? r.child.signalCode}):\n${r.output().split('\n').slice(-30).join('\n')}`);

    // The restart happened, and reached the requests: some caught in it failed.
    expect(restartedAt).toBeDefined();
    expect(upAgainAt).toBeDefined();
    const failed = outcomes.filter((o) => o.status !== 200);
    // Every role is still running: nothing crashed, nothing was restarted.
    expect({ query: state(q), worker: state(wk) }).toEqual({ query: 'running', worker: 'running' });
    // Every request got an answer; those caught in the outage an HTTP error with a JSON error, never a hang.
    expect(outcomes.filter((o) => o.error !== undefined).map((o) => o.error)).toEqual([]);
    expect(failed.length).toBeGreaterThan(0);
    // An outage is the server's failure (5xx), never a refusal that blames the client, and says nothing of the database.
    const unclean = failed.filter((f) => !(f.status! >= 500 && typeof f.body?.error?.code === 'string' && typeof f.body?.error?.message === 'string') || JSON.stringify(f.body).includes(PASSWORD));
    expect(unclean).toEqual([]);
    // The requests that failed were caught in the outage, not after: the role recovered by itself.
    const lastFailure = Math.max(...failed.map((f) => f.startedAt));
    expect(lastFailure).toBeGreaterThanOrEqual(restartedAt!);
    expect(lastFailure).toBeLessThan(upAgainAt! + 5000);
    expect(answeredSinceUp()).toBeGreaterThanOrEqual(40);
    expect(outcomes.slice(-10).map((o) => o.status)).toEqual(Array(10).fill(200));

    // Every answered query has its record, and the chain verifies.
    const answered = outcomes.filter((o) => o.status === 200).map((o) => o.reference);
    const logged = new Set((await listLog(direct.db, { linkId: queryLink, type: 'query.answered' })).map((r) => JSON.parse(r.detail).reference));
    expect(answered.filter((ref) => !logged.has(ref))).toEqual([]);
    expect((await verifyLog(direct)).ok).toBe(true);

    // Every delivery was built in the end (retried if the restart caught it), once, and is in the log.
    expect(settled.filter((s) => s.error !== undefined)).toEqual([]);
    const rows = await deliveries.list(direct.db, pullLink);
    const byId = (a: number, b: number) => a - b;
    expect(rows.map((d) => d.status)).toEqual(Array(JOBS).fill('built')); // nothing left building or failed
    expect(rows.map((d) => d.id).sort(byId)).toEqual(settled.map((s) => s.deliveryId!).sort(byId));
    // The delivery being built when PostgreSQL went away failed to publish, and a later attempt of its job built it.
    const caughtJob = settled.find((s) => s.deliveryId === caught);
    expect({ caught, job: caughtJob?.id }).toEqual({ caught: expect.any(Number), job: expect.any(String) });
    expect(await attemptsOf(caughtJob!.id)).toBeGreaterThan(1);
    const builtLog = (await listLog(direct.db, { linkId: pullLink, type: 'extract.built' })).map((r) => JSON.parse(r.detail).delivery as number);
    expect(builtLog.sort(byId)).toEqual(rows.map((d) => d.id).sort(byId)); // each once
    // In the outbox exactly the published files of built deliveries, each whole; no temporary file left.
    const expected = rows.flatMap((d) => Object.values(publishedFiles(d.fileName!))).sort();
    expect(readdirSync(outbox).sort()).toEqual(expected);
    for (const d of rows) expect(createHash('sha256').update(readFileSync(path.join(outbox, d.fileName!))).digest('hex')).toBe(d.cipherSha256);
    expect(rows.every((d) => d.rows === 40_000)).toBe(true);

    // Nothing printed the password; both roles stop cleanly when told to.
    for (const r of [q, wk]) {
      expect(r.output()).not.toContain(PASSWORD);
      r.child.kill('SIGTERM');
      expect(await r.exited).toBe(0);
    }
  }, 240_000);
});
