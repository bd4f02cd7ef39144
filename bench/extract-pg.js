#!/usr/bin/env node
// Extract benchmark with PostgreSQL as the source: nia-link's extract (all entry_exit fields, signed +
// encrypted, source.url set) against `psql -c "\copy (SELECT …) to stdout csv" | gpg --sign --encrypt -z 0`
// on the same data, same keys, same run. The data sit in a scratch database made for the run and
// dropped after it.
// Usage: npm run bench:extract-pg [-- ROWS [ROWS2 …]]   (default 1000000); BENCH_ROUNDS (default 3);
// NIA_BENCH_PG_URL: a server and an account that may create databases (default postgres://postgres@127.0.0.1:5432/postgres).
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { rmSync, statSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ADMIN_URL = process.env.NIA_BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
if (sizes.length === 0) sizes.push(1_000_000);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS) || 3);

const psql = (url, sql) => execFileSync('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql], { stdio: ['ignore', 'ignore', 'pipe'] });
const name = `nia_bench_${randomBytes(6).toString('hex')}`;
psql(ADMIN_URL, `CREATE DATABASE ${name}`);
const u = new URL(ADMIN_URL);
u.pathname = `/${name}`;
const url = u.toString();
// Every nia-link command of the run (seed, the extract) reads this source.
process.env.NIA_LINK_SOURCE_URL = url;

const { ROOT, extractWorld } = require('./extract-world');
let world;
try {
  world = extractWorld(['--scope', 'all', '--scope-justification', 'bench']);
  const { work, nl, timed, fpr, niaFpr, fields, link, data } = world;
  const results = [];
  for (const rows of sizes) {
    nl('seed', '--rows', String(rows), '--dataset', 'entry_exit', '--seed', '7');
    psql(url, 'VACUUM ANALYZE entry_exit');
    const out = path.join(work, 'shell.csv.pgp');
    const quoted = url.replace(/'/g, `'\\''`);
    // Rounds alternate the two, so a burst of other work on the machine hits both alike; each side's
    // best round is reported, and every round is kept in the JSON.
    const rounds = [];
    for (let i = 0; i < ROUNDS; i++) {
      const shell = timed(
        `psql '${quoted}' -X -q -c "\\copy (SELECT ${fields.join(',')} FROM entry_exit ORDER BY record_id) to stdout with (format csv, header)" | gpg --batch --yes -z 0 --trust-model always --sign --local-user ${niaFpr} --encrypt --recipient ${fpr} -o '${out}'`,
      );
      shell.bytes = statSync(out).size;
      rmSync(out);
      const r = spawnSync(process.execPath, [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_CPU_PROF] : []), path.join(__dirname, 'extract-once.js'), data, link], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(r.stderr);
      const ours = JSON.parse(r.stdout);
      if (ours.rows !== rows) throw new Error(`the extract has ${ours.rows} rows, not ${rows}`);
      rmSync(ours.path);
      rounds.push({ shell, ours, load: os.loadavg()[0] });
    }
    const best = (side) => rounds.map((r) => r[side]).reduce((a, b) => (b.ms < a.ms ? b : a));
    const shell = best('shell');
    const ours = best('ours');
    const mb = (b, ms) => (b / 1048576 / (ms / 1000)).toFixed(1);
    results.push({ rows, shell, ours, rounds });
    console.log(`${rows} rows, ${fields.length} fields, PostgreSQL source, best of ${ROUNDS} alternating rounds:`);
    console.log(`  shell  psql \\copy | gpg   ${(shell.ms / 1000).toFixed(2)} s  ${Math.round(rows / (shell.ms / 1000))} rows/s  ${mb(shell.bytes, shell.ms)} MB/s  peak RSS ${(shell.maxRssKiB / 1024).toFixed(0)} MiB  CPU ${(shell.cpuMs / 1000).toFixed(2)} s (without the server's)`);
    console.log(`  nia-link extract          ${(ours.ms / 1000).toFixed(2)} s  ${Math.round(rows / (ours.ms / 1000))} rows/s  ${mb(ours.bytes, ours.ms)} MB/s  peak RSS ${(ours.maxRssKiB / 1024).toFixed(0)} MiB  CPU ${(ours.cpuMs / 1000).toFixed(2)} s (without the server's)`);
    console.log(`  ratio (shell time / nia-link time): ${(shell.ms / ours.ms).toFixed(2)}x   per round: ${rounds.map((r) => (r.shell.ms / r.ours.ms).toFixed(2)).join(' ')}   load average: ${rounds.map((r) => r.load.toFixed(1)).join(' ')}`);
  }
  writeFileSync(path.join(ROOT, 'bench', 'extract-pg-results.json'), JSON.stringify({ at: new Date().toISOString(), cpus: os.cpus().length, node: process.version, results }, null, 2) + '\n');
} finally {
  world?.close();
  psql(ADMIN_URL, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}
