import Database from 'better-sqlite3';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config';
import { certFingerprint, ensureKeys, queryIdSecret, signingPublicKeyArmored } from '../../src/crypto';
import { connectionOf, controlDbFile, openControlDb } from '../../src/db';
import { addDays, taipeiDate } from '../../src/domain';
import { ExtractService, SqliteSource, sourceDbPath, type ExtractSource } from '../../src/extract';
import { csvSelectSql } from '../../src/extract/csv-sql';
import { compileScope } from '../../src/extract/scope-sql';
import { QueryService, RedisDailyCap } from '../../src/query';
import { loadCatalogs, Registry } from '../../src/registry';
import { seedSource } from '../../src/seed/sqlite';
import { listLog, LogAppender } from '../../src/usagelog';
import { DirectoryOutbox } from '../../src/outbox';
import { askQuery } from '../helpers/query';
import { approvableLink, approvedLink, application, cleanupKeys, makeLegacyScope, makeAgencyKeys, openWorld, startRole, tmpDir, TestClock, type AgencyKeys, type TestWorld } from '../helpers/world';

const catalog = loadCatalogs().get('entry_exit')!;
let keys: AgencyKeys;
let w: TestWorld;
let config: Config;
let source: string;
let certDir: string;
let redis: Redis;
const appenders: LogAppender[] = [];

/** A window well inside the synthetic history, whatever year the tests run in. */
const D1 = addDays(taipeiDate(new Date()), -600);
const D2 = addDays(taipeiDate(new Date()), -200);
const FIELDS = [{ name: 'person_id' }, { name: 'nationality' }, { name: 'direction' }, { name: 'crossed_at' }, { name: 'visa_type' }];
const COLS = FIELDS.map((f) => f.name).join(',');

/** Rows of the source as `sqlite3 -csv` prints them for a WHERE clause: the independent answer. */
function sqlite3Rows(where: string, cols = COLS): string[] {
  const out = execFileSync('sqlite3', ['-csv', source, `SELECT ${cols} FROM entry_exit WHERE ${where}`], { maxBuffer: 1 << 28 }).toString();
  return out.split(/\r?\n/).filter(Boolean).sort();
}

/** The rows of a delivered file, decrypted and verified by GnuPG as the agency would. */
function delivered(file: string): { header: string; rows: string[] } {
  const r = spawnSync('gpg', ['--batch', '--decrypt', file], { env: { ...process.env, GNUPGHOME: keys.gnupgHome }, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`gpg --decrypt failed (${r.status}): ${r.stderr}`);
  const lines = r.stdout.toString('utf8').split('\r\n').filter(Boolean);
  return { header: lines[0], rows: lines.slice(1).sort() };
}

/** Hides the CSV capability of the source, so the extract takes the generic row-by-row path. */
const generic = (s: SqliteSource): ExtractSource => ({ watermark: (d) => s.watermark(d), batches: (...a) => s.batches(...a), close: () => s.close() });

function extracts(clock = w.clock, rowwise = false): ExtractService {
  const registry = new Registry(w.cdb, loadCatalogs(), clock);
  return new ExtractService({ cdb: w.cdb, registry, clock, outbox: new DirectoryOutbox(path.join(w.dataDir, 'outbox')), keysDir: config.keysDir, retentionDays: 30, openSource: () => (rowwise ? generic(new SqliteSource(source)) : new SqliteSource(source)) });
}
let jobs = 0;
const deliver = (linkId: number, opts: { full?: boolean; clock?: TestClock; rowwise?: boolean } = {}) =>
  extracts(opts.clock ?? w.clock, opts.rowwise).run({ key: `job-${++jobs}`, linkId, full: opts.full ?? true, trigger: 'manual' }, { finalAttempt: true });

let accounts = 0;
/** An approved link with this scope (each with an SFTP account of its own). */
const scoped = (scope: string, over: Parameters<typeof application>[1] = {}) => approvedLink(w, keys, { fields: FIELDS, scope: { text: scope }, account: `scoped${++accounts}`, ...over });

function makeCert(name: string): { cert: string; key: string } {
  const key = path.join(certDir, `${name}.key`);
  const cert = path.join(certDir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj', `/CN=${name}`, '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

function queryService(): QueryService {
  const appender = new LogAppender(w.cdb.file);
  appenders.push(appender);
  return new QueryService({ cdb: w.cdb, appender, registry: w.registry, catalogs: w.registry.catalogs, clock: w.clock, config, idSecret: queryIdSecret(config.keysDir), cap: new RedisDailyCap(redis, `nia:test-${randomUUID()}`) });
}

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = openWorld();
  await w.registry.addAgency({ code: 'A001', name: '勞動部勞動力發展署' }, 'test');
  certDir = tmpDir('nia-link-scope-certs-');
  redis = new Redis(process.env.NIA_TEST_REDIS_URL!);
  config = loadConfig({ dataDir: w.dataDir }, { NIA_LINK_LOG_LEVEL: 'silent' });
  await ensureKeys(config.keysDir, new Date());
  execFileSync('gpg', ['--batch', '--import'], { input: signingPublicKeyArmored(config.keysDir), env: { ...process.env, GNUPGHOME: keys.gnupgHome }, stdio: ['pipe', 'ignore', 'ignore'] });
  source = sourceDbPath(w.dataDir);
  // Synthetic records shaped like the real ones: many nationalities, both directions, years of crossings.
  seedSource({ file: source, dataset: 'entry_exit', rows: 30_000, seed: 7, catalog, now: new Date() });
});
afterAll(async () => {
  for (const a of appenders) await a.close();
  redis?.disconnect();
  w?.close();
  cleanupKeys(keys);
});

describe('R3.4 a link receives only the records of its scope', () => {
  it('R3.4 an application with a bad scope is refused and writes nothing: no link, no log record', async () => {
    const links = async () => (await w.registry.list()).length;
    const records = async () => (await listLog(w.cdb.db, {})).length;
    const before = [await links(), await records()];
    for (const scope of [{}, { text: 'no_such_field in X' }, { text: 'nationality in ZZZ' }, { text: 'crossed_at from 2025-02-01; crossed_at to 2025-01-01' }, { text: 'all' }, { text: 'nationality in VNM,,IDN' }]) {
      await expect(w.registry.apply(application(keys, { scope }), 'test')).rejects.toThrow(/scope/);
    }
    expect([await links(), await records()]).toEqual(before);
  });

  it.each([
    ['the C CSV writer', false],
    ['the generic row path', true],
  ])('R3.4 R3.2 a scoped full extract (%s), decrypted by gpg, holds exactly the source rows inside the scope and only the approved fields', async (_, rowwise) => {
    const id = await scoped(`nationality in VNM,IDN,PHL; direction in entry; crossed_at from ${D1}; crossed_at to ${D2}`);
    const d = await deliver(id, { rowwise });
    const got = delivered(d.path!);
    const want = sqlite3Rows(`nationality IN ('VNM','IDN','PHL') AND direction = 'entry' AND substr(crossed_at, 1, 10) BETWEEN '${D1}' AND '${D2}'`);
    expect(want.length).toBeGreaterThan(300); // the scope selects a real share of the 30 000 records, not all
    expect(want.length).toBeLessThan(15_000);
    expect(got.header).toBe(COLS);
    expect(got.rows).toEqual(want);
    expect(d.rows).toBe(want.length);
    // The manifest states the revision's scope, in its own terms and in words.
    const manifest = JSON.parse(readFileSync(d.manifest!, 'utf8'));
    expect(manifest.scope.conditions).toHaveLength(4);
    expect(manifest.scope.text.zh).toBe(`國籍：越南、印尼、菲律賓；出入境別：入境；出入境時間：${D1}至${D2}`);
  });

  it('R3.4 not-in excludes the listed codes and records whose value is unknown', async () => {
    const id = await scoped('visa_type not-in visa-exempt,visitor; direction in exit');
    const d = await deliver(id);
    expect(delivered(d.path!).rows).toEqual(sqlite3Rows("visa_type NOT IN ('visa-exempt','visitor') AND direction = 'exit'"));
    expect(sqlite3Rows("visa_type IS NULL AND direction = 'exit'").length).toBeGreaterThan(0); // such records exist, and stayed out
  });

  it('R3.4 within-days moves with the day of the delivery (injected clock)', async () => {
    const clock = new TestClock(new Date(w.clock.now()));
    const id = await scoped('crossed_at within-days 30; nationality not-in TWN');
    // Now and eleven days on: the agency's key is valid from its making on, and the source was seeded as of today.
    const on = async (days: number) => {
      clock.set(new Date(Date.now() + days * 86_400_000).toISOString());
      const day = taipeiDate(clock.now());
      return { day, rows: delivered((await deliver(id, { clock })).path!).rows };
    };
    const want = (day: string) => sqlite3Rows(`substr(crossed_at, 1, 10) BETWEEN '${addDays(day, -29)}' AND '${day}' AND nationality <> 'TWN'`);
    const { day: d1, rows: first } = await on(0);
    const { day: d2, rows: later } = await on(11);
    expect(d2).toBe(addDays(d1, 11));
    expect(first).toEqual(want(d1));
    expect(later).toEqual(want(d2));
    expect(first.length).toBeGreaterThan(50);
    expect(later).not.toEqual(first);
  });

  it('R3.4 an incremental delivery carries only changed records inside the scope', async () => {
    const id = await scoped('nationality in JPN; direction in entry');
    await deliver(id);
    const db = new Database(source);
    const changedAt = new Date(Date.now() + 60_000).toISOString();
    try {
      // Touch some records: in scope and out of it.
      db.prepare("UPDATE entry_exit SET updated_at = ? WHERE record_id % 50 = 0 AND record_id <= 20000").run(changedAt);
    } finally {
      db.close();
    }
    const d = await deliver(id, { full: false });
    expect(d.mode).toBe('incremental');
    const want = sqlite3Rows(`nationality = 'JPN' AND direction = 'entry' AND updated_at = '${changedAt}'`);
    expect(want.length).toBeGreaterThan(0);
    expect(delivered(d.path!).rows).toEqual(want);
  });

  it('R3.4 R5.1 `link change --kind scope` makes a new revision; the next delivery follows it, and starts again from a full extract', async () => {
    const id = await scoped('nationality in THA; direction in entry');
    await deliver(id);
    const cr = await w.registry.fileChange(id, 'scope', { value: 'nationality in THA,MYS; direction in exit' }, 'test');
    expect((await w.registry.show(id)).revision).toBe(1); // nothing changes before NIA approves it
    await w.registry.approveChange(cr.id, 'test');
    const view = await w.registry.show(id);
    expect(view.revision).toBe(2);
    expect(view.scopeText).toBe('國籍：泰國、馬來西亞；出入境別：出境');
    const d = await deliver(id, { full: false });
    expect(d.revision).toBe(2);
    expect(d.mode).toBe('full'); // an increment would miss the Malaysian records the new scope adds
    expect(delivered(d.path!).rows).toEqual(sqlite3Rows("nationality IN ('THA','MYS') AND direction = 'exit'"));
  });

  it('R3.4 a change with a bad scope is refused when filed, and nothing is filed', async () => {
    const id = await scoped('nationality in THA');
    const before = (await w.registry.history(id)).changes.length;
    await expect(w.registry.fileChange(id, 'scope', { value: 'nationality in XXX' }, 'test')).rejects.toThrow(/not in the domain/);
    await expect(w.registry.fileChange(id, 'scope', { value: 'all' }, 'test')).rejects.toThrow(/justification/);
    expect((await w.registry.history(id)).changes.length).toBe(before);
  });

  it('R3.4 the SQL of a scoped extract and of a query holds none of the scope values (bound parameters only)', async () => {
    const id = await scoped('nationality in KOR,USA; direction not-in exit; crossed_at from 2024-03-01; crossed_at to 2026-02-28', { methods: ['sftp-pull', 'online-query'], clientCerts: [makeCert('sql-check').cert] });
    const values = ['KOR', 'USA', "'exit'", '2024-03-01', '2026-03-01', '2026-02-28'];
    const scope = compileScope((await w.registry.state(id)).content.scope, catalog, '2026-12-06');
    for (const range of [{ since: null, until: 'z', scope }, { since: 'a', until: 'z', scope }]) {
      const sql = csvSelectSql('entry_exit', FIELDS, range);
      for (const v of values) expect(sql).not.toContain(v);
    }
    // Every statement the extract and the query prepare, as SQLite receives it.
    const prepared: string[] = [];
    const original = Database.prototype.prepare;
    const spy = jest.spyOn(Database.prototype, 'prepare').mockImplementation(function (this: Database.Database, text: string) {
      prepared.push(text);
      return original.call(this, text);
    } as typeof original);
    try {
      await deliver(id, { rowwise: true });
      const cert = readFileSync(path.join(certDir, 'sql-check.crt'), 'utf8');
      const r = await queryService().handle({ certFingerprint: certFingerprint(new X509Certificate(cert)), ip: '127.0.0.1', dataset: 'entry_exit', body: { ids: ['A800000014'], reference: 'sql' } });
      expect(r.status).toBe(200);
    } finally {
      spy.mockRestore();
    }
    const readers = prepared.filter((s) => /FROM "entry_exit"/.test(s) && /"nationality" IN/.test(s));
    expect(readers.length).toBeGreaterThanOrEqual(2); // the extract's and the query's
    for (const s of readers) for (const v of values) expect(s).not.toContain(v);
  });
});

describe('R3.4 R3.5 the online query inside the scope, without harvest or re-identification', () => {
  let client: { cert: string; key: string };
  let fp: string;
  let linkId: number;
  let service: QueryService;
  const ask = (ids: string[], reference = 'case 115-001') => service.handle({ certFingerprint: fp, ip: '127.0.0.1', dataset: 'entry_exit', body: { ids, reference } });
  const pick = (where: string) => execFileSync('sqlite3', [source, `SELECT person_id FROM entry_exit WHERE ${where} LIMIT 1`]).toString().trim();

  beforeAll(async () => {
    client = makeCert('query-scope');
    fp = certFingerprint(new X509Certificate(client.cert));
    linkId = await scoped('nationality in VNM,IDN; direction in entry', {
      fields: [{ name: 'person_id', transform: 'hmac' }, { name: 'nationality' }, { name: 'direction' }, { name: 'crossed_at' }],
      methods: ['sftp-pull', 'online-query'],
      clientCerts: [client.cert],
      maxIdsPerDay: 8,
      agency: 'A001',
    });
    service = queryService();
  });

  it('R3.4 a person outside the scope is answered exactly like an unknown id', async () => {
    const outside = pick("nationality = 'JPN' AND person_id NOT IN (SELECT person_id FROM entry_exit WHERE nationality IN ('VNM','IDN'))");
    const inside = pick("nationality = 'VNM' AND direction = 'entry'");
    expect(outside).toMatch(/^[A-Z]/);
    const unknown = await ask(['Z999999999']);
    const out = await ask([outside]);
    expect(out).toEqual(unknown);
    expect(out).toEqual({ status: 200, body: { records: [], confidentiality: expect.objectContaining({ zh: expect.stringContaining('移民署') }) } });
    const inn = await ask([inside]);
    expect((inn.body as any).records.length).toBeGreaterThan(0);
    expect((inn.body as any).records.every((r: any) => ['VNM', 'IDN'].includes(r.nationality) && r.direction === 'entry')).toBe(true);
    const details = (await listLog(w.cdb.db, { linkId, type: 'query.answered' })).map((r) => JSON.parse(r.detail));
    expect(details.slice(-3).map((d) => [d.ids, d.found])).toEqual([[1, 0], [1, 0], [1, 1]]);
  });

  it("R3.5 a file's pseudonym of a person differs from the query's for the same person on the same link", async () => {
    const inside = pick("nationality = 'IDN' AND direction = 'entry'");
    const answer = await ask([inside]);
    const queried = new Set((answer.body as any).records.map((r: any) => r.person_id));
    expect(queried.size).toBe(1);
    const file = delivered((await deliver(linkId)).path!).rows.map((l) => l.split(',')[0]);
    expect(file.length).toBeGreaterThan(100);
    const [pseudonym] = [...queried];
    expect(pseudonym).toMatch(/^[0-9a-f]{64}$/);
    expect(file).not.toContain(pseudonym); // the clear id sent to the query cannot be matched to the file
  });

  it('R3.5 the daily cap counts every identifier asked, found or not, and refuses once reached with a stable code', async () => {
    // Earlier look-ups in this block asked 4 identifiers; the cap is 8.
    const used = (await listLog(w.cdb.db, { linkId, type: 'query.answered' })).reduce((n, r) => n + JSON.parse(r.detail).ids, 0);
    expect(used).toBe(4);
    expect((await ask(['Z000000001', 'Z000000002', 'Z000000003'])).status).toBe(200);
    const over = await ask(['Z000000004', 'Z000000005']); // 7 + 2 > 8: refused whole, nothing taken
    expect(over.status).toBe(429);
    expect((over.body as any).error.code).toBe('cap.reached');
    expect((await ask(['Z000000006'])).status).toBe(200); // the last one still fits
    expect((await ask(['Z000000007'])).status).toBe(429);
    const refused = (await listLog(w.cdb.db, { linkId, type: 'query.refused' })).map((r) => JSON.parse(r.detail).code);
    expect(refused.filter((c) => c === 'cap.reached')).toHaveLength(2);
  });
});

describe('R3.5 the daily cap holds across query processes', () => {
  it('R3.5 with query.processes 2, a link with a cap of 6 identifiers gets exactly 6 answered over 12 connections', async () => {
    const client = makeCert('cap-cluster');
    const id = await approvedLink(w, keys, { account: 'capcluster', methods: ['sftp-pull', 'online-query'], clientCerts: [client.cert], fields: [{ name: 'person_id' }], scope: { text: 'all', justification: 'test' }, maxIdsPerDay: 6 });
    const role = await startRole(w.dataDir, 'query', { REDIS_URL: process.env.NIA_TEST_REDIS_URL, NIA_LINK_QUERY_PROCESSES: '2', NIA_LINK_QUERY_PORT: '0', NIA_LINK_QUERY_HOST: '127.0.0.1' });
    try {
      expect([/ in 2 processes/.test(role.output()), role.output()]).toEqual([true, role.output()]);
      const port = Number(/query: listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(role.output())?.[1]);
      const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => askQuery({ keysDir: config.keysDir, port, dataset: 'entry_exit', body: { ids: [`Q${String(i).padStart(9, '0')}`], reference: `cap ${i}` }, client })));
      const statuses = replies.map((r) => r.status).sort();
      expect(statuses).toEqual([...Array(6).fill(200), ...Array(6).fill(429)]);
      expect(replies.filter((r) => r.status === 429).every((r) => r.body.error.code === 'cap.reached')).toBe(true);
      // Connections go to the two processes in turn: a count kept per process would have let all 12 through.
      expect(await listLog(w.cdb.db, { linkId: id, type: 'query.answered' })).toHaveLength(6);
    } finally {
      role.child.kill('SIGTERM');
      await role.exited;
    }
  });
});

describe('R3.4 links recorded before scopes existed', () => {
  it('R3.4 the migration gives their revisions the whole dataset with that justification and the default cap, and flags them for a scope review', async () => {
    const dir = tmpDir();
    const old = openControlDb(dir, { create: true });
    const registry = new Registry(old, loadCatalogs(), new TestClock());
    await registry.addAgency({ code: 'A009', name: '舊機關' }, 'test');
    const id = (await registry.apply(application(keys, { agency: 'A009', account: 'old009' }), 'test')).id;
    await old.close();
    // Make it a database from before this change: revisions without a scope, the migration not yet run.
    const raw = new Database(controlDbFile(dir));
    raw.exec('DROP TRIGGER link_revision_no_update');
    raw.prepare("UPDATE link_revision SET content = json_remove(content, '$.scope', '$.maxIdsPerDay')").run();
    raw.exec("CREATE TRIGGER link_revision_no_update BEFORE UPDATE ON link_revision BEGIN SELECT RAISE(ABORT, 'link revisions are immutable; file a change request'); END");
    expect((raw.prepare("SELECT json_extract(content, '$.scope') AS s FROM link_revision").get() as { s: unknown }).s).toBeNull();
    // The migration as drizzle runs it: its statements in one transaction.
    const statements = readFileSync(path.join(__dirname, '..', '..', 'drizzle', '0011_scope.sql'), 'utf8').split('--> statement-breakpoint');
    raw.transaction(() => statements.forEach((sql) => raw.exec(sql)))();
    raw.close();

    const migrated = openControlDb(dir);
    try {
      const view = await new Registry(migrated, loadCatalogs(), new TestClock()).show(id);
      expect(view.scope).toEqual({ all: true, justification: 'recorded before scopes existed' });
      expect(view.scopeReview).toBe(true);
      expect(view.maxIdsPerDay).toBe(1000);
      // The guard against rewriting revisions is back in place.
      await expect(migrated.write((tx) => connectionOf(tx).prepare("UPDATE link_revision SET content = '{}'").run())).rejects.toMatchObject({ message: expect.stringMatching(/immutable/) });
    } finally {
      await migrated.close();
    }
  });
});

describe('R3.4 approval of a scoped application', () => {
  it('R3.4 an application migrated without a scope cannot be approved as it stands, and nobody can apply with that mark', async () => {
    const id = await approvableLink(w, keys, { account: 'legacy1' });
    makeLegacyScope(w.dataDir, id);
    const fresh = new Registry(w.cdb, loadCatalogs(), w.clock); // one that has not read the revision before the migration
    await expect(fresh.approve(id, { by: 'test' })).rejects.toThrow(/before scopes existed and states no records: reject it and have the agency apply again stating the records it needs/);
    expect((await fresh.show(id)).status).toBe('pending');
    await expect(w.registry.apply(application(keys, { account: 'legacy2', scope: { text: 'all', justification: 'recorded before scopes existed' } }), 'test')).rejects.toThrow(/give the real reason/);
  });

  it('R3.4 a scoped link shows its scope in link show, in its own terms and in words', async () => {
    const id = await approvableLink(w, keys, { fields: FIELDS, scope: { text: 'nationality in VNM; crossed_at within-days 400' }, account: 'showscope' });
    const v = await w.registry.show(id);
    expect(v.scope).toEqual({ all: false, conditions: [{ field: 'nationality', op: 'in', values: ['VNM'] }, { field: 'crossed_at', op: 'within-days', value: 400 }] });
    expect(v.scopeText).toBe('國籍：越南；出入境時間：製檔或查詢日前400日內');
    expect(v.scopeReview).toBe(false);
  });
});
