#!/usr/bin/env node
// Online-query benchmark: single-id look-ups from 50 concurrent keep-alive mTLS clients on loopback,
// against 1 M entry_exit rows; requests/s, p50/p99 latency, and a check that every request was logged.
// Usage: npm run bench:query [-- ROWS COUNT CONCURRENCY WARMUP]   (default 1000000 20000 50 10000)
// With NIA_LINK_DATABASE_URL=postgres://… (an empty database) the control database is PostgreSQL.
// WARMUP look-ups are sent first, untimed, to the service and to the floor alike (0: time from a cold start).
'use strict';
const { execFileSync, spawn } = require('node:child_process');
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'nia-link.js');
const [rows = 1_000_000, count = 20_000, concurrency = 50, warmup = 10_000] = process.argv.slice(2).map(Number);
const work = mkdtempSync(path.join(os.tmpdir(), 'nia-link-bench-query-'));
const data = path.join(work, 'data');
const env = { ...process.env, NIA_LINK_LOG_LEVEL: 'silent', NIA_LINK_QUERY_PORT: '0', NIA_LINK_QUERY_HOST: '127.0.0.1', NIA_LINK_QUERY_RATE_PER_MINUTE: '100000000' };
const nl = (...args) => execFileSync(process.execPath, [BIN, '--data-dir', data, ...args], { encoding: 'utf8', env });

/** Records of answered look-ups in the control database: SQLite, or PostgreSQL when NIA_LINK_DATABASE_URL names it. */
const ANSWERED = "SELECT count(*) FROM usage_log WHERE type = 'query.answered'";
const answered = () =>
  Number(
    (process.env.NIA_LINK_DATABASE_URL
      ? execFileSync('psql', [process.env.NIA_LINK_DATABASE_URL, '-Atc', ANSWERED])
      : execFileSync('sqlite3', [path.join(data, 'nia-link.db'), ANSWERED])
    ).toString(),
  );

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
    '--from', '2000-01-01', '--to', '2099-12-31', '--disposal', 'delete', '--method', 'online-query', '--allow-ip', '127.0.0.1/32', '--pgp-key', path.join(work, 'agency.asc'), '--rules', path.join(work, 'rules.txt'), '--client-cert', path.join(work, 'c.crt'),
    // A scope every looked-up person is inside, so each look-up pays for the scope's predicate, and a cap
    // the run stays under, so each pays for the cap's count in Redis: what a real link does.
    '--scope', 'direction in entry,exit; crossed_at within-days 36600', '--max-ids-per-day', '10000000').trim().split('\n').pop();
  try { nl('rules', 'review', '--link', link, '--covers', '1,2,3,4,5,6,7,8'); } catch { /* no review step in this build */ }
  // R-F9: NIA's reply letter and the agency's stamped form (the form itself, as printed).
  nl('link', 'form', link, '--out', path.join(work, 'stamped.pdf'));
  nl('link', 'approve', link, '--letter-no', '移署資字第1150000001號', '--letter-date', new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Taipei' }).format(new Date()), '--stamped-form', path.join(work, 'stamped.pdf'));
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
    // CPU of the service's whole process tree (a query role with several processes forks workers).
    const cpuOf = (pid) => {
      const fs = require('node:fs');
      let ms = 0;
      try {
        const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
        ms = ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in ms (USER_HZ 100)
        for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
          for (const child of fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) ms += cpuOf(Number(child));
        }
      } catch {
        /* the process ended */
      }
      return ms;
    };
    const svcCpu0 = cpuOf(svc.pid);
    const before = answered();
    const r = JSON.parse(execFileSync(process.execPath, [path.join(__dirname, 'query-load.js'), String(port), path.join(work, 'c.crt'), path.join(work, 'c.key'), path.join(data, 'keys', 'query-server.crt'), path.join(work, 'ids.txt'), String(count), String(concurrency), String(warmup)]).toString());
    const svcCpuMs = cpuOf(svc.pid) - svcCpu0;
    const after = answered();
    console.log(`${rows} source rows, ${r.requests} single-id look-ups timed of ${r.sent} sent (the first ${r.warmup} and each connection's first untimed), ${concurrency} keep-alive mTLS clients (load average before ${os.loadavg()[0].toFixed(2)}):`);
    console.log(`  ${r.rps} requests/s   p50 ${r.p50.toFixed(2)} ms   p90 ${r.p90.toFixed(2)} ms   p95 ${r.p95.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms   max ${r.max.toFixed(1)} ms   failed ${r.failed}`);
    console.log(`  CPU per request: service ${((svcCpuMs * 1000) / r.sent).toFixed(0)} µs, load generator ${((r.cpuMs * 1000) / r.sent).toFixed(0)} µs`);
    console.log(`  usage-log records: ${after - before} for ${r.sent} requests ${after - before === r.sent ? '(every request logged)' : '(MISSING RECORDS)'}`);
    results.ours = { ...r, cpuUsPerRequest: (svcCpuMs * 1000) / r.sent, logged: after - before };
  } finally {
    svc.kill('SIGTERM');
    await new Promise((r) => svc.once('exit', r));
  }

  // The floor, same run: the same TLS and HTTP stack answering a constant record (bench/query-floor.js).
  const floor = spawn(process.execPath, [path.join(__dirname, 'query-floor.js'), path.join(data, 'keys')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let floorOut = '';
  floor.stdout.on('data', (d) => (floorOut += d));
  const floorPort = await new Promise((resolve, reject) => {
    const check = setInterval(() => /^\d+\n/.test(floorOut) && (clearInterval(check), resolve(Number(floorOut.split('\n')[0]))), 20);
    floor.once('exit', () => (clearInterval(check), reject(new Error('the floor server exited'))));
  });
  const f = JSON.parse(execFileSync(process.execPath, [path.join(__dirname, 'query-load.js'), String(floorPort), path.join(work, 'c.crt'), path.join(work, 'c.key'), path.join(data, 'keys', 'query-server.crt'), path.join(work, 'ids.txt'), String(count), String(concurrency), String(warmup)]).toString());
  floor.kill('SIGTERM');
  await new Promise((r) => floor.once('exit', r));
  const floorCpuMs = Number(floorOut.trim().split('\n').pop());
  const o = results.ours;
  console.log(`  floor (bare fastify + TLS, constant answer, nothing logged): ${f.rps} requests/s   p50 ${f.p50.toFixed(2)} ms   p99 ${f.p99.toFixed(2)} ms   ~${((floorCpuMs * 1000) / f.sent).toFixed(0)} µs CPU per request (start-up included)`);
  console.log(`  nia-link / floor: requests/s ${(o.rps / f.rps).toFixed(2)}x   p99 ${(o.p99 / f.p99).toFixed(2)}x the floor's`);
  writeFileSync(path.join(ROOT, 'bench', 'query-results.json'), JSON.stringify({ at: new Date().toISOString(), rows, count, concurrency, processes: process.env.NIA_LINK_QUERY_PROCESSES ?? 'default', loadAverage: os.loadavg()[0], ours: o, floor: f }, null, 2) + '\n');
}
const results = {};
main()
  .catch((e) => {
    console.error(e.message);
    process.exitCode = 1;
  })
  .finally(() => (process.env.BENCH_KEEP ? console.log(`kept ${work}`) : rmSync(work, { recursive: true, force: true })));
