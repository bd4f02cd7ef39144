// What both extract benchmarks set up: a scratch installation whose sftp-pull link receives every
// entry_exit field under a given scope, agency and NIA keys in one GnuPG home (so the shell side signs
// with NIA's key type and encrypts to the agency's), and a timer for shell pipelines.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const { mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'nia-link.js');

/** `scopeArgs`: the --scope options of link apply. Call `close()` when done (BENCH_KEEP=1 keeps the directory). */
function extractWorld(scopeArgs) {
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
  const close = () => {
    spawnSync('gpgconf', ['--kill', 'all'], { env: genv });
    if (process.env.BENCH_KEEP) console.log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
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
    const fields = JSON.parse(readFileSync(path.join(ROOT, 'schemas', 'datasets', 'entry_exit.json'), 'utf8')).fields.map((f) => f.name);
    const link = nl('link', 'apply', '--agency', 'B001', '--dataset', 'entry_exit', '--fields', fields.join(','), '--legal-basis', 'bench', '--purpose', 'bench',
      '--department', 'bench', '--officer', 'o', '--supervisor', 's', '--from', '2000-01-01', '--to', '2099-12-31', '--disposal', 'delete', '--method', 'sftp-pull',
      '--allow-ip', '127.0.0.1/32', '--account', 'bench', '--ssh-key', path.join(work, 'ssh.pub'), '--pgp-key', path.join(work, 'agency.asc'), '--rules', path.join(work, 'rules.txt'), ...scopeArgs).trim().split('\n').pop();
    try { nl('rules', 'review', '--link', link, '--covers', '1,2,3,4,5,6,7,8'); } catch { /* no rules review in this build */ }
    // R-F9: NIA's reply letter and the agency's stamped form (the form itself, as printed).
    nl('link', 'form', link, '--out', path.join(work, 'stamped.pdf'));
    nl('link', 'approve', link, '--letter-no', '移署資字第1150000001號', '--letter-date', new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Taipei' }).format(new Date()), '--stamped-form', path.join(work, 'stamped.pdf'));
    return { work, data, nl, gpg, timed, close, fpr, niaFpr, fields, link };
  } catch (err) {
    close();
    throw err;
  }
}

module.exports = { ROOT, extractWorld };
