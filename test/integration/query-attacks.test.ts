import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config';
import { certFingerprint, ensureKeys, KEY_FILES, queryIdSecret } from '../../src/crypto';
import type { Clock } from '../../src/domain';
import { createLogger } from '../../src/logger';
import { QueryService, RedisDailyCap, startQueryServer } from '../../src/query';
import { loadCatalogs, Registry } from '../../src/registry';
import { listLog, LogAppender, type RecordSink, TxLogAppender } from '../../src/usagelog';
import { person, writeEntryExitSource } from '../helpers/source';
import { approveArgs, approvedLink, childPids, cleanupKeys, cli, makeAgencyKeys, openTestWorld, REVIEW_ARGS, rewriteRevisions, RULES_TEXT, startRole, testDatabase, tmpDir, writeTemp, type AgencyKeys, type AnyWorld } from '../helpers/world';

let keys: AgencyKeys;
let w: AnyWorld;
let config: Config;
let certDir: string;
let redis: Redis;
let appender: LogAppender | TxLogAppender;
const services: QueryService[] = [];
const servers: { close: () => Promise<void> }[] = [];

/** A client certificate made the way an agency makes one: openssl, self-signed, P-256. */
function makeCert(name: string, days = 30): { cert: string; key: string; file: string } {
  const key = path.join(certDir, `${name}.key`);
  const file = path.join(certDir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', String(days), '-subj', `/CN=${name}`, '-keyout', key, '-out', file], { stdio: 'ignore' });
  return { cert: readFileSync(file, 'utf8'), key: readFileSync(key, 'utf8'), file };
}
const fingerprintOf = (pem: string) => certFingerprint(new X509Certificate(pem));

/** A QueryService over the test world, with this clock, config and sink. */
function queryService(over: { clock?: Clock; config?: Partial<Config['query']>; sink?: Pick<RecordSink, 'append'>; registry?: Registry } = {}): QueryService {
  const s = new QueryService({
    cdb: w.cdb,
    appender: over.sink ?? appender,
    registry: over.registry ?? w.registry,
    catalogs: w.registry.catalogs,
    clock: over.clock ?? w.clock,
    config: { ...config, query: { ...config.query, ...over.config } },
    idSecret: queryIdSecret(config.keysDir),
    cap: new RedisDailyCap(redis, `nia:test-${randomUUID()}`),
  });
  services.push(s);
  return s;
}

async function serve(service: QueryService, query: Partial<Config['query']> = {}): Promise<number> {
  const s = await startQueryServer({ config: { ...config, query: { ...config.query, ...query } }, service, datasets: ['entry_exit', 'residence'], log: createLogger('silent') });
  servers.push(s);
  return s.port;
}

/** One look-up over HTTPS; `agent` keeps the connection for the next one. */
function ask(port: number, body: unknown, client?: { cert: string; key: string }, opts: { agent?: Agent; localAddress?: string } = {}): Promise<{ status: number; body: any; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body);
    const req = request(
      { host: '127.0.0.1', port, path: '/query/v1/entry_exit', method: 'POST', localAddress: opts.localAddress ?? '127.0.0.1', servername: 'localhost', ca: readFileSync(path.join(config.keysDir, KEY_FILES.queryCert)), cert: client?.cert, key: client?.key, agent: opts.agent ?? false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } },
      (res) => {
        let data = '';
        res.on('data', (d) => (data += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(data), reused: req.reusedSocket }));
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
    req.end(text);
  });
}

const refused = async () => (await listLog(w.cdb.db, { type: 'query.refused' })).map((r) => ({ ...r, d: JSON.parse(r.detail) }));
const onlineLink = (client: { cert: string }, over: Parameters<typeof approvedLink>[2] = {}) =>
  approvedLink(w, keys, { account: undefined, sshKeys: [], methods: ['online-query'], clientCerts: [client.cert], fields: [{ name: 'person_id' }, { name: 'port' }], ...over });

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = await openTestWorld();
  redis = new Redis(process.env.NIA_TEST_REDIS_URL!);
  certDir = tmpDir('nia-link-attack-certs-');
  config = loadConfig({ dataDir: w.dataDir }, { NIA_LINK_LOG_LEVEL: 'silent', NIA_LINK_QUERY_PORT: '0', NIA_LINK_QUERY_HOST: '127.0.0.1' });
  await ensureKeys(config.keysDir, new Date());
  writeEntryExitSource(w.dataDir, [person(1), person(2), person(3)], '2026-01-01T00:00:00.000Z');
  appender = w.cdb.dialect === 'sqlite' ? new LogAppender(w.cdb.file) : new TxLogAppender(w.cdb);
});
afterAll(async () => {
  for (const s of servers) await s.close();
  for (const s of services) await s.close();
  await appender?.close();
  redis?.disconnect();
  await w?.close();
  rmSync(certDir, { recursive: true, force: true });
  cleanupKeys(keys);
});

describe('log flooding on the online query', () => {
  it('R6.1 5 000 refused requests from a registered certificate and 5 000 from unknown clients on 5 000 addresses add at most a few hundred usage-log records, whose counts add up to the requests', async () => {
    const client = makeCert('flood');
    const fp = fingerprintOf(client.cert);
    const id = await onlineLink(client, { maxIdsPerDay: 3 });
    const service = queryService();
    const before = (await listLog(w.cdb.db, {})).length;
    const firstSeq = (await listLog(w.cdb.db, {})).reduce((m, r) => Math.max(m, r.seq), 0);
    // The registered certificate: look-ups past the daily cap, without a reference, from an address
    // the link does not list, for a dataset it is not approved for; in bursts, as a client floods.
    const registered = (i: number) => {
      const kind = i % 4;
      return service.handle({
        certFingerprint: fp,
        ip: kind === 2 ? `10.66.${(i >> 8) & 255}.${i & 255}` : '127.0.0.1',
        dataset: kind === 3 ? 'residence' : 'entry_exit',
        body: kind === 1 ? { ids: ['A800000001'] } : { ids: [`A8${String(i).padStart(8, '0')}`], reference: `flood ${i}` },
      });
    };
    // Unknown clients, each from an address of its own: no certificate, or one nobody registered.
    const unknown = (i: number) => service.handle({ certFingerprint: i % 2 ? randomBytes(32).toString('hex').toUpperCase() : null, ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, dataset: 'entry_exit', body: { ids: ['A800000001'], reference: 'x' } });
    const statuses: number[] = [];
    for (let start = 0; start < 5000; start += 250) {
      const burst = Array.from({ length: 250 }, (_, k) => start + k);
      statuses.push(...(await Promise.all([...burst.map(registered), ...burst.map((i) => unknown(i + 1))])).map((r) => r.status));
    }
    expect(statuses).toHaveLength(10_000);
    const answered = statuses.filter((s) => s === 200).length;
    expect(answered).toBe(3); // the daily cap
    await service.close(); // shutdown writes what the interval had not yet written
    const added = (await listLog(w.cdb.db, {})).filter((r) => r.seq > firstSeq);
    expect(added.length).toBe((await listLog(w.cdb.db, {})).length - before);
    expect(added.length).toBeLessThan(200);
    const records = added.filter((r) => r.type === 'query.refused').map((r) => ({ ...r, d: JSON.parse(r.detail) }));
    const count = (rs: typeof records) => rs.reduce((n, r) => n + (r.d.count ?? 1), 0);
    // Every request is accounted for: answered, or refused and counted.
    expect(added.filter((r) => r.type === 'query.answered')).toHaveLength(answered);
    expect(count(records)).toBe(10_000 - answered);
    const ofLink = records.filter((r) => r.linkId === id);
    expect(count(ofLink)).toBe(5000 - answered);
    // Refused before the rate limit, or by it: one record per code, with the count.
    const counted = ofLink.filter((r) => r.d.count !== undefined);
    expect(counted.map((r) => r.d.code).sort()).toEqual(['dataset.not-approved', 'ip.not-allowed', 'rate.limited']);
    expect(counted.find((r) => r.d.code === 'ip.not-allowed')!.d.count).toBe(1250);
    // What passed the rate limit (120 a minute, the clock does not move) has a record each, like an answer.
    expect(ofLink.filter((r) => r.d.count === undefined).length + answered).toBe(config.query.ratePerMinute);
    const strangers = records.filter((r) => r.linkId === null);
    expect(strangers.length).toBeLessThanOrEqual(config.query.refusedLogMaxIps + 1);
    expect(count(strangers)).toBe(5000);
    expect(strangers.find((r) => r.ip === null)!.d).toMatchObject({ codes: { 'client-certificate.missing': expect.any(Number), 'client-certificate.unknown': expect.any(Number) } });
  });

  it('R6.1 a counted refusal is answered at once, even while the usage log commits nothing, and its record is written at the end of the interval', async () => {
    const held: Parameters<RecordSink['append']>[0][] = [];
    // A usage log that never confirms a commit: an answer that waited for one would never come.
    const stuck = { append: (entry: Parameters<RecordSink['append']>[0]) => (held.push(entry), new Promise<void>(() => undefined)) };
    const client = makeCert('interval');
    const stranger = makeCert('interval-stranger');
    await onlineLink(client, { allowIps: ['127.0.0.2/32'] });
    const port = await serve(queryService({ sink: stuck, config: { refusedLogIntervalSec: 1 } }));
    expect((await ask(port, { ids: ['A800000001'], reference: 'x' })).body.error.code).toBe('client-certificate.missing');
    expect((await ask(port, { ids: ['A800000001'], reference: 'x' }, stranger)).body.error.code).toBe('client-certificate.unknown');
    expect((await ask(port, { ids: ['A800000001'], reference: 'x' }, client)).body.error.code).toBe('ip.not-allowed');
    // Nothing was shut down or flushed: the timer writes them.
    for (let i = 0; i < 30 && held.length < 3; i++) await new Promise((r) => setTimeout(r, 100));
    expect(held.map((e) => [e.detail!.code, e.detail!.count]).sort()).toEqual([
      ['client-certificate.missing', 1],
      ['client-certificate.unknown', 1],
      ['ip.not-allowed', 1],
    ]);
  });
});

describe('client certificates', () => {
  it('R2.1 an expired client certificate is refused on every request, on a connection it opened while still valid', async () => {
    const client = makeCert('short-lived', 1);
    await onlineLink(client);
    let offset = 0;
    const port = await serve(queryService({ clock: { now: () => new Date(Date.now() + offset) } }));
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await ask(port, { ids: ['A800000001'], reference: 'valid' }, client, { agent });
      expect(first.status).toBe(200);
      offset = 2 * 86_400_000; // two days on: the certificate ended a day ago
      const later = await ask(port, { ids: ['A800000001'], reference: 'expired' }, client, { agent });
      expect(later.reused).toBe(true); // the same TLS connection, authenticated while the certificate was valid
      expect(later).toMatchObject({ status: 403, body: { error: { code: 'client-certificate.expired' } } });
      offset = -86_400_000; // a day before it began
      expect(await ask(port, { ids: ['A800000001'], reference: 'early' }, client)).toMatchObject({ status: 403, body: { error: { code: 'client-certificate.not-yet-valid' } } });
    } finally {
      agent.destroy();
    }
  });

  it('R2.1 one certificate cannot be registered for two agencies: `link apply` and `link change --kind client-cert` refuse it in one line', async () => {
    const dir = tmpDir();
    const db = await testDatabase();
    try {
      const files = { pub: writeTemp(keys.dir, 'agency_pub.asc', keys.publicArmored), rules: writeTemp(keys.dir, 'rules.txt', RULES_TEXT) };
      const shared = makeCert('shared');
      const own = makeCert('own');
      const apply = (agency: string, cert: string) =>
        cli(dir, ['link', 'apply', '--agency', agency, '--dataset', 'entry_exit', '--fields', 'person_id,port', '--legal-basis', '入出國及移民法', '--purpose', '查核', '--department', '科', '--officer', '王', '--supervisor', '陳', '--from', '2026-01-01', '--to', '2028-12-31', '--disposal', '刪除', '--method', 'online-query', '--allow-ip', '127.0.0.1/32', '--client-cert', cert, '--pgp-key', files.pub, '--rules', files.rules, '--scope', 'all', '--scope-justification', 'test'], db.env);
      const oneLine = (r: { code: number; stderr: string }, pattern: RegExp) => {
        expect([r.code === 0, r.stderr.trim().split('\n').length]).toEqual([false, 1]);
        expect(r.stderr).toMatch(pattern);
        expect(r.stderr).not.toMatch(/\s+at .*\.(js|ts):\d+/);
      };
      expect(cli(dir, ['init'], db.env).code).toBe(0);
      for (const code of ['A001', 'A002']) expect(cli(dir, ['agency', 'add', '--code', code, '--name', code], db.env).code).toBe(0);
      const first = apply('A001', shared.file);
      expect([first.code, first.stderr]).toEqual([0, '']);
      // The same agency may use its system's certificate on another link.
      expect(apply('A001', shared.file).code).toBe(0);
      oneLine(apply('A002', shared.file), /client certificate [0-9A-F]{16}… is registered for agency A001 \(link 1\)/);
      const second = apply('A002', own.file);
      expect([second.code, second.stderr]).toEqual([0, '']);
      const otherId = second.stdout.trim().split('\n').pop()!;
      expect(cli(dir, REVIEW_ARGS(otherId), db.env).code).toBe(0);
      expect(cli(dir, ['link', 'approve', otherId, ...approveArgs(dir)], db.env).code).toBe(0);
      oneLine(cli(dir, ['link', 'change', otherId, '--kind', 'client-cert', '--client-cert', shared.file], db.env), /registered for agency A001/);
      oneLine(cli(dir, ['link', 'change', otherId, '--kind', 'method', '--value', 'online-query', '--client-cert', shared.file], db.env), /registered for agency A001/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await db.drop();
    }
  });

  it('R2.1 a certificate registered for two agencies before that rule gets nothing, rather than the lowest link', async () => {
    const client = makeCert('legacy-shared');
    await onlineLink(client);
    await w.registry.addAgency({ code: 'A077', name: '另一機關' }, 'test');
    const other = await onlineLink(makeCert('legacy-other'), { agency: 'A077' });
    // Written as an older version allowed: the other agency's revision lists the same certificate.
    await rewriteRevisions(w.cdb, other, { clientCerts: [fingerprintOf(client.cert)] });
    const port = await serve(queryService({ registry: new Registry(w.cdb, loadCatalogs(), w.clock) }));
    expect(await ask(port, { ids: ['A800000001'], reference: 'x' }, client)).toMatchObject({ status: 403, body: { error: { code: 'client-certificate.ambiguous' } } });
  });
});

describe('connection limits of the query port', () => {
  /** A TCP connection that sends nothing: true if the server closed it at once. */
  const closedAtOnce = (port: number, localAddress: string): Promise<{ closed: boolean; socket: Socket }> =>
    new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, localAddress });
      socket.on('error', () => undefined);
      let closed = false;
      socket.once('close', () => (closed = true));
      socket.once('connect', () => setTimeout(() => resolve({ closed, socket }), 300));
    });

  it('connections beyond query.maxConnectionsPerIp from one address, and beyond query.maxConnections in all, are closed at accept, before any TLS; they are counted in the log', async () => {
    const client = makeCert('capped');
    await onlineLink(client);
    const service = queryService();
    const port = await serve(service, { maxConnections: 5, maxConnectionsPerIp: 3 });
    const open: Socket[] = [];
    try {
      const from = async (address: string, n: number) => {
        const r: boolean[] = [];
        for (let i = 0; i < n; i++) {
          const c = await closedAtOnce(port, address);
          if (!c.closed) open.push(c.socket);
          r.push(c.closed);
        }
        return r;
      };
      expect(await from('127.0.0.1', 4)).toEqual([false, false, false, true]); // three from one address
      expect(await from('127.0.0.2', 3)).toEqual([false, false, true]); // five in all
      expect(await from('127.0.0.3', 1)).toEqual([true]);
      // While they hold every slot, a registered client is not even shaken hands with.
      await expect(ask(port, { ids: ['A800000001'], reference: 'x' }, client)).rejects.toThrow();
      // One closes: a slot is free again.
      open.shift()!.destroy();
      await new Promise((r) => setTimeout(r, 200));
      expect((await ask(port, { ids: ['A800000001'], reference: 'capped' }, client)).status).toBe(200);
    } finally {
      for (const s of open) s.destroy();
    }
    await service.flushRefusals();
    const codes = (await refused()).filter((r) => r.d.code?.startsWith('connections.'));
    expect(codes.map((r) => [r.ip, r.d.code, r.d.count]).sort()).toEqual([
      ['127.0.0.1', 'connections.address', 1],
      ['127.0.0.1', 'connections.capacity', 1],
      ['127.0.0.2', 'connections.capacity', 1],
      ['127.0.0.3', 'connections.capacity', 1],
    ]);
  });
});

describe('secrets of the query worker processes', () => {
  it('a query worker process holds neither the SMTP password nor the metrics token in its environment', async () => {
    const smtpPassword = `smtp-${randomBytes(12).toString('hex')}`;
    const metricsToken = `metrics-${randomBytes(20).toString('hex')}`;
    const role = await startRole(w.dataDir, 'query', { REDIS_URL: process.env.NIA_TEST_REDIS_URL, NIA_LINK_QUERY_PROCESSES: '2', NIA_LINK_QUERY_PORT: '0', NIA_LINK_QUERY_HOST: '127.0.0.1', NIA_LINK_SMTP_HOST: 'smtp.example.gov.tw', NIA_LINK_SMTP_PASSWORD: smtpPassword, NIA_LINK_METRICS_TOKEN: metricsToken });
    try {
      expect([/ in 2 processes/.test(role.output()), role.output()]).toEqual([true, role.output()]);
      // The primary has them (it was given them), so the check below would see them.
      expect(readFileSync(`/proc/${role.child.pid}/environ`, 'utf8')).toContain(smtpPassword);
      const workers = childPids(role.child.pid!);
      expect(workers).toHaveLength(2);
      for (const pid of workers) {
        const env = readFileSync(`/proc/${pid}/environ`, 'utf8');
        expect(env).toContain('NIA_LINK_QUERY_WORKER=');
        expect(env).not.toContain(smtpPassword);
        expect(env).not.toContain(metricsToken);
      }
      role.child.kill('SIGTERM');
      expect(await role.exited).toBe(0);
    } finally {
      role.kill();
    }
  });
});
