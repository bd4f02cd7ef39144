#!/usr/bin/env node
/*
 * Usage-log benchmark on PostgreSQL: appends (one transaction each, and batched as the online query's
 * group commit does) against psql inserting the same rows, and the walk of a long copied log, beside
 * SQLite in the same run. `npm run bench:usagelog-pg` or `node bench/usagelog-pg.js [RECORDS] [APPENDS]`
 * (defaults 1 000 000 records to walk, 5 000 single-transaction appends). The server is
 * NIA_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres); the benchmark creates and
 * drops its own database nia_bench_<random> there and touches nothing else.
 */
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const pg = require('pg');

const root = path.resolve(__dirname, '..');
const { openControlDb } = require(path.join(root, 'dist/src/db'));
const { openPgControlDb } = require(path.join(root, 'dist/src/db/pg/connect'));
const { openPostgresControlDb } = require(path.join(root, 'dist/src/db/pg/control'));
const { appendLogMany } = require(path.join(root, 'dist/src/usagelog/log'));
const { walkPgLog } = require(path.join(root, 'dist/src/db/pg/walk'));
const { appendLog, verifyLog } = require(path.join(root, 'dist/src/usagelog'));

const RECORDS = Number(process.argv[2] ?? 1_000_000);
const APPENDS = Number(process.argv[3] ?? 5_000);
const GROUP = 64;
const ADMIN = process.env.NIA_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const now = () => process.hrtime.bigint();
const secs = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
const load = () => os.loadavg()[0].toFixed(1);

/** The record a download writes (the SFTP server's shape), numbered i. */
function entry(i) {
  return {
    type: 'file.downloaded', agency: 'A001', linkId: 1 + (i % 7), revision: 1, actor: 'a001', ip: '10.0.0.1', channel: 'sftp-pull',
    object: `entry_exit-L1-r1-20260310T0200-D${i}.csv.pgp`,
    detail: { delivery: i, file: 'data', bytes: 117_000_000 + i, size: 117_000_000 + i, from: 0, to: 117_000_000 + i, result: 'complete' },
  };
}

async function admin(sql) {
  const c = new pg.Client({ connectionString: ADMIN });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}
function urlOf(name) {
  const u = new URL(ADMIN);
  u.pathname = `/${name}`;
  return u.toString();
}

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nia-link-bench-ulpg-'));
  const names = [];
  const fresh = async () => {
    const name = `nia_bench_${randomBytes(6).toString('hex')}`;
    await admin(`CREATE DATABASE ${name}`);
    names.push(name);
    return urlOf(name);
  };
  const results = { measuredAt: new Date().toISOString(), node: process.version, cpus: os.cpus().length, records: RECORDS, appends: APPENDS, group: GROUP, loadBefore: load() };
  try {
    // 1. One transaction per record, as an action makes it, through the control database's port: the
    // write runner's advisory lock, then the usage log's (head, database clock, insert).
    const a = await openPostgresControlDb(await fresh(), { max: 2 });
    const lat = [];
    let t0 = now();
    for (let i = 0; i < APPENDS; i++) {
      const t = now();
      await a.write((tx) => appendLog(tx, entry(i), new Date()));
      lat.push(Number(now() - t) / 1e3);
    }
    const each = secs(t0);
    lat.sort((x, y) => x - y);
    results.append = { perSecond: APPENDS / each, p50us: lat[Math.floor(lat.length / 2)], p99us: lat[Math.floor(lat.length * 0.99)] };
    // 2. Group commit: GROUP records per transaction (the online query's appender).
    t0 = now();
    for (let i = 0; i < APPENDS; i += GROUP) {
      const batch = Array.from({ length: Math.min(GROUP, APPENDS - i) }, (_, k) => entry(i + k));
      await a.write((tx) => appendLogMany(tx, batch.map((e) => ({ entry: e, now: new Date() }))));
    }
    results.appendGrouped = { perSecond: APPENDS / secs(t0) };
    // psql inserting the very same rows into the same table: each in its own transaction, then GROUP per transaction.
    const rows = (await a.pg.pool.query({ text: 'SELECT seq, at, type, agency, link_id, revision, actor, ip, channel, object, detail, digest, prev_hash, hash FROM usage_log ORDER BY seq LIMIT $1', values: [APPENDS], rowMode: 'array' })).rows;
    await a.close();
    const lit = (v) => (v === null ? 'NULL' : typeof v === 'number' ? String(v) : `'${String(v).replace(/'/g, "''")}'`);
    const inserts = rows.map((r) => `INSERT INTO usage_log VALUES (${r.map(lit).join(',')});`);
    const grouped = [];
    for (let i = 0; i < inserts.length; i += GROUP) grouped.push('BEGIN;', ...inserts.slice(i, i + GROUP), 'COMMIT;');
    for (const [name, lines] of [['psqlEach', inserts], ['psqlGrouped', grouped]]) {
      const url = await fresh();
      const t = await openPgControlDb(url, { max: 1 }); // the same schema, indexes and triggers
      await t.close();
      const file = path.join(dir, `${name}.sql`);
      writeFileSync(file, lines.join('\n') + '\n');
      t0 = now();
      const r = spawnSync('psql', ['-q', '-X', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', file], { stdio: ['ignore', 'ignore', 'inherit'] });
      if (r.status !== 0) throw new Error(`psql failed (${name})`);
      results[name] = { perSecond: APPENDS / secs(t0) };
    }

    // 3. SQLite beside it, the same appends (one write transaction each).
    const s = openControlDb(path.join(dir, 'sqlite'), { create: true });
    t0 = now();
    for (let i = 0; i < APPENDS; i++) await s.write((tx) => appendLog(tx, entry(i), new Date()));
    results.sqliteAppend = { perSecond: APPENDS / secs(t0) };

    // 4. A long log on SQLite, moved with `db migrate`, walked on PostgreSQL; SQLite's walk beside it.
    const base = Date.parse('2026-01-01T00:00:00Z');
    for (let i = 0; i < RECORDS; ) {
      const end = Math.min(RECORDS, i + 50_000);
      await s.write(async (tx) => {
        for (; i < end; i++) await appendLog(tx, entry(i), new Date(base + i * 1000));
      });
    }
    t0 = now();
    const sv = await verifyLog(s);
    results.sqliteVerify = { seconds: secs(t0), ok: sv.ok, records: sv.records };
    const data = path.dirname(s.file);
    s.close();
    const target = await fresh();
    t0 = now();
    execFileSync(process.execPath, [path.join(root, 'bin/nia-link.js'), '--data-dir', data, 'db', 'migrate', '--to', target], { env: { ...process.env, NIA_LINK_KEYS_DIR: path.join(dir, 'keys') }, stdio: 'ignore' });
    results.migrate = { seconds: secs(t0), records: sv.records };
    t0 = now();
    const one = await walkPgLog(target, { threads: 1 });
    results.pgVerifyOneThread = { seconds: secs(t0), ok: one.verified, records: one.records };
    t0 = now();
    const pv = await walkPgLog(target);
    results.pgVerify = { seconds: secs(t0), ok: pv.verified, records: pv.records, threads: Math.min(os.availableParallelism(), 4) };
    // The floor: psql reading every row of the log and sha256sum hashing the text once (no chain, no digests).
    t0 = now();
    execFileSync('bash', ['-c', `psql -X -q -d '${target}' -c '\\copy (SELECT * FROM usage_log ORDER BY seq) to stdout csv' | sha256sum >/dev/null`]);
    results.psqlReadAndHash = { seconds: secs(t0) };
    results.loadAfter = load();
  } finally {
    for (const n of names) await admin(`DROP DATABASE IF EXISTS ${n} WITH (FORCE)`).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  writeFileSync(path.join(__dirname, 'usagelog-pg-results.json'), JSON.stringify(results, null, 2) + '\n');
  const r = results;
  console.log(`usage-log on PostgreSQL: ${fmt(r.appends)} appends, ${fmt(r.records)} records walked, ${r.cpus} cores, load ${r.loadBefore} → ${r.loadAfter}`);
  console.log(`append, one transaction each:  nia-link ${fmt(r.append.perSecond)}/s (p50 ${r.append.p50us.toFixed(0)} µs, p99 ${r.append.p99us.toFixed(0)} µs)   psql same rows ${fmt(r.psqlEach.perSecond)}/s → ${(r.append.perSecond / r.psqlEach.perSecond).toFixed(2)}×   (SQLite ${fmt(r.sqliteAppend.perSecond)}/s)`);
  console.log(`append, ${r.group} per transaction: nia-link ${fmt(r.appendGrouped.perSecond)}/s   psql same rows ${fmt(r.psqlGrouped.perSecond)}/s → ${(r.appendGrouped.perSecond / r.psqlGrouped.perSecond).toFixed(2)}×`);
  console.log(`db migrate of ${fmt(r.migrate.records)} records: ${r.migrate.seconds.toFixed(2)} s; walk on PostgreSQL ${r.pgVerify.seconds.toFixed(2)} s on ${r.pgVerify.threads} threads, ${r.pgVerifyOneThread.seconds.toFixed(2)} s on one (ok ${r.pgVerify.ok && r.pgVerifyOneThread.ok}); SQLite walk ${r.sqliteVerify.seconds.toFixed(2)} s; psql | sha256sum read floor ${r.psqlReadAndHash.seconds.toFixed(2)} s`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
