import Database from 'better-sqlite3';
import { QueueEvents } from 'bullmq';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { addMonths, taipeiDate } from '../../src/domain';
import { startService } from '../../src/main';
import { connection, openQueue, QUEUES, queuePrefix } from '../../src/queue';
import { listAnomalies, listCheckpoints } from '../../src/usagelog';
import { cli as cliOf, testDatabase, tmpDir, withPg, type TestDatabase } from '../helpers/world';
import { logWorld } from './usagelog-world';

const REDIS = process.env.NIA_TEST_REDIS_URL!;

describe('nia-link log / report / anomaly / backup, as a user runs them', () => {
  let dir: string;
  let out: string;
  // The installation's control database: the SQLite file in `dir`, or (PostgreSQL pass) a scratch database.
  let db: TestDatabase;
  // The database of the copy a test tampers with.
  let copyDb: TestDatabase | undefined;
  const cli = (d: string, args: string[], env = db.env) => cliOf(d, args, env);
  beforeAll(async () => {
    db = await testDatabase();
    dir = tmpDir();
    out = tmpDir('nia-link-ulcli-');
    expect(cli(dir, ['init']).code).toBe(0);
    for (const c of ['A001', 'A002', 'A003', 'A004']) expect(cli(dir, ['agency', 'add', '--code', c, '--name', `機關${c}`]).code).toBe(0);
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
    await copyDb?.drop();
    await db?.drop();
  });
  const line1 = (s: string) => s.trim().split('\n')[0];

  it('checkpoint, export, verify; truncation after the exported checkpoint fails naming the seq', async () => {
    expect(cli(dir, ['log', 'checkpoint']).stdout).toMatch(/^checkpoint signed at seq 4, hash [0-9a-f]{64}/);
    expect(cli(dir, ['log', 'checkpoint']).stdout).toMatch(/^no new records since the checkpoint at seq 4/);
    const cp = path.join(out, 'cp.json');
    expect(cli(dir, ['log', 'checkpoints', '--export', cp]).stdout).toMatch(/1 checkpoint\(s\) exported/);
    const ok = cli(dir, ['log', 'verify', '--checkpoints', cp]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/usage log verified: 4 records, seq 1–4.*checkpoints: 1 in the database, 1 exported, newest seq 4/);
    expect(JSON.parse(cli(dir, ['log', 'checkpoints', '--json']).stdout)).toHaveLength(1);
    // A copy of the data dir, truncated by someone who dropped the guards.
    const copy = tmpDir();
    cpSync(dir, copy, { recursive: true });
    copyDb = await db.copy();
    if (copyDb.url) {
      await withPg(copyDb.url, async (c) => {
        const triggers = (await c.query<{ name: string; tbl: string }>("SELECT tgname AS name, tgrelid::regclass::text AS tbl FROM pg_trigger WHERE NOT tgisinternal AND tgrelid::regclass::text IN ('usage_log','log_checkpoint')")).rows;
        expect(triggers.length).toBeGreaterThan(0);
        for (const t of triggers) await c.query(`DROP TRIGGER "${t.name}" ON ${t.tbl}`);
        await c.query('DELETE FROM usage_log WHERE seq > 2');
        await c.query('DELETE FROM log_checkpoint');
      });
    } else {
      const sq = new Database(path.join(copy, 'nia-link.db'));
      for (const t of sq.prepare("SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name IN ('usage_log','log_checkpoint')").all() as { name: string }[]) sq.exec(`DROP TRIGGER "${t.name}"`);
      sq.exec('DELETE FROM usage_log WHERE seq > 2; DELETE FROM log_checkpoint');
      sq.close();
    }
    expect(cli(copy, ['log', 'verify'], copyDb.env).code).toBe(0);
    const bad = cli(copy, ['log', 'verify', '--checkpoints', cp], copyDb.env);
    expect(bad.code).toBe(1);
    expect(line1(bad.stderr)).toMatch(/^usage log FAILED verification at seq 3: the log ends at seq 2, .*records 3–4 were removed/);
    expect(JSON.parse(cli(copy, ['log', 'verify', '--checkpoints', cp, '--json'], copyDb.env).stdout)).toMatchObject({ ok: false, bad: { seq: 3 } });
    rmSync(copy, { recursive: true, force: true });
  });

  it('archive refuses the five-year floor with one line; mistakes are one line too', () => {
    const r = cli(dir, ['log', 'archive', '--before', addMonths(taipeiDate(new Date()), -12)]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^nia-link: the archive's end \S+ is inside the retention period: usage-log records are kept 5 years \(R6\.2\).* \(--before\)$/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(cli(dir, ['log', 'archive', '--before', '2001-01-01']).stdout).toMatch(/no usage-log records before 2001-01-01: nothing archived/);
    expect(cli(dir, ['log', 'verify', '--checkpoints', path.join(out, 'nope.json')]).stderr.trim()).toMatch(/^nia-link: checkpoints file .*nope\.json: no such file$/);
    expect(cli(dir, ['log', 'verify', '--key', 'x']).stderr.trim()).toBe('nia-link: --key goes with --evidence');
    expect(cli(dir, ['report', 'usage', '--agency', 'A001', '--from', '2026-01-01', '--to', '2026-12-31', '--format', 'xml']).stderr.trim()).toBe('nia-link: --format xml: use json, csv, html');
    expect(cli(dir, ['anomaly', 'list', '--rule', 'nope']).code).toBe(1);
  });

  it('report usage in json, csv and html', () => {
    const args = ['report', 'usage', '--agency', 'A001', '--from', '2026-01-01', '--to', '2026-12-31'];
    expect(JSON.parse(cli(dir, [...args, '--format', 'json']).stdout)).toMatchObject({ type: 'nia-link.usage-report', scope: { agency: 'A001' } });
    expect(cli(dir, [...args, '--format', 'csv']).stdout).toMatch(/^section,key,metric,value\r\n/);
    const file = path.join(out, 'r.html');
    expect(cli(dir, [...args, '--format', 'html', '--out', file]).code).toBe(0);
    expect(readFileSync(file, 'utf8')).toMatch(/^<!doctype html>/);
  });

  it('backup, restore into an empty data dir, verify; anomaly scan and list', () => {
    const bk = path.join(out, 'backup');
    expect(cli(dir, ['backup', '--out', bk]).stdout).toMatch(/^backup written to .*usage log verified through seq 4/);
    const target = tmpDir();
    rmSync(target, { recursive: true });
    // NIA's key as the operator keeps it, apart from the backup.
    const key = path.join(out, 'nia.pub.asc');
    writeFileSync(key, cli(dir, ['key', 'export-signing']).stdout);
    // The backup's database is a SQLite file whatever the installation's dialect: restored, the
    // target is a SQLite installation (no database URL).
    const sqlite = {};
    const r = cli(target, ['restore', '--from', bk, '--key', key], sqlite);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^restored \d+ files into .*usage log verified through seq 4/);
    expect(cli(target, ['log', 'verify'], sqlite).code).toBe(0);
    expect(cli(target, ['restore', '--from', bk], sqlite).stderr).toMatch(/already holds an installation/);
    expect(cli(target, ['anomaly', 'scan'], sqlite).stdout).toMatch(/^scanned 4 record\(s\) through seq 4: 0 new anomalies/);
    expect(JSON.parse(cli(target, ['anomaly', 'list', '--json'], sqlite).stdout)).toEqual([]);
    rmSync(target, { recursive: true, force: true });
  });
});

describe('scheduled usage-log jobs on the maintenance queue', () => {
  it('the scheduler registers checkpoint and anomaly scan at their intervals; the worker runs them', async () => {
    const w = await logWorld();
    const config = loadConfig({ dataDir: w.dataDir }, { REDIS_URL: REDIS, NIA_LINK_LOG_LEVEL: 'silent', NIA_LINK_CHECKPOINT_MINUTES: '30', NIA_LINK_ANOMALY_MINUTES: '2' });
    const lines: string[] = [];
    const svc = await startService(config, ['worker', 'scheduler'], (l) => lines.push(l));
    const queue = openQueue(QUEUES.maintenance, config, REDIS);
    const events = new QueueEvents(QUEUES.maintenance, { connection: connection(REDIS), prefix: queuePrefix(config) });
    try {
      expect(lines.find((l) => l.startsWith('scheduler:'))).toMatch(/usage-log checkpoint every 30 min, anomaly scan every 2 min/);
      const schedulers = await queue.getJobSchedulers();
      expect(schedulers.filter((s) => s.key === 'log-checkpoint' || s.key === 'anomaly-scan').map((s) => [s.key, s.every]).sort()).toEqual([
        ['anomaly-scan', 120000],
        ['log-checkpoint', 1800000],
      ]);
      await events.waitUntilReady();
      await w.append({ type: 'file.downloaded', agency: 'A001', linkId: 1, actor: 'a001', ip: '10.0.0.1', object: 'f', detail: { bytes: 1 } }, '2026-03-14T02:00:00.000Z');
      const cp = await queue.add('checkpoint-log', {});
      expect(await cp.waitUntilFinished(events, 30000)).toEqual({ seq: 1, created: true });
      const scan = await queue.add('detect-anomalies', {});
      expect(await scan.waitUntilFinished(events, 30000)).toMatchObject({ scanned: 1, detected: 1 });
      expect((await listCheckpoints(w.cdb)).map((c) => c.seq)).toEqual([1]);
      expect((await listAnomalies(w.cdb)).map((a) => a.rule)).toEqual(['off-hours']);
    } finally {
      await events.close();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      await svc.stop();
      w.close();
    }
  });
});
