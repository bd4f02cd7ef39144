#!/usr/bin/env node
// Extract benchmark: nia-link's extract (all entry_exit fields, signed + encrypted) against
// `sqlite3 -csv … | gpg --sign --encrypt -z 0` on the same data, same keys, same run.
// Usage: npm run bench:extract [-- ROWS [ROWS2 …]]   (default 1000000 5000000); BENCH_ROUNDS (default 3)
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const { mkdtempSync, rmSync, statSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'nia-link.js');
const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
if (sizes.length === 0) sizes.push(1_000_000, 5_000_000);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS) || 3);

const work = mkdtempSync(path.join(os.tmpdir(), 'nia-link-bench-'));
const data = path.join(work, 'data');
const gnupg = path.join(work, 'gnupg');
execFileSync('mkdir', ['-m', '700', gnupg]);
const genv = { ...process.env, GNUPGHOME: gnupg };
const nl = (...args) => execFileSync(process.execPath, [BIN, '--data-dir', data, ...args], { encoding: 'utf8', env: { ...process.env, NIA_LINK_LOG_LEVEL: 'silent' } });
const gpg = (...args) => execFileSync('gpg', ['--batch', '--yes', '--passphrase', '', ...args], { env: genv, stdio: ['ignore', 'pipe', 'pipe'] });
const timed = (cmd) => {
  // GNU time reports the largest resident set among the pipeline's processes.
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', 'bash', '-o', 'pipefail', '-c', cmd], { env: genv, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  const [s, kib, user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { ms: s * 1000, maxRssKiB: kib, cpuMs: (user + sys) * 1000 };
};

try {
  nl('init');
  gpg('--quick-gen-key', 'Bench Agency <bench@agency.example.gov.tw>', 'ed25519', 'cert,sign', 'never');
  const fpr = gpg('--list-keys', '--with-colons').toString().split('\n').find((l) => l.startsWith('fpr')).split(':')[9];
  gpg('--quick-add-key', fpr, 'cv25519', 'encr', 'never');
  writeFileSync(path.join(work, 'agency.asc'), gpg('--armor', '--export', fpr));
  // NIA's signing key into the same keyring, so gpg signs with the same key type nia-link uses.
  gpg('--import', path.join(data, 'keys', 'nia-signing.key.asc'));
  const niaFpr = nl('key', 'export-signing') && gpg('--list-secret-keys', '--with-colons').toString().split('\n').filter((l) => l.startsWith('fpr')).map((l) => l.split(':')[9]).find((f) => f !== fpr);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(work, 'ssh')]);
  writeFileSync(path.join(work, 'rules.txt'), '應用移民資訊管理規定\n');
  nl('agency', 'add', '--code', 'B001', '--name', '基準測試機關');
  const fields = JSON.parse(require('node:fs').readFileSync(path.join(ROOT, 'schemas', 'datasets', 'entry_exit.json'), 'utf8')).fields.map((f) => f.name);
  const link = nl('link', 'apply', '--agency', 'B001', '--dataset', 'entry_exit', '--fields', fields.join(','), '--legal-basis', 'bench', '--purpose', 'bench',
    '--department', 'bench', '--officer', 'o', '--supervisor', 's', '--from', '2000-01-01', '--to', '2099-12-31', '--disposal', 'delete', '--method', 'sftp-pull',
    '--allow-ip', '127.0.0.1/32', '--account', 'bench', '--ssh-key', path.join(work, 'ssh.pub'), '--pgp-key', path.join(work, 'agency.asc'), '--rules', path.join(work, 'rules.txt'), '--scope', 'all', '--scope-justification', 'bench').trim().split('\n').pop();
  try { nl('rules', 'review', '--link', link, '--covers', '1,2,3,4,5,6,7,8'); } catch { /* no rules review in this build */ }
  // R-F9: NIA's reply letter and the agency's stamped form (the form itself, as printed).
  nl('link', 'form', link, '--out', path.join(work, 'stamped.pdf'));
  nl('link', 'approve', link, '--letter-no', '移署資字第1150000001號', '--letter-date', new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Taipei' }).format(new Date()), '--stamped-form', path.join(work, 'stamped.pdf'));

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
  spawnSync('gpgconf', ['--kill', 'all'], { env: genv });
  if (process.env.BENCH_KEEP) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
