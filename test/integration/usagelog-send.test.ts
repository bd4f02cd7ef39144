import { QueueEvents } from 'bullmq';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { ensureKeys, KEY_FILES } from '../../src/crypto';
import { deliveries } from '../../src/db/repositories';
import { addDays, addMonths, startOfTaipeiDay, taipeiDate } from '../../src/domain';
import { buildServices } from '../../src/services';
import { startService } from '../../src/main';
import { connection, openQueue, QUEUES, queuePrefix } from '../../src/queue';
import { OutboxTree } from '../../src/sftp/tree';
import { publishedFor } from '../../src/sftp/server';
import { appendLog, listLog } from '../../src/usagelog';
import { approvedLink, cleanupKeys, cli, makeAgencyKeys, openWorld, TestClock, tmpDir, type AgencyKeys, type TestWorld } from '../helpers/world';

const REDIS = process.env.NIA_TEST_REDIS_URL!;

/**
 * R6.5: each agency receives the records of its own use, signed by NIA and encrypted to its key, in
 * the outbox of each of its links, monthly and on request — and can verify them offline.
 */
let keysA: AgencyKeys;
let keysB: AgencyKeys;
beforeAll(() => {
  keysA = makeAgencyKeys();
  keysB = makeAgencyKeys();
});
afterAll(() => {
  cleanupKeys(keysA);
  cleanupKeys(keysB);
});

interface World {
  w: TestWorld;
  keysDir: string;
  a1: number;
  a2: number;
  b1: number;
}

async function world(): Promise<World> {
  const w = openWorld();
  const keysDir = loadConfig({ dataDir: w.dataDir }, {}).keysDir;
  await ensureKeys(keysDir, new Date());
  await w.registry.addAgency({ code: 'A001', name: '財政部賦稅署' }, 'test');
  await w.registry.addAgency({ code: 'A002', name: '勞動部' }, 'test');
  const a1 = await approvedLink(w, keysA, { account: 'a001' });
  const a2 = await approvedLink(w, keysA, { account: 'a002' });
  const b1 = await approvedLink(w, keysB, { agency: 'A002', account: 'b001' });
  const now = w.clock.now();
  await w.cdb.write(async (tx) => {
    await appendLog(tx, { type: 'file.downloaded', agency: 'A001', linkId: a1, actor: 'a001', ip: '127.0.0.1', channel: 'sftp-pull', object: 'x.csv.pgp', detail: { bytes: 10, result: 'complete' } }, now);
    await appendLog(tx, { type: 'file.downloaded', agency: 'A002', linkId: b1, actor: 'b001', ip: '127.0.0.1', channel: 'sftp-pull', object: 'SECRET-OF-A002.csv.pgp', detail: { bytes: 20, result: 'complete' } }, now);
    await appendLog(tx, { type: 'file.downloaded', agency: 'A001', linkId: a2, actor: 'a002', ip: '127.0.0.1', channel: 'sftp-pull', object: 'y.csv.pgp', detail: { bytes: 30, result: 'complete' } }, now);
  });
  return { w, keysDir, a1, a2, b1 };
}

const gpg = (k: AgencyKeys, args: string[], input?: Buffer) => spawnSync('gpg', ['--batch', ...args], { env: { ...process.env, GNUPGHOME: k.gnupgHome }, input });

/** Decrypt as the agency does, checking NIA's signature, and unpack the archive into a new directory. */
function openAsAgency(k: AgencyKeys, keysDir: string, file: string): string {
  expect(gpg(k, ['--import', path.join(keysDir, KEY_FILES.signingPublic)]).status).toBe(0);
  const r = gpg(k, ['--status-fd', '2', '--decrypt', file]);
  expect(r.status).toBe(0);
  expect(r.stderr.toString()).toMatch(/\[GNUPG:\] GOODSIG/);
  const out = tmpDir('nia-link-usage-open-');
  execFileSync('tar', ['-x', '-C', out], { input: r.stdout });
  return out;
}

const jsonl = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('usage records to each agency (R6.5)', () => {
  it('R6.5 report send puts a signed, encrypted usage-… file (not .csv.pgp) in each of the agency\'s outboxes; the agency decrypts it, finds its records in full and none of another agency\'s, and verifies them offline', async () => {
    const { w, keysDir, a1, a2, b1 } = await world();
    try {
      const today = taipeiDate(w.clock.now());
      const r = cli(w.dataDir, ['report', 'send', '--agency', 'A001', '--from', addDays(today, -1), '--to', today, '--json']);
      expect([r.code, r.stderr]).toEqual([0, '']);
      const sent = JSON.parse(r.stdout) as { links: number[]; records: number; deliveries: { delivery: number; link: number; file: string; path: string }[] };
      expect(sent.deliveries.map((d) => d.link).sort()).toEqual([a1, a2].sort());
      expect(sent.links).toEqual([a1, a2]);

      for (const d of sent.deliveries) {
        // In the link's outbox, named for the agency and the period, with its signed manifest beside it.
        expect(path.dirname(d.path)).toBe(path.join(w.dataDir, 'outbox', String(d.link)));
        expect(d.file).toMatch(new RegExp(`^usage-A001-${addDays(today, -1)}-${today}-L${d.link}-D${d.delivery}\\.pgp$`));
        expect(d.file).not.toMatch(/\.csv\.pgp$/);
        const manifest = d.path.replace(/\.pgp$/, '.manifest.json');
        expect(existsSync(manifest) && existsSync(`${manifest}.asc`)).toBe(true);
        // Listed on the link's SFTP tree as the server lists deliveries: from the delivery rows.
        const services = buildServices(loadConfig({ dataDir: w.dataDir }, {}), w.cdb, w.clock);
        const published = await publishedFor(w.cdb, d.link);
        const tree = new OutboxTree({ published: async () => published, stat: (name) => services.outbox.stat(d.link, name), version: async () => '1', now: () => Date.now() });
        expect((await tree.list('/outbox'))!.map((n) => n.name)).toEqual([d.file.replace(/\.pgp$/, '.manifest.json'), `${d.file.replace(/\.pgp$/, '.manifest.json')}.asc`, d.file].sort());
        expect(await tree.lookup(`/outbox/${d.file}`)).toMatchObject({ kind: 'file', role: 'data', delivery: d.delivery });
      }

      const dir = openAsAgency(keysA, keysDir, sent.deliveries[0].path);
      try {
        const root = path.join(dir, `usage-A001-${addDays(today, -1)}-${today}`);
        expect(readdirSync(root).sort()).toEqual(['L' + a1, 'L' + a2, 'README.txt', 'summary.json'].sort());
        const summary = JSON.parse(readFileSync(path.join(root, 'summary.json'), 'utf8'));
        expect(summary).toMatchObject({ type: 'nia-link.usage-report', scope: { agency: 'A001' }, downloads: { count: 2 } });
        const full = [a1, a2].flatMap((id) => jsonl(path.join(root, `L${id}`, 'records.jsonl')).filter((x) => x.type !== undefined));
        expect(full.length).toBe(sent.records);
        expect(full.map((x) => x.type)).toEqual(expect.arrayContaining(['link.applied', 'link.approved', 'file.downloaded']));
        expect(new Set(full.map((x) => x.linkId))).toEqual(new Set([a1, a2]));
        expect(full.every((x) => x.agency === 'A001')).toBe(true);
        // Another agency's records are in the chain only as their digests.
        const text = [a1, a2].map((id) => readFileSync(path.join(root, `L${id}`, 'records.jsonl'), 'utf8')).join('');
        expect(text).not.toContain('SECRET-OF-A002');
        expect(text).not.toContain('"A002"');
        const b1Seqs = (await listLog(w.cdb.db, { linkId: b1 })).map((x) => x.seq);
        const shown = jsonl(path.join(root, `L${a1}`, 'records.jsonl')).filter((x) => b1Seqs.includes(x.seq as number));
        expect(shown.length).toBeGreaterThan(0);
        expect(shown.every((x) => Object.keys(x).sort().join() === 'digest,seq')).toBe(true);
        // Checked offline, with NIA's key as the agency got it: no database, no data directory.
        const nia = path.join(keysDir, KEY_FILES.signingPublic);
        for (const id of [a1, a2]) {
          const v = cli(tmpDir(), ['log', 'verify', '--evidence', path.join(root, `L${id}`), '--key', nia]);
          expect([v.code, v.stderr]).toEqual([0, '']);
        }
        // Another agency's key cannot open it.
        expect(gpg(keysB, ['--decrypt', sent.deliveries[0].path]).status).not.toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      expect((await listLog(w.cdb.db, { type: 'report.sent' })).map((x) => [x.agency, x.linkId, x.actor])).toEqual(
        sent.deliveries.map((d) => ['A001', d.link, expect.stringMatching(/^cli:/)]),
      );
      // The other agency's outbox got nothing.
      expect(existsSync(path.join(w.dataDir, 'outbox', String(b1)))).toBe(false);
    } finally {
      w.close();
    }
  });

  it('R6.5 report send refuses, in one line and writing nothing: a future --to, an unknown agency, an agency without a link in use', async () => {
    const { w, b1 } = await world();
    try {
      const today = taipeiDate(w.clock.now());
      const before = (await listLog(w.cdb.db, {})).length;
      const refused = (args: string[], pattern: RegExp) => {
        const r = cli(w.dataDir, ['report', 'send', ...args]);
        expect(r.code).not.toBe(0);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(pattern);
      };
      refused(['--agency', 'A001', '--from', today, '--to', addDays(today, 1)], /--to \S+ is in the future/);
      refused(['--agency', 'A001', '--from', today, '--to', addDays(today, -1)], /is before --from/);
      refused(['--agency', 'A009', '--from', today, '--to', today], /agency A009 is not registered/);
      await w.cdb.write((tx) => w.registry.suspend(tx, b1, 'test', 'nia', w.clock.now()));
      const logged = (await listLog(w.cdb.db, {})).length;
      refused(['--agency', 'A002', '--from', today, '--to', today], /agency A002 has no link in use/);
      expect((await listLog(w.cdb.db, {})).length).toBe(logged);
      expect(logged).toBe(before + 1);
      expect(await deliveries.list(w.cdb.db)).toEqual([]);
    } finally {
      w.close();
    }
  });

  it('R6.5 a link\'s push channels are queued like an extract\'s; without Redis they are marked failed for delivery retry, and the file is in the outbox all the same', async () => {
    const { w } = await world();
    try {
      const pushed = await approvedLink(w, keysA, { account: 'a003', methods: ['sftp-pull', 'email'], email: ['it@tax.example.gov.tw'] });
      const today = taipeiDate(w.clock.now());
      const queue = openQueue(QUEUES.deliver, loadConfig({ dataDir: w.dataDir }, { REDIS_URL: REDIS }), REDIS);
      try {
        const r = cli(w.dataDir, ['report', 'send', '--agency', 'A001', '--from', today, '--to', today, '--json'], { REDIS_URL: REDIS });
        expect([r.code, r.stderr]).toEqual([0, '']);
        const d = (JSON.parse(r.stdout) as { deliveries: { delivery: number; link: number }[] }).deliveries.find((x) => x.link === pushed)!;
        expect((await deliveries.byId(w.cdb.db, d.delivery))!.channels).toMatchObject({ email: { status: 'queued' } });
        expect(await queue.getJob(`push-${d.delivery}-email`)).toBeDefined();
      } finally {
        await queue.obliterate({ force: true }).catch(() => undefined);
        await queue.close();
      }
      const down = cli(w.dataDir, ['report', 'send', '--agency', 'A001', '--from', today, '--to', today, '--json'], { REDIS_URL: 'redis://127.0.0.1:1' });
      expect(down.code).toBe(0);
      expect(down.stderr).toMatch(/^push channels not queued \(.*\): once the service runs, nia-link delivery retry \d+\n$/);
      const d = (JSON.parse(down.stdout) as { deliveries: { delivery: number; link: number; path: string }[] }).deliveries.find((x) => x.link === pushed)!;
      expect(existsSync(d.path)).toBe(true);
      expect((await deliveries.byId(w.cdb.db, d.delivery))!.channels).toMatchObject({ email: { status: 'failed', error: expect.stringMatching(/^not queued/) } });
    } finally {
      w.close();
    }
  });

  it('R6.5 the scheduler sends every agency the previous month\'s records on the first of the month (cron 0 1 1 * *, Asia/Taipei); a re-run builds nothing twice', async () => {
    const { w, a1, a2, b1 } = await world();
    // As of the first of next month, 01:00 Taipei: this month is the previous one.
    const today = taipeiDate(new Date());
    const clock = new TestClock(new Date(startOfTaipeiDay(addMonths(`${today.slice(0, 7)}-01`, 1)).getTime() + 3600e3));
    const config = loadConfig({ dataDir: w.dataDir }, { REDIS_URL: REDIS, NIA_LINK_LOG_LEVEL: 'silent' });
    const svc = await startService(config, ['worker', 'scheduler'], () => undefined, clock);
    const queue = openQueue(QUEUES.maintenance, config, REDIS);
    const events = new QueueEvents(QUEUES.maintenance, { connection: connection(REDIS), prefix: queuePrefix(config) });
    try {
      const s = (await queue.getJobSchedulers()).find((x) => x.key === 'usage-records');
      expect(s).toMatchObject({ pattern: '0 1 1 * *', tz: 'Asia/Taipei' });
      await events.waitUntilReady();
      const job = await queue.add('send-usage-records', {});
      const result = (await job.waitUntilFinished(events, 60000)) as { from: string; to: string; agencies: string[]; deliveries: number[] };
      const from = `${today.slice(0, 7)}-01`;
      expect(result).toMatchObject({ from, agencies: ['A001', 'A002'] });
      expect(result.to.slice(0, 7)).toBe(today.slice(0, 7));
      const rows: deliveries.DeliveryRow[] = [];
      for (const id of result.deliveries) rows.push((await deliveries.byId(w.cdb.db, id))!);
      expect(rows.map((r) => [r.linkId, r.dataset, r.trigger, r.status]).sort()).toEqual(
        [a1, a2, b1].map((id) => [id, 'usage-log', 'schedule', 'built']).sort(),
      );
      for (const r of rows) expect(existsSync(path.join(w.dataDir, 'outbox', String(r.linkId), r.fileName!))).toBe(true);
      const again = (await (await queue.add('send-usage-records', {})).waitUntilFinished(events, 60000)) as { deliveries: number[] };
      expect(again.deliveries.sort()).toEqual(result.deliveries.sort());
      expect(await listLog(w.cdb.db, { type: 'report.sent' })).toHaveLength(3);
    } finally {
      await events.close();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      await svc.stop();
      w.close();
    }
  });
});
