#!/usr/bin/env node
// SFTP download benchmark: the OpenSSH `sftp` client fetches the same file from nia-link's SFTP role
// and from OpenSSH's sshd with internal-sftp (started here on a loopback port), same cipher, same run;
// one stream, then N concurrent streams. Needs root (sshd) and /usr/sbin/sshd.
// Usage: npm run bench:sftp [-- --size-mib 1024 --streams 16 --rounds 3 --cipher aes128-gcm@openssh.com]
// --front-ends 2: two SFTP role processes (as two front-end hosts behind a TCP load balancer would be)
// serving the same installation and outbox, the concurrent streams spread over them in turn.
'use strict';
const { execFileSync, spawn, spawnSync } = require('node:child_process');
const { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } = require('node:fs');
const { randomFillSync } = require('node:crypto');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'nia-link.js');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const SIZE_MIB = Number(arg('size-mib', 1024));
const STREAMS = Number(arg('streams', 16));
const ROUNDS = Number(arg('rounds', 3));
const CIPHER = arg('cipher', 'aes128-gcm@openssh.com');
const PROCESSES = arg('processes', undefined);
const FRONT_ENDS = Number(arg('front-ends', 1));
// --profile DIR: the SFTP role writes a V8 CPU profile there when it stops.
const PROFILE = arg('profile', undefined);

if (process.getuid && process.getuid() !== 0) {
  console.error('bench/sftp: run as root (sshd needs it for the OpenSSH baseline)');
  process.exit(2);
}

const work = mkdtempSync(path.join(os.tmpdir(), 'nia-link-bench-sftp-'));
const data = path.join(work, 'data');
const gnupg = path.join(work, 'gnupg');
const children = [];
const env = { ...process.env, NIA_LINK_LOG_LEVEL: 'warn' };
const nl = (...args) => execFileSync(process.execPath, [BIN, '--data-dir', data, ...args], { encoding: 'utf8', env });

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const waitFor = async (what, fn, ms = 30000) => {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not come up`);
};

function sftpGet(port, user, remote) {
  return new Promise((resolve, reject) => {
    const args = ['-q', '-P', String(port), '-i', path.join(work, 'ssh'), '-c', CIPHER, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-b', '-', `${user}@127.0.0.1`];
    const c = spawn('sftp', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sftp from port ${port} exited ${code}: ${err.trim()}`))));
    c.stdin.end(`get ${remote} /dev/null\n`);
  });
}

/** CPU seconds used by a process and all its descendants, live ones and those already waited for. */
function treeCpuSec(pid) {
  const stat = (p) => readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
  let ticks = 0;
  const walk = (p) => {
    const f = stat(p);
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        if (Number(stat(d)[1]) === p) walk(Number(d));
      } catch {
        /* exited meanwhile */
      }
    }
  };
  walk(pid);
  return ticks / 100; // USER_HZ
}

/** Wall time (ms) of `n` simultaneous downloads of the whole file (spread over `ports` in turn), and the servers' CPU seconds for them. */
async function timed(n, ports, user, remote, pids) {
  const cpu = () => pids.reduce((t, p) => t + treeCpuSec(p), 0);
  const c0 = cpu();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: n }, (_, i) => sftpGet(ports[i % ports.length], user, remote)));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  // sshd collects a connection's CPU when its process exits: give it a moment.
  await new Promise((r) => setTimeout(r, 200));
  return { ms, cpu: cpu() - c0 };
}

async function main() {
  // ---- the nia-link side: an approved sftp-pull link and one delivered file of SIZE_MIB ----
  nl('init');
  execFileSync('mkdir', ['-m', '700', gnupg]);
  const genv = { ...process.env, GNUPGHOME: gnupg };
  const gpg = (...a) => execFileSync('gpg', ['--batch', '--yes', '--passphrase', '', ...a], { env: genv, stdio: ['ignore', 'pipe', 'pipe'] });
  gpg('--quick-gen-key', 'Bench Agency <bench@agency.example.gov.tw>', 'ed25519', 'cert,sign', 'never');
  const fpr = gpg('--list-keys', '--with-colons').toString().split('\n').find((l) => l.startsWith('fpr')).split(':')[9];
  gpg('--quick-add-key', fpr, 'cv25519', 'encr', 'never');
  writeFileSync(path.join(work, 'agency.asc'), gpg('--armor', '--export', fpr));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(work, 'ssh')]);
  writeFileSync(path.join(work, 'rules.txt'), '應用移民資訊管理規定\n一、使用目的\n二、稽核\n三、查詢程序\n四、安全維護\n五、委外\n六、損害責任\n七、使用者責任\n八、帳號異動\n');
  nl('agency', 'add', '--code', 'B001', '--name', '基準測試機關');
  const link = nl('link', 'apply', '--agency', 'B001', '--dataset', 'entry_exit', '--fields', 'person_id,nationality', '--legal-basis', 'bench', '--purpose', 'bench',
    '--department', 'bench', '--officer', 'o', '--supervisor', 's', '--from', '2000-01-01', '--to', '2099-12-31', '--disposal', 'delete', '--method', 'sftp-pull',
    '--allow-ip', '127.0.0.1/32', '--account', 'bench', '--ssh-key', path.join(work, 'ssh.pub'), '--pgp-key', path.join(work, 'agency.asc'), '--rules', path.join(work, 'rules.txt'), '--scope', 'all', '--scope-justification', 'bench').trim().split('\n').pop();
  if (/^\s+rules\b/m.test(nl('--help'))) nl('rules', 'review', '--link', link, '--covers', '1,2,3,4,5,6,7,8');
  // R-F9: NIA's reply letter and the agency's stamped form (the form itself, as printed).
  nl('link', 'form', link, '--out', path.join(work, 'stamped.pdf'));
  nl('link', 'approve', link, '--letter-no', '移署資字第1150000001號', '--letter-date', new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Taipei' }).format(new Date()), '--stamped-form', path.join(work, 'stamped.pdf'));

  // Random bytes stand in for a 1 GiB extract (building one takes minutes); the delivery row is real.
  const fileName = `entry_exit-L${link}-r1-bench-D1.csv.pgp`;
  const { loadConfig } = require('../dist/src/config');
  const { openOutbox } = require('../dist/src/outbox');
  const outbox = openOutbox(loadConfig({ dataDir: data }, env));
  const tmp = outbox.create(Number(link), fileName);
  const fd = openSync(tmp.path, 'wx');
  const chunk = Buffer.alloc(8 << 20);
  for (let i = 0; i < SIZE_MIB / 8; i++) writeSync(fd, randomFillSync(chunk));
  closeSync(fd);
  tmp.publish();
  const file = outbox.pathOf(Number(link), fileName);
  const { openControlDb } = require('../dist/src/db');
  const { deliveries } = require('../dist/src/db/repositories');
  const cdb = openControlDb(data);
  const now = new Date().toISOString();
  await cdb.write((tx) => deliveries.insert(tx, { linkId: Number(link), revision: 1, idempotencyKey: 'bench', trigger: 'manual', mode: 'full', status: 'built', dataset: 'entry_exit', fields: ['person_id', 'nationality'], rows: 0, fileName, bytes: SIZE_MIB << 20, plainSha256: null, cipherSha256: null, manifestSha256: null, watermarkFrom: null, watermarkTo: null, createdAt: now, builtAt: now, durationMs: 0, expiresAt: null, purgedAt: null, error: null, channels: {} }));
  cdb.close();

  const nlPorts = [];
  const svcPids = [];
  for (let f = 0; f < FRONT_ENDS; f++) {
    const nlPort = await freePort();
    const svc = spawn(process.execPath, [...(PROFILE ? ['--cpu-prof', '--cpu-prof-dir', PROFILE] : []), BIN, '--data-dir', data, 'start', '--role', 'sftp'], { env: { ...env, NIA_LINK_SFTP_HOST: '127.0.0.1', NIA_LINK_SFTP_PORT: String(nlPort), NIA_LINK_SFTP_MAX_CONNECTIONS_PER_IP: '64', ...(PROCESSES ? { NIA_LINK_SFTP_PROCESSES: PROCESSES } : {}) }, stdio: ['ignore', 'pipe', openSync(path.join(work, 'service.log'), 'a')], detached: true });
    children.push(() => process.kill(-svc.pid, 'SIGTERM'));
    let out = '';
    svc.stdout.on('data', (d) => (out += d));
    await waitFor(`nia-link start --role sftp (front end ${f + 1})`, () => /ready/.test(out), 60000);
    nlPorts.push(nlPort);
    svcPids.push(svc.pid);
  }

  // ---- the OpenSSH side: sshd with internal-sftp, the same key, the same file ----
  const osPort = await freePort();
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(work, 'hostkey')]);
  writeFileSync(path.join(work, 'authorized_keys'), readFileSync(path.join(work, 'ssh.pub')));
  const user = os.userInfo().username;
  writeFileSync(
    path.join(work, 'sshd_config'),
    [`Port ${osPort}`, 'ListenAddress 127.0.0.1', `HostKey ${path.join(work, 'hostkey')}`, `PidFile ${path.join(work, 'sshd.pid')}`, `AuthorizedKeysFile ${path.join(work, 'authorized_keys')}`, 'StrictModes no', 'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'MaxStartups 64', 'MaxSessions 64', 'Subsystem sftp internal-sftp', ''].join('\n'),
  );
  mkdirSync('/run/sshd', { recursive: true });
  execFileSync('/usr/sbin/sshd', ['-f', path.join(work, 'sshd_config'), '-E', path.join(work, 'sshd.log')]);
  children.push(() => process.kill(Number(readFileSync(path.join(work, 'sshd.pid'), 'utf8')), 'SIGTERM'));
  await waitFor('sshd', () => new Promise((r) => net.connect(osPort, '127.0.0.1').once('connect', function () { this.destroy(); r(true); }).once('error', () => r(false))));
  const sshdPid = Number(readFileSync(path.join(work, 'sshd.pid'), 'utf8'));

  const bytes = SIZE_MIB * 1048576;
  const mbs = (n, ms) => (n * bytes) / 1e6 / (ms / 1000);
  const load = os.loadavg()[0];
  const results = {};
  for (const n of [1, STREAMS]) {
    const rounds = n === 1 ? ROUNDS : Math.max(1, ROUNDS - 1);
    const s = { nialink: [], openssh: [] };
    for (let r = 0; r < rounds; r++) {
      // Alternate, so drift in the machine's load hits both alike.
      s.nialink.push(await timed(n, nlPorts, 'bench', `/outbox/${fileName}`, svcPids));
      s.openssh.push(await timed(n, [osPort], user, file, [sshdPid]));
    }
    const best = (xs) => xs.reduce((a, b) => (b.ms < a.ms ? b : a));
    const b = { nialink: best(s.nialink), openssh: best(s.openssh) };
    const gib = (n * bytes) / 2 ** 30;
    results[n] = { runs: s, nialinkMBs: mbs(n, b.nialink.ms), opensshMBs: mbs(n, b.openssh.ms), ratio: b.openssh.ms / b.nialink.ms, cpuPerGiB: { nialink: b.nialink.cpu / gib, openssh: b.openssh.cpu / gib } };
    const line = (name, runs, x) => `  ${name.padEnd(22)} ${mbs(n, x.ms).toFixed(0).padStart(5)} MB/s   server CPU ${(x.cpu / gib).toFixed(2)} s/GiB   (${runs.map((r) => (r.ms / 1000).toFixed(2)).join(', ')} s)`;
    console.log(`${n === 1 ? 'one stream' : `${n} concurrent streams`} (${SIZE_MIB} MiB each, ${CIPHER}, best of ${rounds}):`);
    console.log(line('OpenSSH internal-sftp', s.openssh, b.openssh));
    console.log(line(FRONT_ENDS > 1 ? `nia-link, ${FRONT_ENDS} front ends` : 'nia-link', s.nialink, b.nialink));
    console.log(`  ratio nia-link / OpenSSH: ${results[n].ratio.toFixed(2)}x`);
  }
  console.log(`load average before: ${load.toFixed(2)}, after: ${os.loadavg()[0].toFixed(2)}; ${os.cpus().length} CPUs`);
  writeFileSync(path.join(ROOT, 'bench', 'sftp-results.json'), JSON.stringify({ at: new Date().toISOString(), sizeMiB: SIZE_MIB, cipher: CIPHER, streams: STREAMS, frontEnds: FRONT_ENDS, processes: PROCESSES ?? 'default', cpus: os.cpus().length, node: process.version, load, results }, null, 2) + '\n');
}

for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => {
  process.exitCode = 130;
  cleanup();
  process.exit();
});

main()
  .catch((err) => {
    console.error(`bench/sftp: ${err.message}`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());

function cleanup() {
  {
    for (const stop of children.splice(0).reverse()) {
      try {
        stop();
      } catch {
        /* gone already */
      }
    }
    spawnSync('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: gnupg } });
    setTimeout(() => rmSync(work, { recursive: true, force: true }), 1000);
  }
}
