#!/usr/bin/env node
// Online-query benchmark: single-id look-ups from 50 concurrent keep-alive mTLS clients on loopback,
// against 1 M entry_exit rows; requests/s, p50/p99 latency, and a check that every request was logged.
// Usage: npm run bench:query [-- ROWS COUNT CONCURRENCY]   (default 1000000 20000 50)
'use strict';
const { execFileSync, spawn } = require('node:child_process');
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'nia-link.js');
const [rows = 1_000_000, count = 20_000, concurrency = 50] = process.argv.slice(2).map(Number);
const work = mkdtempSync(path.join(os.tmpdir(), 'nia-link-bench-query-'));
const data = path.join(work, 'data');
const env = { ...process.env, NIA_LINK_LOG_LEVEL: 'silent', NIA_LINK_QUERY_PORT: '0', NIA_LINK_QUERY_HOST: '127.0.0.1', NIA_LINK_QUERY_RATE_PER_MINUTE: '100000000' };
const nl = (...args) => execFileSync(process.execPath, [BIN, '--data-dir', data, ...args], { encoding: 'utf8', env });

async function main() {
  nl('init');
  const g = path.join(work, 'gnupg');
  execFileSync('mkdir', ['-m', '700', g]);
  const genv = { ...process.env, GNUPGHOME: g };
  execFileSync('gpg', ['--batch', '--passphrase', '', '--quick-gen-key', 'Bench <b@agency.example.gov.tw>', 'ed25519', 'cert,sign', 'never'], { env: genv, stdio: 'ignore' });
  const fpr = execFileSync('gpg', ['--list-keys', '--with-colons'], { env: genv }).toString().split('\n').find((l) => l.startsWith('fpr')).split(':')[9];
  execFileSync('gpg', ['--batch', '--passphrase', '', '--quick-add-key', fpr, 'cv25519', 'encr', 'never'], { env: genv, stdio: 'ignore' });
  writeFileSync(path.join(work, 'agency.asc'), execFileSync('gpg', ['--armor', '--export', fpr], { env: genv }));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj', '/CN=bench', '-keyout', path.join(work, 'c.key'), '-out', path.join(work, 'c.crt')], { stdio: 'ignore' });
  writeFileSync(path.join(work, 'rules.txt'), '應用移民資訊管理規定\n');
  nl('agency', 'add', '--code', 'Q001', '--name', '基準測試機關');
  const link = nl('link', 'apply', '--agency', 'Q001', '--dataset', 'entry_exit', '--fields', 'person_id,nationality,crossed_at,port', '--legal-basis', 'bench', '--purpose', 'bench', '--department', 'bench', '--officer', 'o', '--supervisor', 's',
    '--from', '2000-01-01', '--to', '2099-12-31', '--disposal', 'delete', '--method', 'online-query', '--allow-ip', '127.0.0.1/32', '--pgp-key', path.join(work, 'agency.asc'), '--rules', path.join(work, 'rules.txt'), '--client-cert', path.join(work, 'c.crt')).trim().split('\n').pop();
  try { nl('rules', 'review', '--link', link, '--covers', '1,2,3,4,5,6,7,8'); } catch { /* no review step in this build */ }
  nl('link', 'approve', link);
  nl('seed', '--rows', String(rows), '--dataset', 'entry_exit', '--seed', '3');
  const ids = execFileSync('sqlite3', [path.join(data, 'source.db'), 'SELECT person_id FROM entry_exit WHERE record_id % 97 = 0 LIMIT 5000']).toString();
  writeFileSync(path.join(work, 'ids.txt'), ids);

  const svc = spawn(process.execPath, [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_CPU_PROF] : []), BIN, '--data-dir', data, 'start', '--role', 'query'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    svc.stdout.on('data', (d) => {
      out += d;
      const m = /query: listening on https:\/\/[^:]+:(\d+)/.exec(out);
      if (m && /ready/.test(out)) resolve(Number(m[1]));
    });
    svc.once('exit', () => reject(new Error(`service exited: ${out}`)));
  });
  try {
    const cpuOf = (pid) => {
      const f = require('node:fs').readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in ms (USER_HZ 100)
    };
    const svcCpu0 = cpuOf(svc.pid);
    const before = Number(execFileSync('sqlite3', [path.join(data, 'nia-link.db'), "SELECT count(*) FROM usage_log WHERE type = 'query.answered'"]).toString());
    const r = JSON.parse(execFileSync(process.execPath, [path.join(__dirname, 'query-load.js'), String(port), path.join(work, 'c.crt'), path.join(work, 'c.key'), path.join(data, 'keys', 'query-server.crt'), path.join(work, 'ids.txt'), String(count), String(concurrency)]).toString());
    const svcCpuMs = cpuOf(svc.pid) - svcCpu0;
    const after = Number(execFileSync('sqlite3', [path.join(data, 'nia-link.db'), "SELECT count(*) FROM usage_log WHERE type = 'query.answered'"]).toString());
    console.log(`${rows} source rows, ${r.requests} single-id look-ups, ${concurrency} keep-alive mTLS clients (load average before ${os.loadavg()[0].toFixed(2)}):`);
    console.log(`  ${r.rps} requests/s   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms   max ${r.max.toFixed(1)} ms   failed ${r.failed}`);
    console.log(`  CPU per request: service ${((svcCpuMs * 1000) / (r.requests + r.warmup)).toFixed(0)} µs, load generator ${((r.cpuMs * 1000) / (r.requests + r.warmup)).toFixed(0)} µs`);
    console.log(`  usage-log records: ${after - before} for ${r.requests + r.warmup} requests (${r.warmup} untimed connection openers) ${after - before === r.requests + r.warmup ? '(every request logged)' : '(MISSING RECORDS)'}`);
  } finally {
    svc.kill('SIGTERM');
    await new Promise((r) => svc.once('exit', r));
  }
}
main()
  .catch((e) => {
    console.error(e.message);
    process.exitCode = 1;
  })
  .finally(() => rmSync(work, { recursive: true, force: true }));
