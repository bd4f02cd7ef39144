import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { openControl } from '../../src/db/open';
import { listLog } from '../../src/usagelog';
import { BIN, cli as cliOf, testDatabase, tmpDir, type TestDatabase } from '../helpers/world';

/** `nia-link operator …` through the built command, as an administrator uses it. */
let dir: string;
/** The control database of `dir`'s installation: its SQLite file, or (PostgreSQL pass) a scratch database. */
let db: TestDatabase;
const cli = (d: string, args: string[]) => cliOf(d, args, db.env);
const PASSWORD = 'correct horse battery staple';
const withStdin = (args: string[], input: string) => {
  const r = spawnSync(process.execPath, [BIN, '--data-dir', dir, ...args], { input, encoding: 'utf8', env: { ...process.env, ...db.env, NIA_LINK_LOG_LEVEL: 'warn' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
};

beforeAll(async () => {
  dir = tmpDir();
  db = await testDatabase();
  expect(cli(dir, ['init']).code).toBe(0);
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await db?.drop();
});

it('adds operators with a password from standard input, and refuses mistakes in one line', () => {
  const ok = withStdin(['operator', 'add', '--username', 'ada', '--role', 'admin', '--password-stdin'], `${PASSWORD}\n`);
  expect(ok).toMatchObject({ code: 0 });
  expect(ok.stdout).toMatch(/^ada\tadmin\tenabled\tpassword only/);
  const refusals: [string[], string, RegExp][] = [
    [['--username', 'bob', '--role', 'admin'], 'short\n', /at least 12 characters/],
    [['--username', 'bob', '--role', 'boss'], `${PASSWORD}\n`, /role 'boss': one of admin, operator, auditor/],
    [['--username', 'Bob Smith', '--role', 'admin'], `${PASSWORD}\n`, /username 'Bob Smith'/],
    [['--username', 'ada', '--role', 'auditor'], `${PASSWORD}\n`, /operator 'ada' exists already/],
  ];
  for (const [args, input, message] of refusals) {
    const r = withStdin(['operator', 'add', ...args, '--password-stdin'], input);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  }
  // Without a terminal and without --password-stdin there is nobody to ask.
  const noTty = withStdin(['operator', 'add', '--username', 'bob', '--role', 'admin'], '');
  expect(noTty.stderr).toMatch(/--password-stdin/);
});

it('keeps an enabled admin, changes roles, disables, and logs every change with who did it', async () => {
  expect(withStdin(['operator', 'add', '--username', 'oscar', '--role', 'operator', '--password-stdin'], `${PASSWORD}\n`).code).toBe(0);
  expect(cli(dir, ['operator', 'disable', 'ada']).stderr).toMatch(/last enabled admin/);
  expect(cli(dir, ['operator', 'role', 'ada', 'auditor']).stderr).toMatch(/last enabled admin/);
  expect(cli(dir, ['operator', 'role', 'oscar', 'admin', '--by', 'chief']).code).toBe(0);
  expect(cli(dir, ['operator', 'disable', 'ada']).code).toBe(0);
  const list = JSON.parse(cli(dir, ['operator', 'list', '--json']).stdout);
  expect(list.map((o: { username: string; role: string; disabled: boolean }) => [o.username, o.role, o.disabled])).toEqual([
    ['ada', 'admin', true],
    ['oscar', 'admin', false],
  ]);
  expect(JSON.stringify(list)).not.toMatch(/scrypt|passwordHash/);
  const totp = cli(dir, ['operator', 'totp', 'enable', 'oscar']);
  expect(totp.stdout).toMatch(/^secret: [A-Z2-7]{32}\nuri: otpauth:\/\/totp\/nia-link:oscar\?secret=/);
  const cdb = await openControl({ dataDir: dir, database: { url: db.url } });
  try {
    const types = (await listLog(cdb.db, {})).filter((r) => r.type.startsWith('operator.')).map((r) => [r.type, r.object, r.actor?.startsWith('cli:') ? 'cli' : r.actor]);
    expect(types).toEqual([
      ['operator.added', 'operator:ada', 'cli'],
      ['operator.added', 'operator:oscar', 'cli'],
      ['operator.role-set', 'operator:oscar', 'chief'],
      ['operator.disabled', 'operator:ada', 'cli'],
      ['operator.totp-set', 'operator:oscar', 'cli'],
    ]);
  } finally {
    await cdb.close();
  }
});
