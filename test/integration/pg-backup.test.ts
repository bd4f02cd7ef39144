import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { backup, openReadOnly, restore } from '../../src/backup';
import { openControlDb, type PostgresControlDb } from '../../src/db';
import { copyToPostgres } from '../../src/db/pg/copy';
import { openPostgresControlDb } from '../../src/db/pg/control';
import { appendLog, createCheckpoint, verifyUsageLog } from '../../src/usagelog';
import { archiveLog } from '../../src/usagelog/archive';
import { createScratchDb, type ScratchDb } from '../helpers/pg';
import { tmpDir, withPg } from '../helpers/world';
import { logWorld, type LogWorld } from './usagelog-world';

// R6.2 backup of an installation whose control database is PostgreSQL: one repeatable-read snapshot
// of every table, written as the SQLite control database of the backup with the same signed
// manifest and checks; it restores, verifies, and moves back into PostgreSQL with the same chain.

let lw: LogWorld;
let source: ScratchDb;
let back: ScratchDb;
let cdb: PostgresControlDb;
let scratch: string;

beforeAll(async () => {
  scratch = tmpDir('nia-link-pgb-');
  lw = await logWorld();
  await lw.fill(30, '2019-01-01T00:00:00.000Z');
  await lw.fill(30);
  await archiveLog(lw.cdb, { keysDir: lw.keysDir, dir: path.join(lw.dataDir, 'archive'), before: '2020-01-01', retentionYears: 5, now: new Date(), actor: 'test' });
  await createCheckpoint(lw.cdb, lw.keysDir, new Date());
  source = await createScratchDb();
  back = await createScratchDb();
  expect((await copyToPostgres(lw.cdb, source.url)).usageLog.sameAsSource).toBe(true);
  cdb = await openPostgresControlDb(source.url);
});
afterAll(async () => {
  await cdb?.close();
  await source?.drop();
  await back?.drop();
  lw?.close();
  rmSync(scratch, { recursive: true, force: true });
});

const headOf = (url: string) => withPg(url, async (c) => (await c.query<{ seq: string; hash: string }>('SELECT seq::text, hash FROM usage_log ORDER BY seq DESC LIMIT 1')).rows[0]);

it('R6.2 a backup taken while records are appended holds one snapshot that verifies, restores, and moves back into PostgreSQL with the same chain', async () => {
  // Appends keep coming while the backup reads: the snapshot is one moment of the log.
  let appending = true;
  const appends = (async () => {
    for (let i = 0; appending; i++) await cdb.write((tx) => appendLog(tx, { type: 'test.during-backup', detail: { i } }, new Date()));
  })();
  const out = path.join(scratch, 'backup');
  let b: Awaited<ReturnType<typeof backup>>;
  try {
    b = await backup(cdb, { dataDir: lw.dataDir, keysDir: lw.keysDir, out, now: new Date() });
  } finally {
    appending = false;
    await appends;
  }
  expect(readdirSync(out).sort()).toEqual(['archive', 'keys', 'manifest.json', 'manifest.json.asc', 'nia-link.db']);
  expect(b.log).toMatchObject({ ok: true, archived: { checked: 1 }, checkpoints: { database: 1 } });
  expect(b.log.lastSeq).toBeGreaterThanOrEqual(61);

  // The snapshot's rows are PostgreSQL's rows as of one moment: the same records up to its head.
  const copy = openReadOnly(path.join(out, 'nia-link.db'));
  try {
    const rows = copy.sqlite.prepare('SELECT seq, digest, prev_hash AS prevHash, hash FROM usage_log ORDER BY seq').all() as { seq: number; digest: string; prevHash: string; hash: string }[];
    const pgRows = await withPg(source.url, async (c) => (await c.query<{ seq: string; digest: string; prev_hash: string; hash: string }>('SELECT seq::text, digest, prev_hash, hash FROM usage_log WHERE seq <= $1 ORDER BY seq', [b.log.lastSeq])).rows);
    expect(rows).toEqual(pgRows.map((r) => ({ seq: Number(r.seq), digest: r.digest, prevHash: r.prev_hash, hash: r.hash })));
    for (const t of ['log_archive', 'log_checkpoint', 'installation']) {
      const n = (copy.sqlite.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
      expect([t, n]).toEqual([t, Number(await withPg(source.url, async (c) => (await c.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n))]);
    }
  } finally {
    await copy.close();
  }

  // Restored, it is a SQLite installation that verifies; `db migrate` takes it back into PostgreSQL.
  const target = path.join(scratch, 'restored');
  const r = await restore({ from: out, dataDir: target, keysDir: path.join(target, 'keys'), now: new Date(), keyFile: path.join(lw.keysDir, 'nia-signing.pub.asc') });
  expect(r.log).toMatchObject({ ok: true, lastSeq: b.log.lastSeq });
  const restored = openControlDb(target);
  try {
    const v = await verifyUsageLog(restored, { keysDir: path.join(target, 'keys'), archives: [path.join(target, 'archive')] });
    expect(v).toMatchObject({ ok: true, lastSeq: b.log.lastSeq, checkpoints: { database: 1 } });
    const moved = await copyToPostgres(restored, back.url);
    expect(moved.usageLog).toMatchObject({ verified: true, sameAsSource: true, records: v.records });
  } finally {
    await restored.close();
  }
  expect((await headOf(back.url)).hash).toBe(b.log.headHash);
});
