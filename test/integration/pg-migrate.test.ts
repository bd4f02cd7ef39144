import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { deliveries } from '../../src/db/repositories';
import { walkPgLog } from '../../src/db/pg/walk';
import { createCheckpoint } from '../../src/usagelog';
import { archiveLog } from '../../src/usagelog/archive';
import { createScratchDb, type ScratchDb, withPg } from '../helpers/pg';
import { approvedLink, BIN, cleanupKeys, makeAgencyKeys, servicesOn, type AgencyKeys } from '../helpers/world';
import { logWorld, type LogWorld } from './usagelog-world';

// `nia-link db migrate --to postgres://…` moves an installation from its SQLite control database into
// an empty PostgreSQL database: every table, the usage log byte for byte, verified on the other side.

let lw: LogWorld;
let keys: AgencyKeys;
let target: ScratchDb;
let linkId: number;

const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, '--data-dir', lw.dataDir, ...args], { encoding: 'utf8', env: { ...process.env, NIA_LINK_LOG_LEVEL: 'silent' } });
const onPg = withPg;
const tablesOf = (): string[] => (lw.cdb.sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != '__drizzle_migrations' ORDER BY name").pluck().all() as string[]);

beforeAll(async () => {
  keys = makeAgencyKeys();
  lw = await logWorld();
  // History older than the retention floor, archived away; then a long live log and a checkpoint.
  await lw.fill(50, '2019-01-01T00:00:00.000Z');
  await archiveLog(lw.cdb, { keysDir: lw.keysDir, dir: path.join(lw.dataDir, 'archive'), before: '2020-01-01', retentionYears: 5, now: new Date(), actor: 'test' });
  await lw.fill(20000);
  const w = servicesOn(lw.cdb);
  linkId = await approvedLink(w, keys, { account: 'mig1', fields: [{ name: 'person_id' }, { name: 'name_en' }] });
  await lw.cdb.write((tx) =>
    deliveries.insert(tx, { linkId, revision: 1, idempotencyKey: 'extract:mig', trigger: 'manual', mode: 'full', status: 'built', dataset: 'entry_exit', fields: ['person_id', 'name_en'], rows: 3, fileName: 'x.csv.pgp', bytes: 10, plainSha256: 'a'.repeat(64), cipherSha256: 'b'.repeat(64), manifestSha256: 'c'.repeat(64), watermarkFrom: null, watermarkTo: '2026-01-01T00:00:00.000Z', createdAt: new Date().toISOString(), builtAt: new Date().toISOString(), durationMs: 5, expiresAt: null, purgedAt: null, error: null, channels: { 'sftp-push': { status: 'sent', attempts: 1 } } }),
  );
  await createCheckpoint(lw.cdb, lw.keysDir, new Date());
  target = await createScratchDb();
}, 120000);
afterAll(async () => {
  await target?.drop();
  lw?.close();
  cleanupKeys(keys);
});

it('db migrate copies every table of an installation into an empty PostgreSQL database, and the usage log verifies there with the same head', async () => {
  const r = cli('db', 'migrate', '--to', target.url, '--json');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const report = JSON.parse(r.stdout);
  expect(report.usageLog).toMatchObject({ verified: true, sameAsSource: true });
  const head = lw.cdb.sqlite.prepare('SELECT seq, hash FROM usage_log ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string };
  expect(report.usageLog.head).toBe(head.hash);

  await onPg(target.url, async (c) => {
    // Every table, every row.
    for (const t of tablesOf()) {
      const mine = (lw.cdb.sqlite.prepare(`SELECT count(*) FROM "${t}"`).pluck().get() as number);
      const theirs = Number((await c.query(`SELECT count(*) AS n FROM "${t}"`)).rows[0].n);
      expect([t, theirs]).toEqual([t, mine]);
    }
    // The usage log byte for byte: the same text in every column of every record.
    const local = lw.cdb.sqlite.prepare('SELECT seq, at, type, agency, link_id, revision, actor, ip, channel, object, detail, digest, prev_hash, hash FROM usage_log ORDER BY seq').raw(true).all() as unknown[][];
    const copied = (await c.query({ text: 'SELECT seq::int, at, type, agency, link_id, revision, actor, ip, channel, object, detail, digest, prev_hash, hash FROM usage_log ORDER BY seq', rowMode: 'array' })).rows;
    expect(copied).toEqual(local);
    // JSON columns keep their text; booleans and ids survive; new ids continue after the copied ones.
    const d = (await c.query('SELECT id, channels, fields FROM delivery')).rows[0];
    const row = lw.cdb.sqlite.prepare('SELECT id, channels, fields FROM delivery').get() as { id: number; channels: string; fields: string };
    expect(d).toEqual(row);
    // Documents (the stamped form, the rules) keep their bytes.
    const docs = lw.cdb.sqlite.prepare('SELECT id, content FROM document ORDER BY id').raw(true).all() as [number, Buffer][];
    expect(docs.length).toBeGreaterThan(0);
    expect((await c.query({ text: 'SELECT id, content FROM document ORDER BY id', rowMode: 'array' })).rows).toEqual(docs);
    const agencies = lw.cdb.sqlite.prepare('SELECT id, government FROM agency ORDER BY id').raw(true).all() as [number, number][];
    expect((await c.query({ text: 'SELECT id, government FROM agency ORDER BY id', rowMode: 'array' })).rows).toEqual(agencies.map(([id, g]) => [id, g === 1]));
    const version = lw.cdb.sqlite.prepare('SELECT version FROM registry_version WHERE id = 1').pluck().get() as number;
    expect(Number((await c.query('SELECT version FROM registry_version WHERE id = 1')).rows[0].version)).toBe(version);
    const next = await c.query("INSERT INTO agency (code, name_zh, government, created_at) VALUES ('after-copy', '新機關', true, '2026-12-06T00:00:00.000Z') RETURNING id");
    expect(next.rows[0].id).toBe(agencies[agencies.length - 1][0] + 1);
  });
});

it('db migrate refuses a database that already holds an installation, and changes nothing in it', async () => {
  const before = await onPg(target.url, async (c) => Number((await c.query('SELECT count(*) AS n FROM usage_log')).rows[0].n));
  const r = cli('db', 'migrate', '--to', target.url);
  expect(r.status).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/not empty/);
  expect(await onPg(target.url, async (c) => Number((await c.query('SELECT count(*) AS n FROM usage_log')).rows[0].n))).toBe(before);
});

it('a record changed in PostgreSQL after the copy is named by its seq when the copied log is walked', async () => {
  await onPg(target.url, async (c) => {
    const seq = Number((await c.query('SELECT min(seq) + 100 AS s FROM usage_log')).rows[0].s);
    await c.query('ALTER TABLE usage_log DISABLE TRIGGER usage_log_no_update');
    await c.query(`UPDATE usage_log SET actor = 'someone-else' WHERE seq = $1`, [seq]);
    await c.query('ALTER TABLE usage_log ENABLE TRIGGER usage_log_no_update');
    for (const threads of [1, 2]) {
      const v = await walkPgLog(target.url, { threads });
      expect(v.verified).toBe(false);
      expect(v.bad?.seq).toBe(seq);
    }
  });
});

it('db migrate of an installation that is being written to copies one consistent snapshot: the copy verifies and ends at a head the log had', async () => {
  const busy = await createScratchDb();
  // Another process appends to the usage log the whole time (as a running service does).
  const writer = spawn(process.execPath, ['-e', `
    const { openControlDb } = require(${JSON.stringify(path.join(__dirname, '../../dist/src/db'))});
    const { appendLog } = require(${JSON.stringify(path.join(__dirname, '../../dist/src/usagelog'))});
    const cdb = openControlDb(${JSON.stringify(lw.dataDir)});
    process.stdout.write('ready\\n');
    (async () => {
      for (;;) await cdb.write((tx) => appendLog(tx, { type: 'test.busy', actor: 'writer', detail: { n: Date.now() } }, new Date()));
    })();
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((r) => writer.stdout!.once('data', () => r()));
    await new Promise((r) => setTimeout(r, 300));
    const before = lw.cdb.sqlite.prepare('SELECT max(seq) FROM usage_log').pluck().get() as number;
    const r = cli('db', 'migrate', '--to', busy.url, '--json');
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.usageLog).toMatchObject({ verified: true, sameAsSource: true });
    const after = lw.cdb.sqlite.prepare('SELECT max(seq) FROM usage_log').pluck().get() as number;
    expect(after).toBeGreaterThan(before); // the writer really wrote during the copy
    // The copy's head is a record the log really had, and every copied record equals the original.
    const copied = await onPg(busy.url, async (c) => (await c.query({ text: 'SELECT seq::int, hash FROM usage_log ORDER BY seq', rowMode: 'array' })).rows as [number, string][]);
    const last = copied[copied.length - 1];
    expect(lw.cdb.sqlite.prepare('SELECT hash FROM usage_log WHERE seq = ?').pluck().get(last[0])).toBe(last[1]);
    expect(report.usageLog.head).toBe(last[1]);
  } finally {
    writer.kill('SIGKILL');
    await busy.drop();
  }
}, 60_000);

it('an unreachable target is one line that does not show the password', () => {
  const r = cli('db', 'migrate', '--to', 'postgres://postgres:s3cret-pw@127.0.0.1:1/nowhere');
  expect(r.status).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/cannot reach/);
  expect(r.stderr).not.toContain('s3cret-pw');
});
