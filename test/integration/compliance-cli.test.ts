import { rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { addDays, addMonths, taipeiDate } from '../../src/domain';
import { chainHash, GENESIS_HASH, recordDigestOf } from '../../src/usagelog/chain';
import { cleanupKeys, cli, makeAgencyKeys, REVIEW_ARGS, RULES_TEXT, STAMPED_FORM, testDatabase, tmpDir, withPg, writeTemp, type AgencyKeys, type TestDatabase } from '../helpers/world';

/**
 * The regulation's dates through the built command, as an operator types them (R6.6, R10.4, R11.1,
 * R12.1, R-F5): on a production installation no command moves time or back-dates an event; a drill
 * installation moves time and says so everywhere.
 */
let keys: AgencyKeys;
let dir: string;
/** The control database of `dir`'s installation: its SQLite file, or (PostgreSQL pass) a scratch database. */
let db: TestDatabase;
let files: { pub: string; ssh: string; rules: string };
let letters = 0;
const today = () => taipeiDate(new Date());
const letter = () => `府授字第115${String(++letters).padStart(7, '0')}號`;

beforeAll(() => {
  keys = makeAgencyKeys();
  files = { pub: writeTemp(keys.dir, 'agency_pub.asc', keys.publicArmored), ssh: `${keys.sshPrivateFile}.pub`, rules: writeTemp(keys.dir, 'rules.txt', RULES_TEXT) };
});
afterAll(() => cleanupKeys(keys));
beforeEach(async () => {
  dir = tmpDir();
  db = await testDatabase();
});
afterEach(async () => {
  rmSync(dir, { recursive: true, force: true });
  await db?.drop();
});

const run = (args: string[], env: Record<string, string> = {}) => cli(dir, args, { ...db.env, ...env });
const lastLine = (out: string) => out.trim().split('\n').pop()!;

/** One line on stderr, no stack trace, non-zero exit. */
function refused(r: { code: number; stderr: string }, pattern: RegExp): void {
  expect(r.code).not.toBe(0);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\s+at .*\.(js|ts):\d+/);
}

function ok(r: { code: number; stdout: string; stderr: string }): string {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** An installation with one approved link of agency A001; returns its id. */
function installation(init: string[] = ['init'], account = 'a001'): string {
  ok(run(init));
  ok(run(['agency', 'add', '--code', 'A001', '--name', '財政部賦稅署']));
  return approvedLink(account);
}

function approvedLink(account: string): string {
  const id = lastLine(
    ok(
      run([
        'link', 'apply', '--agency', 'A001', '--dataset', 'entry_exit', '--fields', 'person_id,port', '--legal-basis', '所得稅法第7條', '--purpose', '居住者身分認定',
        '--department', '稽核科', '--officer', '王小明', '--supervisor', '陳大文', '--from', addDays(today(), -10), '--to', addMonths(today(), 24), '--disposal', '刪除',
        '--method', 'sftp-pull', '--allow-ip', '127.0.0.1/32', '--account', account, '--ssh-key', files.ssh, '--pgp-key', files.pub, '--rules', files.rules,
        '--scope', 'all', '--scope-justification', 'test: the whole dataset',
      ]),
    ),
  );
  ok(run(REVIEW_ARGS(id)));
  ok(run(['link', 'approve', id, '--letter-no', `移署資字${letter()}`, '--letter-date', today(), '--stamped-form', writeTemp(dir, 'stamped.pdf', STAMPED_FORM.content)]));
  return id;
}

const logJson = () => JSON.parse(ok(run(['log', 'list', '--json']))) as { seq: number; at: string; type: string; detail: Record<string, unknown> }[];
const linkJson = (id: string) => JSON.parse(ok(run(['link', 'show', id, '--json']))) as { status: string; endReason: string | null; endsOn: string | null };

describe('a production installation: time cannot be bent (R6.6, R10.4, R11.1)', () => {
  it('R6.6 every state change happens now: --at and NIA_LINK_CLOCK are refused with one line and nothing is written; compliance status and finding list may preview a day', () => {
    const id = installation();
    const before = logJson().length;
    const ahead = addMonths(today(), 24);
    for (const args of [
      ['compliance', 'sweep', '--at', ahead],
      ['link', 'suspend', id, '--reason', '違規', '--at', '2025-01-10'],
      ['finding', 'add', '--link', id, '--deadline', addDays(today(), 10), '--text', 'x', '--at', today()],
      ['agency', 'add', '--code', 'A002', '--name', 'x', '--at', today()],
      ['change', 'approve', '1', '--at', today()],
    ]) {
      refused(run(args), /--at exists only on drill installations/);
    }
    refused(run(['link', 'suspend', id, '--reason', '違規'], { NIA_LINK_CLOCK: '2025-01-10T09:00:00+08:00' }), /NIA_LINK_CLOCK exists only on drill installations/);
    refused(run(['compliance', 'status', '--at', ahead], { NIA_LINK_CLOCK: '2025-01-10T09:00:00+08:00' }), /NIA_LINK_CLOCK exists only on drill installations/);
    expect(logJson()).toHaveLength(before);
    expect(linkJson(id).status).toBe('active');

    const f = lastLine(ok(run(['finding', 'add', '--link', id, '--deadline', addDays(today(), 10), '--text', '日誌未依規定保存'])));
    expect(ok(run(['compliance', 'status', '--at', addDays(today(), 11)]))).toContain(`finding ${f} (link ${id}): OVERDUE since ${addDays(today(), 11)}`);
    expect(ok(run(['finding', 'list', '--at', addDays(today(), 11)]))).toMatch(new RegExp(`^${f}\\tlink ${id}\\toverdue`, 'm'));
    expect(ok(run(['compliance', 'status']))).toContain(`finding ${f} (link ${id}): due ${addDays(today(), 10)}`);
    expect(linkJson(id).status).toBe('active');
  });

  it('R10.4 R11.1 dates claimed for past events come from dated documents; deadlines are never past', () => {
    const id = installation();
    refused(run(['finding', 'add', '--link', id, '--deadline', addDays(today(), -3), '--text', '過去期限']), /: the deadline .* is in the past \(today is .*\) \(--deadline\)/);
    const f = lastLine(ok(run(['finding', 'add', '--link', id, '--deadline', addDays(today(), 10), '--text', 'x'])));
    refused(run(['finding', 'remediate', f, '--completed-on', addDays(today(), -60), '--letter-no', letter()]), new RegExp(`is before finding ${f} was recorded on ${today()}`));
    refused(run(['finding', 'remediate', f, '--completed-on', addDays(today(), 1), '--letter-no', letter()]), /is in the future/);
    refused(run(['finding', 'remediate', f]), /: the completion date needs the letter number of the document that dates it \(--letter-no\)/);
    refused(run(['finding', 'extend', f, '--deadline', addDays(today(), -1)]), /is in the past/);
    refused(run(['link', 'terminate', id, '--notice-date', addDays(today(), -200), '--effective', addMonths(today(), 1), '--letter-no', letter()]), /the notice's date .* (more than 30 days back|is before link \d+ was approved).* \(--notice-date\)/);
    refused(run(['link', 'terminate', id, '--notice-date', '2026-01-01', '--effective', today(), '--letter-no', letter()]), /--notice-date|one month/);
    refused(run(['link', 'change', id, '--kind', 'stop', '--value', addDays(today(), -1), '--letter-no', letter()]), /: the stop date .* is in the past .*\(--value\)/);
    refused(run(['link', 'change', id, '--kind', 'stop']), /: a stop request needs the letter number of the agency's written request to stop \(--letter-no\)/);
    refused(run(['link', 'remediated', id, '--letter-no', letter()]), new RegExp(`link ${id} is active, not suspended`));

    const ref = letter();
    expect(ok(run(['finding', 'remediate', f, '--letter-no', ref, '--note', '已改善']))).toContain(`finding ${f} remediated on ${today()} (${ref})`);
    const rec = logJson().filter((r) => r.type === 'finding.remediated').pop()!;
    expect(rec.detail).toMatchObject({ completedOn: today(), letterNo: ref, recordedAt: expect.any(String) });
    expect(linkJson(id)).toMatchObject({ status: 'active', endsOn: null });
  });

  it('R6.6 log verify names a record older than the one before it, even with every hash recomputed', async () => {
    installation();
    type Row = Record<string, string & number>;
    /** With the guards dropped: date the record before the last one back, then recompute every digest and hash. Its seq. */
    const backdate = async (all: () => Promise<Row[]> | Row[], update: (sql: string, values: unknown[]) => Promise<void> | void): Promise<number> => {
      const rows = await all();
      const target = Number(rows[rows.length - 2].seq);
      await update("UPDATE usage_log SET at = '2025-01-10T04:00:00.000Z' WHERE seq = ?", [target]);
      let prev = GENESIS_HASH;
      for (const r of await all()) {
        const digest = recordDigestOf(Number(r.seq), r.at, r.type, r.agency, r.link_id, r.revision, r.actor, r.ip, r.channel, r.object, r.detail);
        const hash = chainHash(prev, digest);
        await update('UPDATE usage_log SET digest = ?, prev_hash = ?, hash = ? WHERE seq = ?', [digest, prev, hash, r.seq]);
        prev = hash;
      }
      return target;
    };
    let target: number;
    if (db.url) {
      target = await withPg(db.url, async (c) => {
        const triggers = (await c.query<{ name: string }>("SELECT tgname AS name FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = 'usage_log'::regclass")).rows;
        expect(triggers.length).toBeGreaterThan(0);
        for (const t of triggers) await c.query(`DROP TRIGGER "${t.name}" ON usage_log`);
        const numbered = (sql: string) => ((n) => sql.replace(/\?/g, () => `$${++n}`))(0);
        return backdate(
          async () => (await c.query<Row>('SELECT * FROM usage_log ORDER BY seq')).rows,
          async (sql, values) => void (await c.query(numbered(sql), values)),
        );
      });
    } else {
      const sq = new Database(path.join(dir, 'nia-link.db'));
      try {
        for (const t of sq.prepare("SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='usage_log'").all() as { name: string }[]) sq.exec(`DROP TRIGGER "${t.name}"`);
        target = await backdate(
          () => sq.prepare('SELECT * FROM usage_log ORDER BY seq').all() as Row[],
          (sql, values) => void sq.prepare(sql).run(...values),
        );
      } finally {
        sq.close();
      }
    }
    const v = run(['log', 'verify']);
    expect(v.code).toBe(1);
    expect(v.stdout + v.stderr).toMatch(new RegExp(`record ${target} is dated 2025-01-10T04:00:00.000Z, before record ${target - 1}`));
  });
});

describe('a drill installation moves time and says so (R6.6, R10.4, R12.1, R-F5)', () => {
  it('R6.6 init --drill records the mode for good: a production installation cannot become a drill; plain init keeps a drill a drill; every record, form and notice is marked', async () => {
    const prod = tmpDir();
    const prodDb = await testDatabase();
    try {
      ok(cli(prod, ['init'], prodDb.env));
      refused(cli(prod, ['init', '--drill'], prodDb.env), /is a production installation: it cannot become a drill/);
      refused(cli(prod, ['init', '--at', today()], prodDb.env), /--at exists only on drill installations/);
    } finally {
      rmSync(prod, { recursive: true, force: true });
      await prodDb.drop();
    }
    refused(run(['init', '--at', today()]), /--at exists only on drill installations/);
    const id = installation(['init', '--drill']);
    expect(ok(run(['init']))).toMatch(/演練 DRILL/);
    const records = logJson();
    expect(records.length).toBeGreaterThan(0);
    for (const r of records) expect(r.detail).toMatchObject({ drill: true });
    expect(ok(run(['link', 'form', id]))).toContain('演練 DRILL');
    ok(run(['link', 'suspend', id, '--reason', '演練']));
    const notices = JSON.parse(ok(run(['notice', 'list', '--link', id, '--json']))) as { textZh: string; textEn: string }[];
    expect(notices.length).toBeGreaterThan(0);
    for (const n of notices) expect(n.textZh.startsWith('【演練 DRILL】') && n.textEn.startsWith('【演練 DRILL】')).toBe(true);
  });

  it('R12.1 R-F5 a stop approved through the CLI ends the link through the one path: disposal task and notice, at once when dated today', () => {
    const id = installation(['init', '--drill']);
    const cr = lastLine(ok(run(['link', 'change', id, '--kind', 'stop', '--letter-no', letter()])));
    expect(ok(run(['change', 'approve', cr, '--letter-no', `移署資字${letter()}`, '--letter-date', today()]))).toMatch(/\(terminated\)/);
    expect(linkJson(id)).toMatchObject({ status: 'terminated', endReason: 'stop-request' });
    expect(JSON.parse(ok(run(['notice', 'list', '--link', id, '--json']))).map((n: { kind: string }) => n.kind)).toEqual(['ended']);
    refused(run(['disposal', 'confirm', id, '--how', '銷毀', '--by', '王承辦', '--done-on', addDays(today(), -1), '--letter-no', letter()]), new RegExp(`before link ${id} ended on ${today()}`));
    expect(ok(run(['disposal', 'confirm', id, '--how', '銷毀', '--by', '王承辦', '--letter-no', letter()]))).toContain(`disposal for link ${id} confirmed by 王承辦: 銷毀, done on ${today()}`);
  });

  it('R6.6 R10.4 R12.1 --at (and NIA_LINK_CLOCK) run a command as of another day: a later stop date ends the link by the sweep; a suspension without a finding ends six months on', () => {
    const suspended = installation(['init', '--drill'], 'a001');
    const stopped = approvedLink('a002');
    const stopOn = addMonths(today(), 1);
    const cr = lastLine(ok(run(['link', 'change', stopped, '--kind', 'stop', '--value', stopOn, '--letter-no', letter()])));
    expect(ok(run(['change', 'approve', cr, '--letter-no', `移署資字${letter()}`, '--letter-date', today()]))).toMatch(/\(active\)/);
    ok(run(['compliance', 'sweep', '--at', addDays(stopOn, 1)]));
    expect(linkJson(stopped)).toMatchObject({ status: 'terminated', endReason: 'stop-request' });
    ok(run(['disposal', 'confirm', stopped, '--how', '銷毀', '--by', '王承辦', '--letter-no', letter(), '--at', addDays(stopOn, 2)]));

    ok(run(['link', 'suspend', suspended, '--reason', '違反第八點']));
    refused(run(['link', 'resume-request', suspended]), /not recorded yet/);
    ok(run(['compliance', 'sweep'], { NIA_LINK_CLOCK: `${addMonths(today(), 6)}T12:00:00+08:00` }));
    expect(linkJson(suspended).status).toBe('suspended');
    ok(run(['compliance', 'sweep', '--at', addMonths(today(), 7)]));
    expect(linkJson(suspended)).toMatchObject({ status: 'terminated', endReason: 'reapplication-required' });
    const v = run(['log', 'verify']);
    expect(v.code).toBe(0);
  });
});
