#!/usr/bin/env node
/*
 * Usage-log benchmark: append/s and verify/s of nia-link against sqlite3 doing the same work without
 * the chain. `npm run bench:usagelog` or `node bench/usagelog.js [RECORDS] [APPENDS]`
 * (defaults 1 000 000 records to verify, 20 000 single-transaction appends).
 */
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const { mkdtempSync, rmSync, writeFileSync, mkdirSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const { openControlDb } = require(path.join(root, 'dist/src/db'));
const { appendLog, verifyLog, verifyUsageLog, createCheckpoint } = require(path.join(root, 'dist/src/usagelog'));
const { generateSigningKey, KEY_FILES } = require(path.join(root, 'dist/src/crypto'));

const RECORDS = Number(process.argv[2] ?? 1_000_000);
const APPENDS = Number(process.argv[3] ?? 20_000);
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const secs = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
const now = () => process.hrtime.bigint();
const load = () => os.loadavg()[0].toFixed(1);

/** The record a download writes (the SFTP server's shape), numbered i. */
function entry(i) {
  return {
    type: 'file.downloaded', agency: 'A001', linkId: 1 + (i % 7), revision: 1, actor: 'a001', ip: '10.0.0.1', channel: 'sftp-pull',
    object: `entry_exit-L1-r1-20260310T0200-D${i}.csv.pgp`,
    detail: { delivery: i, file: 'data', bytes: 117_000_000 + i, size: 117_000_000 + i, from: 0, to: 117_000_000 + i, result: 'complete' },
  };
}

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nia-link-bench-ul-'));
  const results = { measuredAt: new Date().toISOString(), node: process.version, cpus: os.cpus().length, records: RECORDS, appends: APPENDS, loadBefore: load() };
  try {
    const keysDir = path.join(dir, 'keys');
    mkdirSync(keysDir, { mode: 0o700 });
    const k = await generateSigningKey('bench', 'bench@example.org', new Date(Date.now() - 86400000));
    writeFileSync(path.join(keysDir, KEY_FILES.signingPrivate), k.privateKey, { mode: 0o600 });
    writeFileSync(path.join(keysDir, KEY_FILES.signingPublic), k.publicKey);

    // 1. Appends as actions make them: one IMMEDIATE transaction per record (head read, digest, hash, insert).
    const a = openControlDb(path.join(dir, 'append'), { create: true });
    const lat = [];
    let t0 = now();
    for (let i = 0; i < APPENDS; i++) {
      const t = now();
      await a.write((tx) => appendLog(tx, entry(i), new Date()));
      lat.push(Number(now() - t) / 1e3);
    }
    const appendSec = secs(t0);
    lat.sort((x, y) => x - y);
    results.append = { perSecond: APPENDS / appendSec, p50us: lat[Math.floor(lat.length / 2)], p99us: lat[Math.floor(lat.length * 0.99)] };
    // The same rows, values and pragmas, inserted by the sqlite3 shell: each in its own transaction, then all in one.
    const rows = a.sqlite.prepare('SELECT * FROM usage_log ORDER BY seq').raw(true).all();
    a.close();
    const q = (v) => (v === null ? 'NULL' : typeof v === 'number' ? String(v) : `'${String(v).replace(/'/g, "''")}'`);
    const inserts = rows.map((r) => `INSERT INTO usage_log VALUES (${r.map(q).join(',')});`).join('\n');
    const schema = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE usage_log (seq integer PRIMARY KEY, at text NOT NULL, type text NOT NULL, agency text, link_id integer, revision integer, actor text, ip text, channel text, object text, detail text NOT NULL DEFAULT '{}', digest text NOT NULL, prev_hash text NOT NULL, hash text NOT NULL); CREATE INDEX l ON usage_log (link_id, seq); CREATE INDEX t ON usage_log (type, seq); CREATE INDEX a ON usage_log (at);\n";
    for (const [name, sql] of [['sqlite3Each', schema + inserts], ['sqlite3OneTransaction', schema + 'BEGIN;\n' + inserts + '\nCOMMIT;']]) {
      const f = path.join(dir, `${name}.db`);
      t0 = now();
      const r = spawnSync('sqlite3', [f], { input: sql, stdio: ['pipe', 'ignore', 'inherit'] });
      if (r.status !== 0) throw new Error(`sqlite3 failed (${name})`);
      results[name] = { perSecond: APPENDS / secs(t0) };
    }

    // 2. A log of RECORDS records (built in batches of one transaction each), then verified.
    const v = openControlDb(path.join(dir, 'verify'), { create: true });
    t0 = now();
    const base = Date.parse('2026-01-01T00:00:00Z');
    for (let i = 0; i < RECORDS; ) {
      const end = Math.min(RECORDS, i + 50_000);
      await v.write(async (tx) => {
        for (; i < end; i++) await appendLog(tx, entry(i), new Date(base + i * 1000));
      });
    }
    results.appendBatched = { perSecond: RECORDS / secs(t0) };
    await createCheckpoint(v, keysDir, new Date());
    t0 = now();
    const single = await verifyLog(v);
    results.verifySingleThread = { seconds: secs(t0), perSecond: RECORDS / secs(t0), ok: single.ok };
    t0 = now();
    const full = await verifyUsageLog(v, { keysDir });
    const fullSec = secs(t0);
    results.verify = { seconds: fullSec, perSecond: RECORDS / fullSec, ok: full.ok, threads: Math.min(os.availableParallelism(), 4) };
    const file = v.file;
    v.close();
    // The CLI as an auditor runs it (process start, config, key, checkpoints included).
    const data = path.dirname(file);
    t0 = now();
    execFileSync(process.execPath, [path.join(root, 'bin/nia-link.js'), '--data-dir', data, 'log', 'verify'], { env: { ...process.env, NIA_LINK_KEYS_DIR: keysDir }, stdio: 'ignore' });
    results.verifyCli = { seconds: secs(t0) };
    // The floor: sqlite3 reading every row and sha256sum hashing the text once (no chain, no digests).
    t0 = now();
    execFileSync('bash', ['-c', `sqlite3 -csv '${file}' 'SELECT * FROM usage_log ORDER BY seq' | sha256sum >/dev/null`]);
    results.sqlite3ReadAndHash = { seconds: secs(t0), perSecond: RECORDS / secs(t0) };
    results.loadAfter = load();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  writeFileSync(path.join(__dirname, 'usagelog-results.json'), JSON.stringify(results, null, 2) + '\n');
  const r = results;
  console.log(`usage-log benchmark: ${fmt(r.records)} records, ${r.cpus} cores, load ${r.loadBefore} → ${r.loadAfter} (shared machine: figures measured under that load)`);
  console.log(`append, one transaction each:   nia-link ${fmt(r.append.perSecond)}/s (p50 ${r.append.p50us.toFixed(0)} µs, p99 ${r.append.p99us.toFixed(0)} µs)   sqlite3 same rows ${fmt(r.sqlite3Each.perSecond)}/s   → ${(r.append.perSecond / r.sqlite3Each.perSecond).toFixed(2)}×`);
  console.log(`append, batched transactions:   nia-link ${fmt(r.appendBatched.perSecond)}/s   sqlite3 same rows in one transaction ${fmt(r.sqlite3OneTransaction.perSecond)}/s   → ${(r.appendBatched.perSecond / r.sqlite3OneTransaction.perSecond).toFixed(2)}×`);
  console.log(`verify ${fmt(r.records)}: ${r.verify.seconds.toFixed(2)} s (${fmt(r.verify.perSecond)}/s, ${r.verify.threads} threads; one thread ${r.verifySingleThread.seconds.toFixed(2)} s); CLI end to end ${r.verifyCli.seconds.toFixed(2)} s; sqlite3 | sha256sum read floor ${r.sqlite3ReadAndHash.seconds.toFixed(2)} s`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
