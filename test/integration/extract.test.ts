import { QueueEvents } from 'bullmq';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { ensureKeys, signingPublicKeyArmored } from '../../src/crypto';
import { deliveries } from '../../src/db/repositories';
import { addDays, taipeiDate } from '../../src/domain';
import { PermanentError } from '../../src/extract';
import { startService, type RunningService } from '../../src/main';
import { connection, openQueue, QUEUES, queuePrefix, type TypedQueue } from '../../src/queue';
import { DirectoryOutbox } from '../../src/outbox';
import { buildServices } from '../../src/services';
import { listLog } from '../../src/usagelog';
import { person, writeEntryExitSource } from '../helpers/source';
import { approvedLink, BIN, cleanupKeys, makeAgencyKeys, openTestWorld, type AgencyKeys, type AnyWorld } from '../helpers/world';

const REDIS = process.env.NIA_TEST_REDIS_URL!;
let keys: AgencyKeys;
let w: AnyWorld;
let svc: RunningService;
let queue: TypedQueue<'extract'>;
let events: QueueEvents;
let config: ReturnType<typeof loadConfig>;

const gpgEnv = () => ({ ...process.env, GNUPGHOME: keys.gnupgHome });
function gpgDecrypt(file: string): { plain: string; status: string } {
  const r = spawnSync('gpg', ['--batch', '--status-fd', '2', '--decrypt', file], { env: gpgEnv(), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gpg --decrypt failed (${r.status}): ${r.stderr}`);
  return { plain: r.stdout, status: r.stderr };
}
function parseCsv(text: string): string[][] {
  // Enough RFC 4180 for the tests: quoted fields with doubled quotes, commas and line breaks.
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      (row = []), (field = ''), i++;
    } else field += c;
  }
  return rows;
}

async function deliver(linkId: number, full = true) {
  const job = await queue.add('manual-extract', { linkId, full, trigger: 'manual' });
  const r = (await job.waitUntilFinished(events, 60000)) as { deliveryId: number };
  return w.cdb.db && (await buildServices(config, w.cdb, w.clock).extracts.get(r.deliveryId))!;
}

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = await openTestWorld();
  config = loadConfig({ dataDir: w.dataDir }, { REDIS_URL: REDIS, NIA_LINK_LOG_LEVEL: 'silent', NIA_LINK_JOB_ATTEMPTS: '2', NIA_LINK_JOB_BACKOFF_MS: '200', NIA_LINK_JOB_LOCK_MS: '2000', NIA_LINK_DATABASE_URL: w.database.url });
  await ensureKeys(config.keysDir, new Date());
  execFileSync('gpg', ['--batch', '--import'], { input: signingPublicKeyArmored(config.keysDir), env: gpgEnv(), stdio: ['pipe', 'ignore', 'ignore'] });
  writeEntryExitSource(
    w.dataDir,
    [person(1), person(2, { name_en: 'O"BRIEN, SEAN', name_zh: '歐布萊恩,尚' }), person(3, { flight_no: 'line\r\nbreak' }), person(4, { person_id: null })],
    '2026-01-01T00:00:00.000Z',
  );
  svc = await startService(config, ['worker', 'scheduler'], () => undefined, w.clock);
  queue = openQueue(QUEUES.extract, config, REDIS);
  events = new QueueEvents(QUEUES.extract, { connection: connection(REDIS), prefix: queuePrefix(config) });
  await events.waitUntilReady();
});
afterAll(async () => {
  await events?.close();
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await svc?.stop();
  await w?.close();
  cleanupKeys(keys);
});

describe('extract pipeline with a real worker, Redis and GnuPG', () => {
  it('R3.2 R-F7 a delivery holds exactly the approved fields with their transforms, signed by NIA and encrypted to the agency', async () => {
    const id = await approvedLink(w, keys, { account: 'x1', fields: [{ name: 'person_id', transform: 'hmac' }, { name: 'name_zh', transform: 'mask' }, { name: 'name_en' }, { name: 'birth_date', transform: 'year' }, { name: 'flight_no' }] });
    const d = await deliver(id);
    expect(d).toMatchObject({ status: 'built', link: id, revision: 1, rows: 4, fields: ['person_id:hmac', 'name_zh:mask', 'name_en', 'birth_date:year', 'flight_no'] });
    expect(path.isAbsolute(d.path!)).toBe(true);
    const { plain, status } = gpgDecrypt(d.path!);
    expect(status).toMatch(/GOODSIG/);
    expect(status).toMatch(/DECRYPTION_OKAY/);
    const rows = parseCsv(plain);
    expect(rows[0]).toEqual(['person_id', 'name_zh', 'name_en', 'birth_date', 'flight_no']);
    expect(rows).toHaveLength(5);
    expect(rows[1][0]).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[1][0]).not.toContain('A800000001');
    expect(rows[1].slice(1)).toEqual(['陳*雄', 'CHEN, WEN-HSIUNG 1', '1990', 'CI 0101']);
    expect(rows[2].slice(1, 3)).toEqual(['歐****尚', 'O"BRIEN, SEAN']);
    expect(rows[3][4]).toBe('line\r\nbreak');
    expect(rows[4][0]).toBe('');
    for (const banned of ['passport_no', 'C00000001', 'nationality', 'VNM', 'TPE']) expect(plain).not.toContain(banned);
    const sha = require('node:crypto').createHash('sha256');
    expect(sha.update(readFileSync(d.path!)).digest('hex')).toBe(d.sha256);
    // The manifest is signed, and says what the file is.
    const manifest = JSON.parse(readFileSync(d.manifest!, 'utf8'));
    expect(manifest).toMatchObject({ link: id, revision: 1, rows: 4, fields: d.fields, sha256: { ciphertext: d.sha256, plaintext: d.plainSha256 }, legalBasis: '所得稅法第7條' });
    expect(manifest.confidentiality.zh).toMatch(/不得提供予第三人/);
    const v = spawnSync('gpg', ['--batch', '--status-fd', '1', '--verify', `${d.manifest}.asc`, d.manifest!], { env: gpgEnv(), encoding: 'utf8' });
    expect(v.status).toBe(0);
    expect(v.stdout).toMatch(/GOODSIG/);
    const built = await listLog(w.cdb.db, { linkId: id, type: 'extract.built' });
    expect(built).toHaveLength(1);
    expect(JSON.parse(built[0].detail)).toMatchObject({ rows: 4, sha256: d.sha256, delivery: d.id });
    expect(readdirSync(path.dirname(d.path!)).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });

  it('R3.2 R5.1 a change request that removes a field: the next delivery lacks it and names revision 2', async () => {
    const id = await approvedLink(w, keys, { account: 'x2', fields: [{ name: 'person_id' }, { name: 'nationality' }, { name: 'port' }] });
    expect(parseCsv(gpgDecrypt((await deliver(id)).path!).plain)[0]).toEqual(['person_id', 'nationality', 'port']);
    const cr = await w.registry.fileChange(id, 'fields', { value: 'person_id,port' }, 'agency');
    await w.registry.approveChange(cr.id, 'nia');
    const d = await deliver(id);
    expect(d.revision).toBe(2);
    const { plain } = gpgDecrypt(d.path!);
    expect(parseCsv(plain)[0]).toEqual(['person_id', 'port']);
    expect(plain).not.toContain('VNM');
  });

  it('R6.1 a manual extract is recorded as done by the operator who asked for it (deliver --by); one without a name, by the worker', async () => {
    const id = await approvedLink(w, keys, { account: 'xby', fields: [{ name: 'port' }] });
    const job = await queue.add('manual-extract', { linkId: id, full: true, trigger: 'manual', by: 'op:王承辦' });
    const r = await job.waitUntilFinished(events, 60000);
    const built = await listLog(w.cdb.db, { linkId: id, type: 'extract.built' });
    expect(built.map((x) => x.actor)).toEqual(['op:王承辦']);
    expect(JSON.parse(built[0].detail)).toMatchObject({ delivery: r.deliveryId, trigger: 'manual' });
    await deliver(id);
    expect((await listLog(w.cdb.db, { linkId: id, type: 'extract.built' })).map((x) => x.actor)).toEqual(['op:王承辦', 'worker']);
  });

  it('incremental deliveries carry only records changed since the last successful one; an empty increment is a header-only file', async () => {
    const id = await approvedLink(w, keys, { account: 'x3', fields: [{ name: 'person_id' }] });
    expect((await deliver(id, false)).rows).toBe(4);
    const empty = await deliver(id, false);
    expect(empty).toMatchObject({ rows: 0, mode: 'incremental' });
    expect(parseCsv(gpgDecrypt(empty.path!).plain)).toEqual([['person_id']]);
    writeEntryExitSource(w.dataDir, [person(5), person(6)], '2026-02-01T00:00:00.000Z');
    const inc = await deliver(id, false);
    expect(parseCsv(gpgDecrypt(inc.path!).plain).slice(1)).toEqual([['A800000005'], ['A800000006']]);
    expect((await deliver(id, true)).rows).toBe(6);
  });

  it('R3.3 R3.1 R12.1 unapproved, expired and ended links are refused with a logged reason, and no file is made', async () => {
    const pending = (await w.registry.apply({ ...(await import('../helpers/world')).application(keys, { account: 'x4' }) }, 't')).id;
    const expired = await approvedLink(w, keys, { account: 'x5', from: '2020-01-01', to: '2020-12-31' });
    const ended = await approvedLink(w, keys, { account: 'x6' });
    const cr = await w.registry.fileChange(ended, 'stop', { value: taipeiDate(w.clock.now()), letterNo: '府授字第1150000001號' }, 'agency');
    await w.registry.approveChange(cr.id, 'nia');
    await buildServices(config, w.cdb, w.clock).compliance.endDue('nia', ended);
    for (const [linkId, reason] of [
      [pending, /pending/],
      [expired, /use period ended on 2020-12-31/],
      [ended, /terminated/],
    ] as const) {
      const job = await queue.add('manual-extract', { linkId, full: true, trigger: 'manual' });
      await expect(job.waitUntilFinished(events, 30000)).rejects.toThrow(reason);
      expect((await queue.getJob(job.id!))!.attemptsMade).toBe(1); // permanent: not retried
      const failed = await listLog(w.cdb.db, { linkId, type: 'extract.failed' });
      expect(JSON.parse(failed[failed.length - 1].detail).reason).toMatch(reason);
      expect((await deliveries.list(w.cdb.db, linkId)).filter((d) => d.status === 'built')).toEqual([]);
    }
    const services = buildServices(config, w.cdb, w.clock);
    await expect(services.extracts.assertUsable(await services.registry.state(pending), { key: 'k', trigger: 'manual' }, w.clock.now())).rejects.toThrow(PermanentError);
  });

  it('a link schedule fires and creates a delivery (job scheduler, Asia/Taipei)', async () => {
    const id = await approvedLink(w, keys, { account: 'x7', fields: [{ name: 'port' }], schedule: '*/2 * * * * *' });
    // The scheduler role synchronises schedules at start and every 10 s; do not wait for the timer.
    const { syncSchedules } = await import('../../src/queue');
    await syncSchedules(queue, [{ id, schedule: '*/2 * * * * *', active: true }, ...(await w.registry.list()).filter((l) => l.id !== id).map((l) => ({ id: l.id, schedule: l.schedule, active: l.status === 'active' }))]);
    let made: deliveries.DeliveryRow[] = [];
    for (let i = 0; i < 100 && made.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      made = (await deliveries.list(w.cdb.db, id)).filter((d) => d.status === 'built');
    }
    expect(made[0]).toMatchObject({ trigger: 'schedule', linkId: id });
    expect((await queue.getJobSchedulers()).map((s) => s.key)).toContain(`link:${id}`);
    const r = await syncSchedules(queue, (await w.registry.list()).map((l) => ({ id: l.id, schedule: l.schedule, active: l.id === id ? false : l.status === 'active' })));
    expect(r.removed).toContain(`link:${id}`);
  });
});

describe('outbox retention (R-F5)', () => {
  it('R-F5 files past their retention are removed by purge; the delivery keeps its hashes and the log says so', async () => {
    const id = await approvedLink(w, keys, { account: 'x9', fields: [{ name: 'port' }] });
    const d = await deliver(id);
    const services = buildServices(config, w.cdb, w.clock);
    expect((await services.extracts.purge('test')).purged).toBe(0);
    expect(existsSync(d.path!)).toBe(true);
    const saved = w.clock.now();
    w.clock.advanceDays(config.outbox.retentionDays + 1);
    try {
      expect((await services.extracts.purge('test')).purged).toBeGreaterThanOrEqual(1);
    } finally {
      w.clock.set(saved.toISOString());
    }
    expect(existsSync(d.path!)).toBe(false);
    expect(existsSync(d.manifest!)).toBe(false);
    expect(await services.extracts.get(d.id)).toMatchObject({ status: 'purged', sha256: d.sha256 });
    expect(await listLog(w.cdb.db, { linkId: id, type: 'delivery.purged' })).toHaveLength(1);
  });
});

describe('a worker killed mid-extract', () => {
  it('leaves no visible partial file, and the retried job makes exactly one delivery', async () => {
    const id = await approvedLink(w, keys, { account: 'x8', fields: [{ name: 'person_id' }, { name: 'name_en' }, { name: 'name_zh' }, { name: 'crossed_at' }] });
    writeEntryExitSource(w.dataDir, Array.from({ length: 150000 }, (_, i) => person(100 + i)), '2026-03-01T00:00:00.000Z');
    await svc.stop(); // only the child worker below takes this job
    const env = { ...process.env, REDIS_URL: REDIS, NIA_LINK_LOG_LEVEL: 'silent', NIA_LINK_JOB_LOCK_MS: '2000', NIA_LINK_HTTP_PORT: '0' };
    const startWorker = () => spawn(process.execPath, [BIN, '--data-dir', w.dataDir, 'start', '--role', 'worker'], { env, stdio: 'ignore', detached: true });
    const dir = path.join(w.dataDir, 'outbox', String(id));
    const job = await queue.add('manual-extract', { linkId: id, full: true, trigger: 'manual' }, { jobId: 'kill-test' });
    const first = startWorker();
    let partial = false;
    for (let i = 0; i < 300 && !partial; i++) {
      await new Promise((r) => setTimeout(r, 50));
      partial = existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.partial'));
    }
    expect(partial).toBe(true);
    process.kill(-first.pid!, 'SIGKILL');
    await new Promise((r) => first.once('exit', r));
    // Nothing the agency could see: no final file, no built delivery.
    expect(readdirSync(dir).filter((f) => f.endsWith('.csv.pgp'))).toEqual([]);
    expect((await deliveries.list(w.cdb.db, id)).filter((d) => d.status === 'built')).toEqual([]);
    const second = startWorker();
    try {
      const r = (await job.waitUntilFinished(events, 90000)) as { deliveryId: number };
      const built = (await deliveries.list(w.cdb.db, id)).filter((d) => d.status === 'built');
      expect(built.map((d) => d.id)).toEqual([r.deliveryId]);
      const Database = require('better-sqlite3');
      const src = new Database(path.join(w.dataDir, 'source.db'), { readonly: true });
      expect(built[0].rows).toBe((src.prepare('SELECT count(*) AS n FROM entry_exit').get() as { n: number }).n);
      src.close();
      expect(readdirSync(dir).filter((f) => f.endsWith('.csv.pgp'))).toHaveLength(1);
      // Each attempt writes its own temporary file: the killed worker's stays hidden (never listed, so
      // never served) until the purge sweeps it as stale; the attempt that finished left none.
      const outbox = new DirectoryOutbox(path.join(w.dataDir, 'outbox'));
      expect(readdirSync(dir).filter((f) => f.endsWith('.partial'))).toHaveLength(1);
      expect(outbox.list(id)).toHaveLength(3); // the file, its manifest and the manifest's signature
      expect(outbox.removeStaleTemps(new Date(Date.now() + 25 * 3600e3), 24 * 3600e3)).toBe(1);
      expect(readdirSync(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
    } finally {
      process.kill(-second.pid!, 'SIGTERM');
      await new Promise((r) => second.once('exit', r));
    }
  }, 120000);
});
