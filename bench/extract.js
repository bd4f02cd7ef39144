#!/usr/bin/env node
// Extract benchmark: nia-link's extract (all entry_exit fields, signed + encrypted) against
// `sqlite3 -csv … | gpg --sign --encrypt -z 0` on the same data, same keys, same run.
// Usage: npm run bench:extract [-- ROWS [ROWS2 …]]   (default 1000000 5000000); BENCH_ROUNDS (default 3)
'use strict';
const { spawnSync } = require('node:child_process');
const { rmSync, statSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { ROOT, extractWorld } = require('./extract-world');
const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
if (sizes.length === 0) sizes.push(1_000_000, 5_000_000);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS) || 3);

const { work, data, nl, timed, close, fpr, niaFpr, fields, link } = extractWorld(['--scope', 'all', '--scope-justification', 'bench']);

try {

  const results = [];
  for (const rows of sizes) {
    nl('seed', '--rows', String(rows), '--dataset', 'entry_exit', '--seed', '7');
    const src = path.join(data, 'source.db');
    const out = path.join(work, 'shell.csv.pgp');
    const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(process.env.BENCH_CPU_PROF)] : [];
    // Rounds alternate the two, so a burst of other work on the machine hits both alike; each
    // side's best round is reported (the least disturbed one), and every round is kept in the JSON.
    const rounds = [];
    for (let i = 0; i < ROUNDS; i++) {
      const shell = timed(`sqlite3 -csv -header '${src}' "SELECT ${fields.join(',')} FROM entry_exit ORDER BY record_id" | gpg --batch --yes -z 0 --trust-model always --sign --local-user ${niaFpr} --encrypt --recipient ${fpr} -o '${out}'`);
      shell.bytes = statSync(out).size;
      rmSync(out);
      const r = spawnSync(process.execPath, [...prof, path.join(__dirname, 'extract-once.js'), data, link], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(r.stderr);
      const ours = JSON.parse(r.stdout);
      rmSync(ours.path);
      rounds.push({ shell, ours, load: os.loadavg()[0] });
    }
    const best = (side) => rounds.map((r) => r[side]).reduce((a, b) => (b.ms < a.ms ? b : a));
    const shell = best('shell');
    const ours = best('ours');
    const mb = (b, ms) => (b / 1048576 / (ms / 1000)).toFixed(1);
    results.push({ rows, shell, ours, rounds });
    console.log(`${rows} rows, ${fields.length} fields, best of ${ROUNDS} alternating rounds:`);
    console.log(`  shell  sqlite3 | gpg   ${(shell.ms / 1000).toFixed(2)} s  ${Math.round(rows / (shell.ms / 1000))} rows/s  ${mb(shell.bytes, shell.ms)} MB/s  peak RSS ${(shell.maxRssKiB / 1024).toFixed(0)} MiB  CPU ${(shell.cpuMs / 1000).toFixed(2)} s`);
    console.log(`  nia-link extract       ${(ours.ms / 1000).toFixed(2)} s  ${Math.round(rows / (ours.ms / 1000))} rows/s  ${mb(ours.bytes, ours.ms)} MB/s  peak RSS ${(ours.maxRssKiB / 1024).toFixed(0)} MiB  CPU ${(ours.cpuMs / 1000).toFixed(2)} s`);
    console.log(`  ratio (shell time / nia-link time): ${(shell.ms / ours.ms).toFixed(2)}x   CPU ratio: ${(shell.cpuMs / ours.cpuMs).toFixed(2)}x   per round: ${rounds.map((r) => (r.shell.ms / r.ours.ms).toFixed(2)).join(' ')}   load average: ${rounds.map((r) => r.load.toFixed(1)).join(' ')}`);
  }
  writeFileSync(path.join(ROOT, 'bench', 'extract-results.json'), JSON.stringify({ at: new Date().toISOString(), cpus: os.cpus().length, node: process.version, results }, null, 2) + '\n');
} finally {
  close();
}
