import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { BIN, ROOT, tmpDir } from '../helpers/world';

/**
 * The first run of a new user, as CI performs it: `nia-link demo` on a scratch directory, every
 * command its guide prints run as printed (each in a shell of its own, from another directory), and
 * the README's Quick tour taken from README.md itself and run in order against the demo.
 */

jest.setTimeout(300_000);

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });

interface Demo {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

let scratch: string;
let dir: string;
let env: NodeJS.ProcessEnv;
let ports: { http: number; sftp: number; query: number };
let demo: Demo | undefined;

function startDemo(): Demo {
  const child = spawn(process.execPath, [BIN, 'demo', '--data-dir', dir], { cwd: scratch, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exited };
}

/** Resolves with stdout once the guide's last line is out; rejects if the demo exits first. */
async function guideOf(d: Demo): Promise<string> {
  let gone = false;
  void d.exited.then(() => (gone = true));
  while (!/Ctrl-C/.test(d.out())) {
    if (gone) throw new Error(`the demo exited before printing its guide:\n${d.out()}\n${d.err()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return d.out();
}

async function stopDemo(d: Demo): Promise<number | null> {
  d.child.kill('SIGINT');
  return d.exited;
}

const commandsOf = (guide: string): string[] => guide.split('\n').filter((l) => l.startsWith('$ ')).map((l) => l.slice(2));

function sh(cmd: string, opts: { cwd: string; timeout?: number; env?: NodeJS.ProcessEnv }): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-c', cmd], { cwd: opts.cwd, env: opts.env ?? env, encoding: 'utf8', timeout: opts.timeout ?? 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The commands run one after another in one shell, as pasted into a terminal: a variable one sets is
 * there for the next. Each one's output and exit status are kept; the first to fail stops the rest.
 */
function pasted(cmds: string[], cwd: string): { cmd: string; code: number; stdout: string; stderr: string }[] {
  const work = mkdtempSync(path.join(scratch, 'session-'));
  const f = (i: number, ext: string) => path.join(work, `${i}.${ext}`);
  const script = cmds.map((c, i) => `{ ${c}\n} >${f(i, 'out')} 2>${f(i, 'err')} </dev/null; rc=$?; echo $rc >${f(i, 'rc')}; [ $rc = 0 ] || exit $rc`).join('\n');
  spawnSync('bash', ['-c', script], { cwd, env, timeout: 240_000 });
  return cmds.map((cmd, i) => {
    const read = (ext: string) => (existsSync(f(i, ext)) ? readFileSync(f(i, ext), 'utf8') : '');
    const r = { cmd, code: read('rc') === '' ? -1 : Number(read('rc')), stdout: read('out'), stderr: read('err') };
    if (r.code !== 0) throw new Error(`guide command failed (exit ${r.code}${r.code === -1 ? ': not run, or killed' : ''}):\n$ ${cmd}\n${r.stdout}\n${r.stderr}`);
    return r;
  });
}

/** The ```sh blocks of the README section `## Quick tour`, in order. */
function quickTour(): string[] {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Quick tour\n');
  if (start < 0) throw new Error('README.md has no "## Quick tour" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
}

beforeAll(async () => {
  scratch = tmpDir('nia-link-demo-');
  dir = path.join(scratch, 'demo-data');
  ports = { http: await freePort(), sftp: await freePort(), query: await freePort() };
  const redisUrl = process.env.NIA_TEST_REDIS_URL;
  if (!redisUrl) throw new Error('no test redis (jest global setup)');
  env = {
    ...process.env,
    REDIS_URL: redisUrl,
    NIA_LINK_HTTP_PORT: String(ports.http),
    NIA_LINK_SFTP_PORT: String(ports.sftp),
    NIA_LINK_QUERY_PORT: String(ports.query),
    NIA_LINK_LOG_LEVEL: 'warn',
    // gpg and ssh speak English, so the checks below can read them.
    LC_ALL: 'C',
    LANGUAGE: 'C',
    GNUPGHOME: path.join(scratch, 'no-gnupg-here'),
  };
  delete env.NIA_LINK_DATA_DIR;
  delete env.NIA_LINK_CONFIG;
  demo = startDemo();
});

afterAll(async () => {
  if (demo && demo.child.exitCode === null) await stopDemo(demo);
  spawnSync('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: path.join(dir, 'agency', 'gnupg') } });
  rmSync(scratch, { recursive: true, force: true });
});

describe('nia-link demo', () => {
  let guide: string;

  test('prints a short guide in zh-TW and English: console login, sftp, gpg, curl, each after "$ "', async () => {
    guide = await guideOf(demo!);
    expect(guide).toMatch(/演練 DRILL/);
    expect(guide).toMatch(/主控台 Console: http:\/\/127\.0\.0\.1:\d+\/login/);
    expect(guide).toContain(`127.0.0.1:${ports.http}/login`);
    const state = JSON.parse(readFileSync(path.join(dir, 'demo.json'), 'utf8'));
    expect(guide).toContain(`password: ${state.operator.password}`);
    expect(statSync(path.join(dir, 'demo.json')).mode & 0o077).toBe(0);
    const cmds = commandsOf(guide);
    expect(cmds.some((c) => /^echo 'ls -l \/outbox' \| sftp /.test(c))).toBe(true);
    expect(cmds.some((c) => /gpg .*--decrypt/.test(c))).toBe(true);
    expect(cmds.some((c) => /^curl .*--cert .*\/query\/v1\/entry_exit$/.test(c))).toBe(true);
    // The agency's keys, where the guide says they are.
    for (const f of ['gnupg', 'id_ed25519', 'id_ed25519.pub', 'client.crt', 'client.key']) expect(existsSync(path.join(dir, 'agency', f))).toBe(true);
  });

  test('the console login it prints works', async () => {
    const state = JSON.parse(readFileSync(path.join(dir, 'demo.json'), 'utf8'));
    const origin = `http://127.0.0.1:${ports.http}`;
    const login = (password: string) =>
      fetch(`${origin}/login`, { method: 'POST', redirect: 'manual', headers: { origin, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ username: state.operator.username, password }).toString() });
    const good = await login(state.operator.password);
    expect(good.headers.get('set-cookie')).toMatch(/session/);
    expect(good.status).toBeGreaterThanOrEqual(300);
    expect(good.status).toBeLessThan(400);
    const bad = await login(state.operator.password + 'x');
    expect(bad.headers.get('set-cookie') ?? '').not.toMatch(/session=[^;]/);
  });

  test('every command of the guide works as printed, pasted in order into a terminal elsewhere', () => {
    const elsewhere = path.join(scratch, 'elsewhere');
    mkdirSync(elsewhere, { recursive: true });
    const cmds = commandsOf(guide);
    expect(cmds.length).toBeGreaterThanOrEqual(5);
    const results = pasted(cmds, elsewhere);
    const of = (re: RegExp) => results.find((r) => re.test(r.cmd))!;
    expect(of(/ls -l \/outbox/).stdout).toMatch(/entry_exit-L\d+-r1-\S+-D\d+\.csv\.pgp/);
    // Decrypted, with a good signature by NIA's key, which the agency's GnuPG home trusts.
    const decrypt = of(/gpg .*--decrypt/);
    expect(decrypt.stderr).toMatch(/Good signature from/);
    expect(decrypt.stderr).not.toMatch(/not certified with a trusted signature/);
    const pgp = decrypt.cmd.split(' ').pop()!;
    const status = sh(`GNUPGHOME=${path.join(dir, 'agency', 'gnupg')} gpg --batch --status-fd 1 --output /dev/null --decrypt ${pgp}`, { cwd: elsewhere });
    expect(status.stdout).toMatch(/\[GNUPG:\] GOODSIG/);
    expect(status.stdout).toMatch(/\[GNUPG:\] DECRYPTION_OKAY/);
    const head = of(/^head /).stdout.trim().split(/\r?\n/);
    expect(head[0]).toBe('person_id,name_zh,nationality,direction,crossed_at,port');
    expect(head.length).toBe(5);
    // The scope: no citizens.
    for (const line of head.slice(1)) expect(line.split(',')[2]).not.toBe('TWN');
    const query = JSON.parse(of(/^curl /).stdout);
    const state = JSON.parse(readFileSync(path.join(dir, 'demo.json'), 'utf8'));
    expect(JSON.stringify(query)).toContain(state.queryId);
    // Batch query, where the link has it: the answer to the uploaded request, signed by NIA.
    if (cmds.some((c) => c.includes('/inbox/'))) {
      const answer = of(/gpg .*--decrypt "\S*\$REQ\.result\.csv\.pgp"/);
      expect(answer.stderr).toMatch(/Good signature from/);
      expect(answer.stdout).toContain(state.queryId);
    }
  });

  test("the README's Quick tour runs as written against the demo", () => {
    const blocks = quickTour();
    const script = blocks.join('\n');
    for (const step of ['link apply', '--scope', 'rules review', 'link approve', '--letter-no', 'deliver', 'sftp', 'gpg', '--kind fields', 'change approve', '--history', 'link suspend']) expect(script).toContain(step);
    const tmp = path.join(scratch, 'tour-tmp');
    mkdirSync(tmp, { recursive: true });
    // As a reader runs it: in the project directory, with the demo's directory and SFTP port.
    const r = sh(`set -eo pipefail\n${script}`, { cwd: ROOT, timeout: 240_000, env: { ...env, D: dir, TMPDIR: tmp } });
    if (r.code !== 0) throw new Error(`the Quick tour failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
    expect(r.stderr).toMatch(/Good signature from/);
    expect(r.stdout).toMatch(/^person_id,nationality,crossed_at,port$/m);
    expect(r.stdout).toMatch(/^(JPN|USA)$|,(JPN|USA),/m);
    // The change made revision 2.
    expect(r.stdout).toMatch(/^\s+2\s+\S+\s+change \d+/m);
    expect(r.stdout).toMatch(/^link\s+\d+ \(revision 2\)$/m);
    // The suspended link's login was refused, and the usage log recorded it.
    expect(r.stdout).toMatch(/login refused: link \d+ is suspended/);
    expect(r.stdout).toMatch(/\tauth\.failed\t/);
  });

  test('a second demo on the same directory while the first runs is refused in one line, and the first goes on', async () => {
    const r = spawnSync(process.execPath, [BIN, 'demo', '--data-dir', dir], { env, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^nia-link: a demo already runs on .* \(process \d+\)/)]);
    expect((await fetch(`http://127.0.0.1:${ports.http}/healthz`)).status).toBe(200);
  });

  test('stops cleanly on Ctrl-C, and a second run reuses the directory and prints the same guide', async () => {
    const first = demo!;
    expect(await stopDemo(first)).toBe(0);
    expect(first.out()).toMatch(/stopped\s*$/);
    expect(existsSync(path.join(dir, 'demo.pid'))).toBe(false);
    const before = readFileSync(path.join(dir, 'demo.json'), 'utf8');
    demo = startDemo();
    const again = await guideOf(demo);
    expect(again).not.toMatch(/drill installation created/);
    expect(again).not.toMatch(/seeded \d+/);
    const guideText = (out: string) => out.slice(out.indexOf('== nia-link demo'), out.indexOf('Ctrl-C'));
    expect(guideText(again)).toBe(guideText(guide));
    expect(commandsOf(again)).toEqual(commandsOf(guide));
    expect(readFileSync(path.join(dir, 'demo.json'), 'utf8')).toBe(before);
    expect(await stopDemo(demo)).toBe(0);
  });

  test('refuses a production installation, or a directory holding something else, in one line', () => {
    const prod = path.join(scratch, 'production');
    const init = spawnSync(process.execPath, [BIN, '--data-dir', prod, 'init'], { env, encoding: 'utf8' });
    expect(init.status).toBe(0);
    const r = spawnSync(process.execPath, [BIN, 'demo', '--data-dir', prod], { env, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^nia-link: .*production installation/)]);
    // Nor does it spread over a directory holding something else.
    const notes = path.join(scratch, 'notes');
    mkdirSync(notes, { recursive: true });
    writeFileSync(path.join(notes, 'todo.txt'), 'not a data directory\n');
    const other = spawnSync(process.execPath, [BIN, 'demo', '--data-dir', notes], { env, encoding: 'utf8', timeout: 60_000 });
    expect(other.status).toBe(1);
    expect(other.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^nia-link: .*not empty and holds no installation/)]);
  });
});

describe('progress where a person waits', () => {
  /** The command on a terminal (a pseudo-terminal made by script(1)), and in a pipe. */
  const onTerminal = (args: string[]) => spawnSync('script', ['-qec', [process.execPath, BIN, ...args].map((a) => `'${a}'`).join(' '), '/dev/null'], { env, encoding: 'utf8', input: '', timeout: 120_000 });
  const inPipe = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8', timeout: 120_000 });

  test('seed, log verify and backup draw one line in place on a terminal; nothing in a pipe or with --json', () => {
    const data = path.join(scratch, 'progress');
    const d = ['--data-dir', data];
    expect(inPipe([...d, 'init']).status).toBe(0);

    const seedTty = onTerminal([...d, 'seed', '--rows', '60000', '--dataset', 'entry_exit']);
    expect(seedTty.status).toBe(0);
    expect(seedTty.stdout).toMatch(/\rentry_exit \[#+\.*\]\s+\d+%\s+\d+\/60000 rows/);
    expect(seedTty.stdout).toMatch(/\r\x1b\[Kseeded entry_exit: 60000 rows/);
    const seedPipe = inPipe([...d, 'seed', '--rows', '60000', '--dataset', 'entry_exit']);
    expect(seedPipe.status).toBe(0);
    expect(seedPipe.stderr).toBe('');
    expect(seedPipe.stdout).toMatch(/^seeded entry_exit: 60000 rows/);

    const verifyTty = onTerminal([...d, 'log', 'verify']);
    expect(verifyTty.status).toBe(0);
    expect(verifyTty.stdout).toMatch(/\rusage log . verifying/);
    expect(verifyTty.stdout).toMatch(/usage log verified/);
    const verifyJson = onTerminal([...d, 'log', 'verify', '--json']);
    expect(verifyJson.stdout).not.toMatch(/verifying/);
    expect(JSON.parse(verifyJson.stdout.replace(/\r/g, '')).ok).toBe(true);
    const verifyPipe = inPipe([...d, 'log', 'verify']);
    expect(verifyPipe.stderr).toBe('');

    const backupTty = onTerminal([...d, 'backup', '--out', path.join(scratch, 'backup-tty')]);
    expect(backupTty.status).toBe(0);
    expect(backupTty.stdout).toMatch(/\rbackup . copying/);
    const backupPipe = inPipe([...d, 'backup', '--out', path.join(scratch, 'backup-pipe')]);
    expect(backupPipe.status).toBe(0);
    expect(backupPipe.stderr).toBe('');
  });
});
