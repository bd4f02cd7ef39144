import { cpSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { PostgresControlDb } from '../../src/db';
import { openPostgresControlDb } from '../../src/db/pg/control';
import * as installation from '../../src/db/repositories/installation';
import { appendLog, createCheckpoint, exportEvidence, usageReport, verifyEvidence, verifyUsageLog } from '../../src/usagelog';
import { archiveLog } from '../../src/usagelog/archive';
import { createScratchDb, type ScratchDb } from '../helpers/pg';
import { approvedLink, cleanupKeys, makeAgencyKeys, servicesOn, TestClock, tmpDir, type AgencyKeys } from '../helpers/world';
import { logWorld, type LogWorld } from './usagelog-world';

// R6.2 R6.3 R6.4 the usage log's archives, checkpoints, evidence packages and reports on a PostgreSQL
// control database. The installation is a drill, whose records are dated by its (moved) clock, so the
// history can reach back years; a production installation takes every time from the database.

let lw: LogWorld; // NIA's keys and a data directory
let scratch: ScratchDb;
let cdb: PostgresControlDb;
let keys: AgencyKeys;
let dir: string;
let linkId: number;

const fill = (n: number, start: string, entry: Record<string, unknown> = {}) =>
  cdb.write(async (tx) => {
    const t0 = Date.parse(start);
    for (let i = 0; i < n; i++) await appendLog(tx, { type: 'file.downloaded', agency: 'A001', linkId, actor: 'a001', channel: 'sftp-pull', object: `f${i}.csv.pgp`, detail: { i, bytes: 10 }, ...entry }, new Date(t0 + i * 1000));
  });

beforeAll(async () => {
  lw = await logWorld();
  dir = tmpDir('nia-link-pgops-');
  keys = makeAgencyKeys();
  scratch = await createScratchDb();
  cdb = await openPostgresControlDb(scratch.url);
  await cdb.write((tx) => installation.record(tx, 'drill', new Date('2019-01-01T00:00:00Z')));
  // Years of history first (a record is never dated before the one it follows), then the link.
  await fill(30, '2019-02-01T00:00:00.000Z', { linkId: null, object: 'old.csv.pgp' });
  linkId = await approvedLink(servicesOn(cdb, new TestClock()), keys);
  await fill(30, new Date().toISOString());
});
afterAll(async () => {
  await cdb?.close();
  await scratch?.drop();
  lw?.close();
  cleanupKeys(keys);
  rmSync(dir, { recursive: true, force: true });
});

it('R6.2 R6.3 archives what is past retention, checkpoints the head, and verifies anchors, archive and checkpoint on PostgreSQL', async () => {
  const archives = path.join(dir, 'archive');
  const a = await archiveLog(cdb, { keysDir: lw.keysDir, dir: archives, before: '2020-01-01', retentionYears: 5, now: new Date(), actor: 'test' });
  expect(a).not.toBeNull();
  expect(a!.records).toBeGreaterThanOrEqual(30);
  const c = await createCheckpoint(cdb, lw.keysDir, new Date());
  expect(c.created).toBe(true);
  const v = await verifyUsageLog(cdb, { keysDir: lw.keysDir, archives: [archives] });
  expect(v).toMatchObject({ ok: true, archived: { checked: 1 }, checkpoints: { database: 1, matched: 1 } });
  expect(v.lastSeq).toBe(c.checkpoint.seq);
});

it("R6.4 an evidence package of a link's records exports from PostgreSQL and verifies offline", async () => {
  const out = path.join(dir, 'evidence');
  const today = new Date().toISOString().slice(0, 10);
  const s = await exportEvidence(cdb, { keysDir: lw.keysDir, linkId, from: '2021-01-01', to: today, out, now: new Date() });
  expect(s.full).toBeGreaterThanOrEqual(30);
  expect(readdirSync(out)).toContain('records.jsonl');
  const niaKey = path.join(dir, 'nia.pub.asc');
  cpSync(path.join(lw.keysDir, 'nia-signing.pub.asc'), niaKey);
  expect(await verifyEvidence(out, niaKey)).toMatchObject({ ok: true, linkId, full: s.full });
});

it("R6.5 a usage report counts the link's downloads from PostgreSQL", async () => {
  const today = new Date().toISOString().slice(0, 10);
  const r = await usageReport(cdb, { linkId }, '2021-01-01', today, new Date());
  expect(r.log.records).toBeGreaterThanOrEqual(30);
});
