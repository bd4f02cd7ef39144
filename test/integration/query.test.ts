import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config';
import { certFingerprint, ensureKeys, KEY_FILES, keyedIdHash, queryIdSecret } from '../../src/crypto';
import { X509Certificate } from 'node:crypto';
import { openControl } from '../../src/db/open';
import { batch, queries } from '../../src/db/repositories';
import { createLogger } from '../../src/logger';
import { QueryService, RedisDailyCap, startQueryServer } from '../../src/query';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { buildServices, type Services } from '../../src/services';
import { listLog, LogAppender, type RecordSink, TxLogAppender, verifyLog } from '../../src/usagelog';
import { CONFIDENTIALITY_NOTICE } from '../../src/extract';
import { person, writeEntryExitSource } from '../helpers/source';
import { askQuery } from '../helpers/query';
import { alive, approvedLink, childPids, cleanupKeys, makeAgencyKeys, openTestWorld, startRole, tmpDir, type AgencyKeys, type RoleProcess, type AnyWorld } from '../helpers/world';

let keys: AgencyKeys;
let w: AnyWorld;
let config: Config;
let services: Services;
let service: QueryService;
let server: { port: number; close: () => Promise<void> };
let certDir: string;

/** A client certificate made the way an agency makes one: openssl, self-signed, P-256. */
function makeCert(name: string): { cert: string; key: string } {
  const key = path.join(certDir, `${name}.key`);
  const cert = path.join(certDir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj', `/CN=${name}`, '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

function ask(dataset: string, body: unknown, client?: { cert: string; key: string }, localAddress = '127.0.0.1', port = server.port): Promise<{ status: number; body: any }> {
  return askQuery({ keysDir: config.keysDir, port, dataset, body, client, localAddress });
}

let good: { cert: string; key: string };
let appender: RecordSink;
let redis: Redis;
let cap: RedisDailyCap;
let linkId: number;
const refusedCodes = async () => (await listLog(w.cdb.db, { type: 'query.refused' })).map((r) => JSON.parse(r.detail).code);

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = await openTestWorld();
  redis = new Redis(process.env.NIA_TEST_REDIS_URL!);
  cap = new RedisDailyCap(redis, `nia:test-${randomUUID()}`);
  certDir = tmpDir('nia-link-certs-');
  config = loadConfig({ dataDir: w.dataDir }, { NIA_LINK_LOG_LEVEL: 'silent', NIA_LINK_QUERY_PORT: '0', NIA_LINK_QUERY_HOST: '127.0.0.1', NIA_LINK_QUERY_MAX_IDS: '5' });
  await ensureKeys(config.keysDir, new Date());
  writeEntryExitSource(w.dataDir, [person(1), person(1, { port: 'KHH', crossed_at: '2026-04-01T10:00:00+08:00' }), person(2), person(3)], '2026-01-01T00:00:00.000Z');
  good = makeCert('agency-good');
  linkId = await approvedLink(w, keys, { account: undefined, sshKeys: [], methods: ['online-query'], clientCerts: [good.cert], fields: [{ name: 'person_id' }, { name: 'name_zh', transform: 'mask' }, { name: 'port' }, { name: 'birth_date', transform: 'year' }] });
  services = buildServices(config, w.cdb, w.clock);
  appender = w.cdb.dialect === 'sqlite' ? new LogAppender(w.cdb.file) : new TxLogAppender(w.cdb);
  service = new QueryService({ cdb: w.cdb, appender, registry: w.registry, catalogs: w.registry.catalogs, clock: w.clock, config, idSecret: queryIdSecret(config.keysDir), cap });
  server = await startQueryServer({ config, service, datasets: ['entry_exit', 'residence'], log: createLogger('silent') });
});
afterAll(async () => {
  await server?.close();
  redis?.disconnect();
  await service?.close();
  await appender?.close();
  await w.close();
  cleanupKeys(keys);
});

describe('online query over mutual TLS (R2.1)', () => {
  it('R3.2 R-F7 a registered client certificate gets exactly the approved fields, transforms applied, with the confidentiality notice; unknown ids return nothing', async () => {
    const r = await ask('entry_exit', { ids: ['A800000001', 'A899999999'], reference: '衛授疾字第1150001號' }, good);
    expect(r.status).toBe(200);
    expect(r.body.records).toEqual([
      { person_id: 'A800000001', name_zh: '陳*雄', port: 'TPE', birth_date: '1990' },
      { person_id: 'A800000001', name_zh: '陳*雄', port: 'KHH', birth_date: '1990' },
    ]);
    // R-F7: the answer carries form item 7, as every manifest does.
    expect(r.body.confidentiality).toEqual(CONFIDENTIALITY_NOTICE);
    const [rec] = await listLog(w.cdb.db, { linkId, type: 'query.answered' });
    const detail = JSON.parse(rec.detail);
    expect(detail).toMatchObject({ ids: 2, returned: 2, reference: '衛授疾字第1150001號' });
    expect(rec.detail).not.toContain('A800000001'); // ids only as keyed hashes (R6.1)
    expect(detail.idHashes).toContain(keyedIdHash(queryIdSecret(config.keysDir), 'A800000001'));
  });

  it('R6.1 who-queried finds the look-up by id, with the link and the reference', async () => {
    const rows = await queries.whoQueried(w.cdb.db, keyedIdHash(queryIdSecret(config.keysDir), 'A800000001'));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ linkId, agency: 'A001', type: 'query.answered' });
    expect(await queries.whoQueried(w.cdb.db, keyedIdHash(queryIdSecret(config.keysDir), 'A800000003'))).toEqual([]);
  });

  it('no certificate → 401, an unregistered certificate → 403; both logged (counted, written at the end of the interval)', async () => {
    expect((await ask('entry_exit', { ids: ['A800000001'], reference: 'x' })).status).toBe(401);
    const r = await ask('entry_exit', { ids: ['A800000001'], reference: 'x' }, makeCert('stranger'));
    expect(r).toMatchObject({ status: 403, body: { error: { code: 'client-certificate.unknown' } } });
    expect(JSON.stringify(r.body)).not.toMatch(/link \d|A001/); // nothing about other links leaks
    await service.flushRefusals();
    expect(await refusedCodes()).toEqual(expect.arrayContaining(['client-certificate.missing', 'client-certificate.unknown']));
  });

  it('R8.1 a request from an address outside the allow-list is refused', async () => {
    const r = await ask('entry_exit', { ids: ['A800000001'], reference: 'x' }, good, '127.0.0.2');
    expect(r).toMatchObject({ status: 403, body: { error: { code: 'ip.not-allowed' } } });
  });

  it('R3.2 a dataset the link is not approved for, a missing reference, too many ids: refused with the right status', async () => {
    expect(await ask('residence', { ids: ['A800000001'], reference: 'x' }, good)).toMatchObject({ status: 403, body: { error: { code: 'dataset.not-approved' } } });
    expect(await ask('entry_exit', { ids: ['A800000001'] }, good)).toMatchObject({ status: 400, body: { error: { code: 'reference.missing' } } });
    expect(await ask('entry_exit', { ids: ['1', '2', '3', '4', '5', '6'], reference: 'x' }, good)).toMatchObject({ status: 413, body: { error: { code: 'ids.too-many' } } });
    await service.flushRefusals();
    expect(await refusedCodes()).toEqual(expect.arrayContaining(['dataset.not-approved', 'reference.missing', 'ids.too-many']));
  });

  it('a link over its rate is refused with 429 until its bucket refills, and each refusal is counted in the log', async () => {
    let elapsed = 0;
    const clock = { now: () => new Date(w.clock.now().getTime() + elapsed) };
    const limited = new QueryService({ cdb: w.cdb, appender, registry: w.registry, catalogs: w.registry.catalogs, clock, config: { ...config, query: { ...config.query, ratePerMinute: 2 } }, idSecret: queryIdSecret(config.keysDir), cap });
    const fingerprint = certFingerprint(new X509Certificate(good.cert));
    const once = () => limited.handle({ certFingerprint: fingerprint, ip: '127.0.0.1', dataset: 'entry_exit', body: { ids: ['A800000002'], reference: 'rate' } });
    const limitedCount = async () => (await listLog(w.cdb.db, { type: 'query.refused' })).map((r) => JSON.parse(r.detail)).filter((d) => d.code === 'rate.limited').reduce((n, d) => n + d.count, 0);
    const before = await limitedCount();
    expect([(await once()).status, (await once()).status, (await once()).status]).toEqual([200, 200, 429]);
    await limited.flushRefusals();
    expect(await limitedCount()).toBe(before + 1);
    elapsed = 30_000; // half a minute refills one of the two
    expect([(await once()).status, (await once()).status]).toEqual([200, 429]);
    await limited.close();
    expect(await limitedCount()).toBe(before + 2);
  });

  it('R3.4 a link limited to its subject list answers only for the persons on it; without a list it refuses and says why', async () => {
    const listed = makeCert('agency-listed');
    const id = await approvedLink(w, keys, { account: undefined, sshKeys: [], methods: ['online-query'], clientCerts: [listed.cert], fields: [{ name: 'person_id' }, { name: 'port' }], scope: { text: 'subjects', maxSubjects: 100 } });
    const fingerprint = certFingerprint(new X509Certificate(listed.cert));
    const ask = async (ids: string[]) => (await service.handle({ certFingerprint: fingerprint, ip: '127.0.0.1', dataset: 'entry_exit', body: { ids, reference: 'subjects' } })) as { status: number; body: { records: { person_id: string }[] } };
    const none = await ask(['A800000001']);
    expect(none).toMatchObject({ status: 409, body: { error: { code: 'subjects.missing' } } });
    await w.cdb.write((tx) => batch.replaceSubjects(tx, { linkId: id, uploadId: 1, keyField: 'person_id', count: 1, sha256: 'a'.repeat(64), inForceAt: new Date().toISOString() }, ['A800000001']));
    // Person 1 is on the list (two crossings), person 2 is in the source but not on the list: answered like an unknown id.
    const r = await ask(['A800000001', 'A800000002']);
    expect(r.status).toBe(200);
    expect(r.body.records.map((x: { person_id: string }) => x.person_id)).toEqual(['A800000001', 'A800000001']);
    const answered = (await listLog(w.cdb.db, { type: 'query.answered' })).filter((e) => e.linkId === id).map((e) => JSON.parse(e.detail));
    expect(answered[answered.length - 1]).toMatchObject({ ids: 2, found: 1, returned: 2 });
    // A list replaced: the next look-up follows the list in force.
    await w.cdb.write((tx) => batch.replaceSubjects(tx, { linkId: id, uploadId: 2, keyField: 'person_id', count: 1, sha256: 'b'.repeat(64), inForceAt: new Date().toISOString() }, ['A800000002']));
    expect((await ask(['A800000001', 'A800000002'])).body.records.map((x: { person_id: string }) => x.person_id)).toEqual(['A800000002']);
  });

  it('a link without online-query refuses its registered certificate', async () => {
    const other = makeCert('pull-only');
    await approvedLink(w, keys, { account: 'qpull', clientCerts: [other.cert] });
    expect(await ask('entry_exit', { ids: ['A800000001'], reference: 'x' }, other)).toMatchObject({ status: 403, body: { error: { code: 'channel.not-approved' } } });
  });

  it('R10.1 a suspended link is refused at once, whichever process suspends it; resumed, it answers again', async () => {
    const ok = () => ask('entry_exit', { ids: ['A800000001'], reference: 'x' }, good);
    expect((await ok()).status).toBe(200); // what the certificate may query for is now remembered
    await services.compliance.suspend(linkId, 'audit finding overdue', 'nia');
    expect(await ok()).toMatchObject({ status: 403, body: { error: { code: 'link.not-usable' } } });
    await service.flushRefusals();
    expect((await listLog(w.cdb.db, { linkId, type: 'query.refused' })).length).toBeGreaterThan(0);
    // Resumed through another connection to the control database, as the CLI in another process does.
    const other = await openControl({ dataDir: w.dataDir, database: w.database });
    try {
      const elsewhere = buildServices(config, other, w.clock);
      // R10.4: a suspension without a finding resumes only once its improvements are recorded as completed.
      await elsewhere.compliance.remediateSuspension(linkId, { letterNo: '府授字第1150000001號' }, 'nia');
      await elsewhere.compliance.resumeRequest(linkId, 'agency');
      await elsewhere.compliance.resumeApprove(linkId, 'nia');
    } finally {
      await other.close();
    }
    expect((await ok()).status).toBe(200);
    // And suspended again from there: refused on the next request.
    const again = await openControl({ dataDir: w.dataDir, database: w.database });
    try {
      await buildServices(config, again, w.clock).compliance.suspend(linkId, 'second finding', 'nia');
    } finally {
      await again.close();
    }
    expect(await ok()).toMatchObject({ status: 403, body: { error: { code: 'link.not-usable' } } });
  });

  it('R6.1 a look-up whose usage-log record cannot be committed is not answered: 500, no records', async () => {
    const unlogged = new QueryService({ cdb: w.cdb, appender: { append: async () => Promise.reject(new Error('disk full')) }, registry: w.registry, catalogs: w.registry.catalogs, clock: w.clock, config, idSecret: queryIdSecret(config.keysDir), cap });
    const s = await startQueryServer({ config, service: unlogged, datasets: ['entry_exit'], log: createLogger('silent') });
    // A link of its own: the one above is suspended by now, and refused before anything is looked up.
    const { client } = await onlineQueryLink('agency-unlogged');
    try {
      const r = await ask('entry_exit', { ids: ['A800000001'], reference: 'x' }, client, '127.0.0.1', s.port);
      expect(r).toEqual({ status: 500, body: { error: { code: 'internal', message: 'the request could not be answered' } } });
    } finally {
      await s.close();
      await unlogged.close();
    }
  });

  it('the API is described by an OpenAPI document', async () => {
    const r = await new Promise<{ status: number; body: any }>((resolve, reject) => {
      request({ host: '127.0.0.1', port: server.port, path: '/query/v1/openapi.json', servername: 'localhost', ca: readFileSync(path.join(config.keysDir, KEY_FILES.queryCert)), agent: false }, (res) => {
        let d = '';
        res.on('data', (c) => (d += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(d) }));
      })
        .on('error', reject)
        .end();
    });
    expect(r.status).toBe(200);
    expect(r.body.paths['/query/v1/{dataset}'].post.requestBody.content['application/json'].schema.required).toEqual(['ids', 'reference']);
  });
});

/** The query role in a process of its own, on a free loopback port, with `processes` processes. */
const queryRole = (processes: string, opts: { detached?: boolean; logLevel?: string } = {}) =>
  startRole(w.dataDir, 'query', { REDIS_URL: process.env.NIA_TEST_REDIS_URL, NIA_LINK_QUERY_PROCESSES: processes, NIA_LINK_QUERY_PORT: '0', NIA_LINK_QUERY_HOST: '127.0.0.1', ...(opts.logLevel ? { NIA_LINK_LOG_LEVEL: opts.logLevel } : {}) }, opts);
const portOf = (r: RoleProcess) => Number(/query: listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(r.output())?.[1]);

/**
 * Eight clients ask one after another, each look-up with a reference of its own, until `enough` says
 * so; after each answer `then` may act (kill something). Returns the references answered with 200.
 */
async function askUnderLoad(port: number, client: { cert: string; key: string }, prefix: string, enough: (answered: number, failed: boolean) => boolean, then: (answered: number) => void): Promise<string[]> {
  const answered: string[] = [];
  let n = 0;
  const deadline = Date.now() + 60_000;
  const one = async () => {
    for (;;) {
      const reference = `${prefix}-${n++}`;
      const r = await ask('entry_exit', { ids: ['A800000001'], reference }, client, '127.0.0.1', port).catch(() => null);
      if (r?.status === 200) answered.push(reference);
      then(answered.length);
      if (enough(answered.length, !r) || Date.now() > deadline) return;
    }
  };
  await Promise.all(Array.from({ length: 8 }, one));
  return answered;
}

/** Every look-up a client got an answer to has its record, and the chain verifies. */
async function expectAllLogged(linkId: number, answered: string[]): Promise<void> {
  const logged = new Set((await listLog(w.cdb.db, { linkId, type: 'query.answered' })).map((r) => JSON.parse(r.detail).reference));
  expect(answered.filter((ref) => !logged.has(ref))).toEqual([]); // nothing was answered unlogged
  expect((await verifyLog(w.cdb)).ok).toBe(true);
}

const onlineQueryLink = async (name: string, fields = [{ name: 'person_id' }]) => {
  const client = makeCert(name);
  const id = await approvedLink(w, keys, { account: undefined, sshKeys: [], methods: ['online-query'], clientCerts: [client.cert], fields });
  return { client, id };
};

describe('the query role killed while it answers', () => {
  it.each(['1', '2'])('R6.1 with query.processes %s, SIGKILL under load: every answer a client received has its record, and the chain verifies', async (processes) => {
    const { client, id } = await onlineQueryLink(`agency-crash-${processes}`);
    const role = await queryRole(processes);
    try {
      const port = portOf(role);
      expect([port > 0, role.output()]).toEqual([true, role.output()]);
      // The role is killed after 60 answers; the clients go on until it is gone.
      let killed = false;
      const answered = await askUnderLoad(port, client, `crash-${processes}`, (_, failed) => killed && failed, (count) => {
        if (count >= 60 && !killed) {
          killed = true;
          role.child.kill('SIGKILL');
        }
      });
      await role.exited;
      for (let i = 0; i < 50 && childPids(role.child.pid!).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(answered.length).toBeGreaterThanOrEqual(60);
      await expectAllLogged(id, answered);
    } finally {
      role.kill();
    }
  }, 90_000);
});

describe('a query worker killed while it answers', () => {
  it('R6.1 with query.processes 2, SIGKILL of a worker under load: the role goes on answering, and every answer has its record', async () => {
    const { client, id } = await onlineQueryLink('agency-worker-crash');
    const role = await queryRole('2');
    try {
      const port = portOf(role);
      expect([port > 0, role.output()]).toEqual([true, role.output()]);
      // A worker is killed after 40 and after 100 answers.
      let kills = 0;
      const answered = await askUnderLoad(port, client, 'worker-crash', (count) => count >= 200, (count) => {
        if ((count >= 40 && kills === 0) || (count >= 100 && kills === 1)) {
          kills++;
          const worker = childPids(role.child.pid!)[0];
          if (worker) process.kill(worker, 'SIGKILL');
        }
      });
      expect([role.child.exitCode, role.output()]).toEqual([null, role.output()]); // the primary outlived both workers it lost
      expect(answered.length).toBeGreaterThanOrEqual(200);
      await expectAllLogged(id, answered);
      role.child.kill('SIGTERM');
      expect(await role.exited).toBe(0);
    } finally {
      role.kill();
    }
  }, 90_000);
});

describe('the query role in several processes, stopped as a terminal stops it', () => {
  it('a TERM reaching the workers before the primary (Ctrl-C, a process-group signal) stops every process without replacing any or reporting a death', async () => {
    const role = await queryRole('2', { detached: true, logLevel: 'info' });
    try {
      const workers = childPids(role.child.pid!);
      expect([workers.length, role.output()]).toEqual([2, role.output()]);
      // The workers get the signal first, as they may from a terminal; the primary a moment later.
      for (const p of workers) process.kill(p, 'SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
      process.kill(-role.child.pid!, 'SIGTERM');
      expect(await role.exited).toBe(0);
      for (let i = 0; i < 50 && workers.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
      expect(workers.filter(alive)).toEqual([]);
      expect(role.output()).not.toMatch(/worker died|starting another|channel error/);
    } finally {
      role.kill();
    }
  }, 60_000);
});

describe('the query role in several processes on one port', () => {
  it('R6.1 `nia-link start --role query` with query.processes 2: both answer and log every look-up, a dead one is replaced, SIGTERM stops them all', async () => {
    const { client, id } = await onlineQueryLink('agency-cluster', [{ name: 'person_id' }, { name: 'port' }]);
    const role = await queryRole('2');
    try {
      const log = role.output();
      expect([/ in 2 processes/.test(log), log]).toEqual([true, log]);
      const port = portOf(role);
      const workers = childPids(role.child.pid!);
      expect([workers.length, log]).toEqual([2, log]);
      const answered = async () => (await listLog(w.cdb.db, { linkId: id, type: 'query.answered' })).length;
      // Each request on a connection of its own: the primary hands connections to the workers in turn.
      const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => ask('entry_exit', { ids: [`A80000000${(i % 3) + 1}`], reference: `cluster ${i}` }, client, '127.0.0.1', port)));
      expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
      expect(replies[0].body.records[0]).toEqual({ person_id: 'A800000001', port: 'TPE' });
      expect(await answered()).toBe(6); // every answer was committed to the usage log before it was sent
      process.kill(workers[0], 'SIGKILL');
      const replaced = () => {
        const now = childPids(role.child.pid!);
        return now.length === 2 && !now.includes(workers[0]);
      };
      for (let i = 0; i < 300 && !replaced(); i++) await new Promise((r) => setTimeout(r, 100));
      expect([replaced(), role.output()]).toEqual([true, role.output()]);
      const after = await Promise.all([1, 2, 3].map((i) => ask('entry_exit', { ids: ['A800000002'], reference: `after ${i}` }, client, '127.0.0.1', port)));
      expect(after.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(await answered()).toBe(9);
      const now = childPids(role.child.pid!);
      role.child.kill('SIGTERM');
      expect(await role.exited).toBe(0);
      for (const pid of now) expect(alive(pid)).toBe(false);
    } finally {
      role.kill();
    }
  }, 90_000);
});
