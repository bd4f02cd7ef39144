import { randomBytes } from 'node:crypto';
import { type ChildProcess, execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { controlDbFile, openControlDb, type ControlDb, type SqliteControlDb } from '../../src/db';
import { openPostgresControlDb } from '../../src/db/pg/control';
import { rawRun } from '../../src/db/dialect';
import { sql } from 'drizzle-orm';
import { createScratchDb, PG_ADMIN_URL, withPg } from './pg';
import { type Clock, taipeiDate } from '../../src/domain';
import { plainPdf } from './documents';
import { loadCatalogs, Registry, RulesService, VendorService, type ApplyInput } from '../../src/registry';

export const ROOT = path.resolve(__dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'nia-link.js');

export function tmpDir(prefix = 'nia-link-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A clock the test moves by hand. */
export class TestClock implements Clock {
  // Starts at the real time: agency keys made by the test are only valid from their creation on.
  constructor(private t: Date = new Date()) {}
  now(): Date {
    return new Date(this.t);
  }
  set(iso: string): void {
    this.t = new Date(iso);
  }
  advanceDays(days: number): void {
    this.t = new Date(this.t.getTime() + days * 86400000);
  }
}

export interface AgencyKeys {
  gnupgHome: string;
  fingerprint: string;
  publicArmored: string;
  sshPublic: string;
  sshPrivateFile: string;
  dir: string;
}

/**
 * An agency's keys made the way an agency makes them: an OpenPGP key with real GnuPG (Ed25519 +
 * Curve25519 subkey) in a private GNUPGHOME, and an SSH key with ssh-keygen.
 */
export function makeAgencyKeys(): AgencyKeys {
  const dir = tmpDir('nia-link-agency-');
  const gnupgHome = path.join(dir, 'gnupg');
  execFileSync('mkdir', ['-m', '700', gnupgHome]);
  const env = { ...process.env, GNUPGHOME: gnupgHome };
  const gpg = (...args: string[]) => execFileSync('gpg', ['--batch', '--passphrase', '', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  gpg('--quick-gen-key', 'Agency Test <test@agency.example.gov.tw>', 'ed25519', 'cert,sign', 'never');
  const fingerprint = gpg('--list-keys', '--with-colons').toString().split('\n').find((l) => l.startsWith('fpr'))!.split(':')[9];
  gpg('--quick-add-key', fingerprint, 'cv25519', 'encr', 'never');
  const publicArmored = gpg('--armor', '--export', fingerprint).toString();
  const sshPrivateFile = path.join(dir, 'agency_ssh');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', sshPrivateFile]);
  return { gnupgHome, fingerprint, publicArmored, sshPublic: readFileSync(`${sshPrivateFile}.pub`, 'utf8'), sshPrivateFile, dir };
}

export function cleanupKeys(k: AgencyKeys): void {
  spawnSync('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: k.gnupgHome } });
  rmSync(k.dir, { recursive: true, force: true });
}

export const RULES_TEXT = '應用移民資訊管理規定\n一、使用目的\n二、稽核\n三、查詢程序\n四、安全維護\n五、委外\n六、損害責任\n七、使用者責任\n八、帳號異動\n';

/** An application that passes every check; tests override what they are about. */
export function application(keys: AgencyKeys, over: Partial<ApplyInput> = {}): ApplyInput {
  return {
    agency: 'A001',
    dataset: 'entry_exit',
    fields: [{ name: 'person_id' }, { name: 'nationality' }, { name: 'crossed_at' }, { name: 'port' }],
    legalBasis: '所得稅法第7條',
    purpose: '居住者身分認定',
    department: '稽核科',
    officer: '王小明',
    supervisor: '陳大文',
    from: '2026-01-01',
    to: '2027-12-31',
    disposal: '刪除',
    methods: ['sftp-pull'],
    allowIps: ['127.0.0.1/32'],
    account: 'a001',
    sshKeys: [keys.sshPublic],
    pgpKey: keys.publicArmored,
    rules: { filename: 'rules.txt', content: Buffer.from(RULES_TEXT) },
    scope: { text: 'all', justification: 'test: the whole dataset' },
    ...over,
  };
}

export interface TestWorld {
  dataDir: string;
  cdb: SqliteControlDb;
  registry: Registry;
  rules: RulesService;
  vendors: VendorService;
  clock: TestClock;
  close(): void;
}

/** The registry and the services beside it over a control database the test opened itself. */
export function servicesOn(cdb: ControlDb, clock = new TestClock()): Pick<TestWorld, 'registry' | 'rules' | 'vendors'> {
  const registry = new Registry(cdb, loadCatalogs(), clock);
  return { registry, rules: new RulesService(cdb, registry, clock), vendors: new VendorService(cdb, registry, clock) };
}

export function openWorld(clock = new TestClock()): TestWorld {
  const dataDir = tmpDir();
  const cdb = openControlDb(dataDir, { create: true });
  return {
    dataDir,
    cdb,
    ...servicesOn(cdb, clock),
    clock,
    close() {
      void cdb.close(); // at once: nothing is being written
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The dialect the suites that run on both are run on: `NIA_TEST_DIALECT=postgres` (npm run test:postgres) or SQLite. */
export const TEST_DIALECT: 'sqlite' | 'postgres' = process.env.NIA_TEST_DIALECT === 'postgres' ? 'postgres' : 'sqlite';

/** A world whose control database is of any dialect (its `cdb` is the port, nothing SQLite's). */
export interface AnyWorld extends Omit<TestWorld, 'cdb' | 'close'> {
  cdb: ControlDb;
  /** The configuration's `database` section that reaches this control database (child processes). */
  database: { url?: string };
  close(): Promise<void>;
}

/**
 * Retry `check` (an assertion) until it passes or `ms` have gone by, then fail with its last error:
 * for a usage-log record a server writes just after it acts (on PostgreSQL it commits a moment
 * after the client has seen the act).
 */
export async function eventually(check: () => Promise<void>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() >= until) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** What helpers need of a world of either kind. */
export type SomeWorld = Omit<AnyWorld, 'close' | 'database'> & { database?: { url?: string } };

/**
 * A world on the dialect of this test pass: SQLite in its data directory, or a scratch PostgreSQL
 * database of its own (created here, dropped by `close`). Suites that open their world with this run
 * in both passes (jest.postgres.config.js picks them).
 */
export async function openTestWorld(clock = new TestClock()): Promise<AnyWorld> {
  if (TEST_DIALECT === 'sqlite') {
    const w = openWorld(clock);
    return { ...w, database: {}, close: async () => w.close() };
  }
  const dataDir = tmpDir();
  const scratch = await createScratchDb();
  const cdb = await openPostgresControlDb(scratch.url);
  // The commands and roles a suite starts (cli, startRole) reach the same database.
  process.env.NIA_LINK_DATABASE_URL = scratch.url;
  return {
    dataDir,
    cdb,
    database: { url: scratch.url },
    ...servicesOn(cdb, clock),
    clock,
    async close() {
      if (process.env.NIA_LINK_DATABASE_URL === scratch.url) delete process.env.NIA_LINK_DATABASE_URL;
      await cdb.close();
      await scratch.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A pending link whose management rules are reviewed as covering all eight topics (R4.1): ready for approval. */
export async function approvableLink(w: Pick<TestWorld, 'registry' | 'rules'>, keys: AgencyKeys, over: Partial<ApplyInput> = {}): Promise<number> {
  if (!(await w.registry.listAgencies()).some((a) => a.code === (over.agency ?? 'A001'))) {
    await w.registry.addAgency({ code: over.agency ?? 'A001', name: '財政部賦稅署', nameEn: 'Taxation Administration' }, 'test');
  }
  const view = await w.registry.apply(application(keys, over), 'test');
  await w.rules.review({ linkId: view.id }, ALL_TOPICS, undefined, 'test-reviewer');
  return view.id;
}

/** The one way tests make an approved, active link. */
export async function approvedLink(w: Pick<TestWorld, 'registry' | 'rules'>, keys: AgencyKeys, over: Partial<ApplyInput> = {}): Promise<number> {
  const id = await approvableLink(w, keys, over);
  await w.registry.approve(id, { by: 'test', ...REPLY_LETTER(), stampedForm: STAMPED_FORM });
  return id;
}

/**
 * NIA's reply letter (R-F9), dated yesterday: never after a test registry's day, whose clock starts
 * at the real time or later (agency keys made by the test are only valid from then on).
 */
export const REPLY_LETTER = () => ({ letterNo: '移署資字第1150000001號', letterDate: taipeiDate(new Date(Date.now() - 86400000)) });
/** The agency's stamped form (R-F9), as a plain one-page PDF. */
export const STAMPED_FORM = { filename: 'stamped-form.pdf', content: plainPdf() };
/** What `link approve` adds on the command line (R-F9): the letter, and the stamped form written into `dir`. */
export function approveArgs(dir: string): string[] {
  const file = path.join(dir, STAMPED_FORM.filename);
  writeFileSync(file, STAMPED_FORM.content);
  const l = REPLY_LETTER();
  return ['--letter-no', l.letterNo, '--letter-date', l.letterDate, '--stamped-form', file];
}
/** What `change approve` adds on the command line (R-F9). */
export const changeApproveArgs = (): string[] => ['--letter-no', REPLY_LETTER().letterNo, '--letter-date', REPLY_LETTER().letterDate];

/**
 * Makes a link's revisions what migration 0011 made of every revision recorded before scopes existed
 * (the whole dataset, "recorded before scopes existed"): such a link can no longer be applied for, so
 * tests make one the way the migration did. Do it before any registry has read the link's revisions
 * (a registry keeps revisions it has read: they never change otherwise).
 */
export function makeLegacyScope(dataDir: string, linkId: number): void {
  const db = new Database(controlDbFile(dataDir));
  try {
    db.transaction(() => {
      db.exec('DROP TRIGGER link_revision_no_update');
      db.prepare(`UPDATE link_revision SET content = json_set(content, '$.scope', json('{"all":true,"justification":"recorded before scopes existed"}'), '$.maxIdsPerDay', 1000) WHERE link_id = ?`).run(linkId);
      db.exec("CREATE TRIGGER link_revision_no_update BEFORE UPDATE ON link_revision BEGIN SELECT RAISE(ABORT, 'link revisions are immutable; file a change request'); END");
    })();
  } finally {
    db.close();
  }
}

export { withPg };

/**
 * `makeLegacyScope` on either dialect: the SQLite file in `dataDir`, or the PostgreSQL database at
 * `url` when there is one (an installation moved there by `db migrate` keeps such revisions).
 */
export async function makeLegacyScopeIn(where: { dataDir: string; url?: string }, linkId: number): Promise<void> {
  if (!where.url) return makeLegacyScope(where.dataDir, linkId);
  await withPg(where.url, async (c) => {
    await c.query('BEGIN');
    try {
      await c.query('ALTER TABLE link_revision DISABLE TRIGGER link_revision_no_update');
      await c.query(`UPDATE link_revision SET content = jsonb_set(jsonb_set(content::jsonb, '{scope}', '{"all":true,"justification":"recorded before scopes existed"}'::jsonb), '{maxIdsPerDay}', '1000'::jsonb)::text WHERE link_id = $1`, [linkId]);
      await c.query('ALTER TABLE link_revision ENABLE TRIGGER link_revision_no_update');
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK');
      throw err;
    }
  });
}

/** A control database of a test's installation (see testDatabase). */
export interface TestDatabase {
  /** What `cli` needs to reach it: `NIA_LINK_DATABASE_URL` on PostgreSQL, nothing on SQLite. */
  env: Record<string, string>;
  /** PostgreSQL: its URL. */
  url?: string;
  /**
   * A copy of it as it is now, for a copy of the data directory: on SQLite the file goes with the
   * directory (nothing to do); on PostgreSQL a new scratch database made from it (no connection
   * may be open to it meanwhile: the CLI's have ended).
   */
  copy(): Promise<TestDatabase>;
  drop(): Promise<void>;
}

const SQLITE_TEST_DATABASE: TestDatabase = { env: {}, copy: async () => SQLITE_TEST_DATABASE, drop: async () => undefined };

function pgTestDatabase(name: string): TestDatabase {
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  const url = u.toString();
  return {
    env: { NIA_LINK_DATABASE_URL: url },
    url,
    async copy() {
      const copy = `nia_test_${randomBytes(6).toString('hex')}`;
      await withPg(PG_ADMIN_URL, (c) => c.query(`CREATE DATABASE ${copy} TEMPLATE ${name}`));
      return pgTestDatabase(copy);
    },
    async drop() {
      if (!/^nia_test_[0-9a-f]{12}$/.test(name)) throw new Error(`refusing to drop ${name}: not a scratch database`);
      await withPg(PG_ADMIN_URL, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/**
 * The control database of an installation a suite makes itself with the CLI (`init`): on the
 * PostgreSQL pass a scratch database of its own, reached through `env` (give it to every `cli`
 * call of that installation) and dropped by `drop`; on SQLite nothing (the file in the data
 * directory), `env` empty. jest.postgres.config.js picks suites that call this.
 */
export async function testDatabase(): Promise<TestDatabase> {
  if (TEST_DIALECT === 'sqlite') return SQLITE_TEST_DATABASE;
  return pgTestDatabase((await createScratchDb()).name);
}

/** The review an approvable link needs, as the acceptance scripts record it. */
export const ALL_TOPICS = '1,2,3,4,5,6,7,8';
export const REVIEW_ARGS = (linkId: string) => ['rules', 'review', '--link', linkId, '--covers', ALL_TOPICS];

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the real `nia-link` command (the built one, as a user does after npm ci). */
export function cli(dataDir: string, args: string[], env: Record<string, string> = {}): CliResult {
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [BIN, '--data-dir', dataDir, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NIA_LINK_LOG_LEVEL: 'warn', ...env },
    timeout: 60000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * cli(), without blocking this process meanwhile: for a command that writes while services of this
 * process may be in the middle of a write of their own (on PostgreSQL, their transaction holds the
 * write lock across round trips, which a blocked event loop would never finish).
 */
export function cliAsync(dataDir: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, '--data-dir', dataDir, ...args], { env: { ...process.env, NIA_LINK_LOG_LEVEL: 'warn', ...env }, timeout: 60000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export function writeTemp(dir: string, name: string, content: string | Buffer): string {
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return file;
}

/** The process ids of a process's children (a role's worker processes). */
export function childPids(pid: number): number[] {
  return spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => Number(l.trim()))
    .filter(Boolean);
}

/** Is the process still there? */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `nia-link start --role ROLE` in a child process, as an operator runs it. */
export interface RoleProcess {
  child: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  exited: Promise<number | null>;
  /** SIGKILL if it still runs (for a test's finally). */
  kill(): void;
}

/** Starts the role and waits (up to 30 s) until it says it is ready. */
export async function startRole(dataDir: string, role: string, env: Record<string, string | undefined>, opts: { detached?: boolean } = {}): Promise<RoleProcess> {
  const child = spawn(process.execPath, [BIN, '--data-dir', dataDir, 'start', '--role', role], { env: { ...process.env, NIA_LINK_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.detached });
  let out = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (out += b));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  for (let i = 0; i < 300 && !/ready/.test(out) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
  return { child, output: () => out, exited, kill: () => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')) };
}

/**
 * The setup most registry-level test files share: agency keys made once for the file, a fresh world
 * (optionally holding agency A001) for each test, both handed to the file's own variables.
 */
export function worldEachTest(set: { keys: (k: AgencyKeys) => void; world: (w: TestWorld) => void }, opts: { agency?: boolean } = {}): void {
  let keys: AgencyKeys | undefined;
  let w: TestWorld | undefined;
  beforeAll(() => set.keys((keys = makeAgencyKeys())));
  afterAll(() => keys && cleanupKeys(keys));
  beforeEach(async () => {
    w = openWorld();
    if (opts.agency) await w.registry.addAgency({ code: 'A001', name: '財政部賦稅署' }, 'test');
    set.world(w);
  });
  afterEach(() => w?.close());
}

/**
 * Makes every insert into `table` (those where `when` holds: an SQL condition on NEW, the same text
 * in both dialects) fail as a full disk would, on either dialect; resolves to the undo. For tests
 * of what a service does when its record cannot be written.
 */
export async function refuseInserts(cdb: ControlDb, table: string, when?: string): Promise<() => Promise<void>> {
  const name = `test_refuse_${table}`;
  if (cdb.dialect === 'sqlite') {
    await cdb.write((tx) => rawRun(tx, sql.raw(`CREATE TRIGGER ${name} BEFORE INSERT ON ${table} ${when ? `WHEN ${when}` : ''} BEGIN SELECT RAISE(ABORT, 'disk full'); END`)));
    return () => cdb.write((tx) => rawRun(tx, sql.raw(`DROP TRIGGER ${name}`)));
  }
  await cdb.write(async (tx) => {
    await rawRun(tx, sql.raw(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$`));
    await rawRun(tx, sql.raw(`CREATE TRIGGER ${name} BEFORE INSERT ON ${table} FOR EACH ROW ${when ? `WHEN (${when})` : ''} EXECUTE FUNCTION ${name}()`));
  });
  return () =>
    cdb.write(async (tx) => {
      await rawRun(tx, sql.raw(`DROP TRIGGER ${name} ON ${table}`));
      await rawRun(tx, sql.raw(`DROP FUNCTION ${name}()`));
    });
}

/**
 * Rewrite top-level keys of a link's revisions behind the services' backs, the revision guard set
 * aside for that one statement (link revisions are immutable otherwise): what an older version
 * allowed, on either dialect. Do it before a registry has read the link's revisions (a registry
 * keeps revisions it has read).
 */
export async function rewriteRevisions(cdb: ControlDb, linkId: number, set: Record<string, unknown>): Promise<void> {
  await cdb.write(async (tx) => {
    for (const [key, value] of Object.entries(set)) {
      if (!/^[A-Za-z]+$/.test(key)) throw new Error(`not a revision key: ${key}`);
      const json = JSON.stringify(value);
      if (cdb.dialect === 'postgres') {
        await rawRun(tx, sql`ALTER TABLE link_revision DISABLE TRIGGER link_revision_no_update`);
        await rawRun(tx, sql`UPDATE link_revision SET content = jsonb_set(content::jsonb, ${`{${key}}`}::text[], ${json}::jsonb)::text WHERE link_id = ${linkId}`);
        await rawRun(tx, sql`ALTER TABLE link_revision ENABLE TRIGGER link_revision_no_update`);
      } else {
        await rawRun(tx, sql`DROP TRIGGER link_revision_no_update`);
        await rawRun(tx, sql`UPDATE link_revision SET content = json_set(content, ${`$.${key}`}, json(${json})) WHERE link_id = ${linkId}`);
        await rawRun(tx, sql.raw("CREATE TRIGGER link_revision_no_update BEFORE UPDATE ON link_revision BEGIN SELECT RAISE(ABORT, 'link revisions are immutable; file a change request'); END"));
      }
    }
  });
}
