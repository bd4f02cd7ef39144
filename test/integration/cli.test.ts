import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { approveArgs, BIN, changeApproveArgs, cleanupKeys, cli as cliOf, makeLegacyScopeIn, makeAgencyKeys, REVIEW_ARGS, RULES_TEXT, STAMPED_FORM, testDatabase, tmpDir, withPg, writeTemp, type AgencyKeys, type TestDatabase } from '../helpers/world';

let keys: AgencyKeys;
let dir: string;
/** The control database of `dir`'s installation: its SQLite file, or (PostgreSQL pass) a scratch database. */
let db: TestDatabase;
let files: { pub: string; ssh: string; rules: string };
beforeAll(() => {
  keys = makeAgencyKeys();
  files = {
    pub: writeTemp(keys.dir, 'agency_pub.asc', keys.publicArmored),
    ssh: `${keys.sshPrivateFile}.pub`,
    rules: writeTemp(keys.dir, 'rules.txt', RULES_TEXT),
  };
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
/** The command on `dir`'s installation. */
const cli = (d: string, args: string[], env: Record<string, string> = {}) => cliOf(d, args, { ...db.env, ...env });

const applyArgs = (over: Record<string, string> = {}) => {
  const o: Record<string, string> = {
    '--agency': 'A001',
    '--dataset': 'entry_exit',
    '--fields': 'person_id,nationality,crossed_at,port',
    '--legal-basis': '所得稅法第7條',
    '--purpose': '居住者身分認定',
    '--department': '稽核科',
    '--officer': '王小明',
    '--supervisor': '陳大文',
    '--from': '2026-01-01',
    '--to': '2028-12-31',
    '--disposal': '刪除',
    '--method': 'sftp-pull',
    '--allow-ip': '127.0.0.1/32',
    '--account': 'a001',
    '--ssh-key': files.ssh,
    '--pgp-key': files.pub,
    '--rules': files.rules,
    '--scope': 'all',
    '--scope-justification': 'test: the whole dataset',
    ...over,
  };
  return ['link', 'apply', ...Object.entries(o).flat()];
};

/** One line on stderr, no stack trace, non-zero exit. */
function expectUserError(r: { code: number; stderr: string }, pattern: RegExp): void {
  expect(r.code).not.toBe(0);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\s+at .*\.(js|ts):\d+/);
}

describe('nia-link CLI', () => {
  it('init → agency add → link apply → approve → change → approve → show works as written', () => {
    expect(cli(dir, ['init']).code).toBe(0);
    expect(cli(dir, ['agency', 'add', '--code', 'A001', '--name', '財政部賦稅署', '--name-en', 'Taxation Administration']).code).toBe(0);
    const applied = cli(dir, applyArgs());
    expect(applied.code).toBe(0);
    const id = applied.stdout.trim().split('\n').pop()!;
    expect(id).toMatch(/^\d+$/);
    expect(cli(dir, REVIEW_ARGS(id)).code).toBe(0);
    expect(cli(dir, ['link', 'approve', id, '--letter-no', '移署資字第1150001號', '--letter-date', '2026-03-01', '--stamped-form', writeTemp(dir, 'stamped.pdf', STAMPED_FORM.content)]).code).toBe(0);
    const changed = cli(dir, ['link', 'change', id, '--kind', 'officer', '--value', '李小華']);
    expect(changed.code).toBe(0);
    const cr = changed.stdout.trim().split('\n').pop()!;
    expect(cli(dir, ['change', 'approve', cr, ...changeApproveArgs()]).code).toBe(0);
    const shown = JSON.parse(cli(dir, ['link', 'show', id, '--json']).stdout);
    expect(shown).toMatchObject({
      id: Number(id),
      agency: 'A001',
      status: 'active',
      revision: 2,
      dataset: 'entry_exit',
      fields: ['person_id', 'nationality', 'crossed_at', 'port'],
      channels: ['sftp-pull'],
      allowIps: ['127.0.0.1/32'],
      account: 'a001',
      from: '2026-01-01',
      to: '2028-12-31',
      pgpFingerprint: keys.fingerprint,
      officer: '李小華',
      letterNo: '移署資字第1150001號',
    });
    const list = JSON.parse(cli(dir, ['link', 'list', '--json']).stdout);
    expect(list).toHaveLength(1);
    expect(JSON.parse(cli(dir, ['agency', 'list', '--json']).stdout)).toEqual([expect.objectContaining({ code: 'A001', government: true })]);
    const log = JSON.parse(cli(dir, ['log', 'list', '--json']).stdout) as { type: string }[];
    expect(log.map((r) => r.type)).toEqual(['agency.added', 'rules.added', 'link.applied', 'rules.reviewed', 'link.approved', 'change.filed', 'change.approved']);
    const verify = cli(dir, ['log', 'verify']);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/verified: 7 records/);
  });

  it('init is idempotent: keys are never replaced, and it says nothing changed', () => {
    expect(cli(dir, ['init']).code).toBe(0);
    const keyFile = path.join(dir, 'keys', 'nia-signing.key.asc');
    const before = readFileSync(keyFile, 'utf8');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(dir, 'keys', 'ssh_host_ed25519_key')).mode & 0o777).toBe(0o600);
    const again = cli(dir, ['init']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/nothing changed/);
    expect(readFileSync(keyFile, 'utf8')).toBe(before);
    const exported = cli(dir, ['key', 'export-signing']);
    expect(exported.stdout).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    expect(exported.stdout).not.toMatch(/PRIVATE/);
    const fp = cli(dir, ['key', 'host-fingerprint']);
    expect(fp.stdout).toMatch(/^SHA256:\S{43} \(ssh-ed25519\)$/m);
    expect(fp.stdout).toMatch(/\(ssh-rsa\)/);
  });

  it('R3.2 an unknown field gets a one-line error, a non-zero exit and leaves no link behind', () => {
    cli(dir, ['init']);
    cli(dir, ['agency', 'add', '--code', 'A001', '--name', 'x']);
    expectUserError(cli(dir, applyArgs({ '--fields': 'person_id,no_such_field' })), /unknown field 'no_such_field'/);
    expect(JSON.parse(cli(dir, ['link', 'list', '--json']).stdout)).toEqual([]);
  });

  it('user mistakes are one line each, never a stack trace', () => {
    // A data directory without the SQLite file was never initialised; a PostgreSQL control database
    // is migrated by any command that opens it (a new host needs no init), so this is SQLite's alone.
    if (!db.url) expectUserError(cli(dir, ['link', 'list']), /run `nia-link init` first/);
    cli(dir, ['init']);
    expectUserError(cli(dir, ['agency', 'add', '--code', 'N001', '--name', '某公司', '--non-government']), /sponsor/);
    expectUserError(cli(dir, ['link', 'show', '42']), /link 42 does not exist/);
    expectUserError(cli(dir, ['link', 'show', '1; DROP TABLE link']), /not a number/);
    expectUserError(cli(dir, ['link', 'apply', '--agency', 'A001']), /required option/);
    expectUserError(cli(dir, ['no-such-command']), /unknown command/);
    cli(dir, ['agency', 'add', '--code', 'A001', '--name', 'x']);
    expectUserError(cli(dir, applyArgs({ '--pgp-key': '/nonexistent/key.asc' })), /no such file/);
    expectUserError(cli(dir, applyArgs({ '--ssh-key': keys.sshPrivateFile })), /private key/);
    expectUserError(cli(dir, applyArgs({ '--from': '2026-13-01' })), /not a date/);
    expectUserError(cli(dir, applyArgs({ '--method': 'ftp' })), /unknown method 'ftp'/);
    expectUserError(cli(dir, ['link', 'list'], { NIA_LINK_RETENTION_YEARS: '3' }), /usageLog.retentionYears: must be at least 5/);
    expectUserError(cli(dir, ['link', 'list'], { NIA_LINK_HTTP_PORT: 'eighty' }), /http.port/);
  });

  it('agency names with quotes and SQL stay data', () => {
    cli(dir, ['init']);
    const evil = "x'); DROP TABLE agency; --";
    expect(cli(dir, ['agency', 'add', '--code', 'A009', '--name', evil]).code).toBe(0);
    expect(JSON.parse(cli(dir, ['agency', 'list', '--json']).stdout)[0].name).toBe(evil);
  });

  it('log verify exits non-zero and names the seq after a record is edited with SQL', async () => {
    cli(dir, ['init']);
    cli(dir, ['agency', 'add', '--code', 'A001', '--name', 'x']);
    cli(dir, ['agency', 'add', '--code', 'A002', '--name', 'y']);
    cli(dir, ['agency', 'add', '--code', 'A003', '--name', 'z']);
    if (db.url) {
      await withPg(db.url, async (c) => {
        await c.query('DROP TRIGGER usage_log_no_update ON usage_log');
        expect((await c.query("UPDATE usage_log SET agency = 'A00X' WHERE seq = 2")).rowCount).toBe(1);
      });
    } else {
      const Database = require('better-sqlite3');
      const sq = new Database(path.join(dir, 'nia-link.db'));
      sq.exec('DROP TRIGGER usage_log_no_update');
      sq.prepare("UPDATE usage_log SET agency = 'A00X' WHERE seq = 2").run();
      sq.close();
    }
    const r = cli(dir, ['log', 'verify']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/FAILED verification at seq 2/);
  });
});

describe('nia-link dataset (R3.2, R3.4)', () => {
  it('R3.2 dataset list: one line per dataset with its labels, number of fields and lookup key', () => {
    const r = cli(dir, ['dataset', 'list']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^entry_exit\s+入出境資料 \/ Entry and exit records\s+13 fields\s+lookup person_id$/);
    expect(lines[1]).toMatch(/^residence\s+居留資料 \/ Residence records\s+\d+ fields\s+lookup arc_no$/);
  });

  it('R3.4 dataset show lists each field with type, sensitivity and transforms, and the scope domain of nationality incl. VNM 越南', () => {
    const r = cli(dir, ['dataset', 'show', 'entry_exit']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ {2}person_id\s+string\s+identifier\s+mask,hmac\s+身分識別碼 \/ Person identifier$/m);
    expect(r.stdout).toMatch(/^ {2}nationality\s+國籍 \/ Nationality: codes \(\d+\) — in, not-in$/m);
    expect(r.stdout).toMatch(/^ {4}VNM\s+越南 \/ Vietnam$/m);
    expect(r.stdout).toMatch(/^ {4}entry\s+入境 \/ Entry$/m);
    expect(r.stdout).toMatch(/^ {2}crossed_at\s+出入境時間 \/ Time of crossing: date — from YYYY-MM-DD, to YYYY-MM-DD, within-days N/m);
    // A field that cannot select records is not offered for a scope.
    expect(r.stdout).not.toMatch(/^ {2}passport_no\s+護照號碼 \/ Passport number:/m);
    expect(r.stdout).toMatch(/--scope '.+'.*--scope all --scope-justification TEXT/);
    // The example it prints is one an application accepts.
    const example = /--scope '([^']+)'/.exec(r.stdout)![1];
    cli(dir, ['init']);
    cli(dir, ['agency', 'add', '--code', 'A001', '--name', 'x']);
    const args = applyArgs({ '--scope': example });
    args.splice(args.indexOf('--scope-justification'), 2);
    const applied = cli(dir, args);
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    const json = JSON.parse(cli(dir, ['dataset', 'show', 'entry_exit', '--json']).stdout);
    expect(json.name).toBe('entry_exit');
    expect(json.fields.find((f: { name: string }) => f.name === 'nationality').scope.codes).toContainEqual({ code: 'VNM', label: { zh: '越南', en: 'Vietnam' } });
  });

  it('an unknown dataset is one line naming the known ones, with a non-zero exit', () => {
    expectUserError(cli(dir, ['dataset', 'show', 'no_such_set']), /unknown dataset 'no_such_set' \(known: entry_exit, residence\)/);
    expectUserError(cli(dir, ['dataset', 'show']), /missing required argument/);
  });
});

describe('approval needs NIA\'s reply letter and the stamped form (R-F9)', () => {
  const tomorrow = () => new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Taipei' }).format(new Date(Date.now() + 86400000));
  const pending = () => {
    cli(dir, ['init']);
    cli(dir, ['agency', 'add', '--code', 'A001', '--name', '財政部賦稅署']);
    const id = cli(dir, applyArgs()).stdout.trim().split('\n').pop()!;
    expect(cli(dir, REVIEW_ARGS(id)).code).toBe(0);
    return id;
  };
  const state = (id: string) => {
    const l = JSON.parse(cli(dir, ['link', 'show', id, '--json']).stdout);
    const log = JSON.parse(cli(dir, ['log', 'list', '--json']).stdout) as unknown[];
    return { status: l.status, revision: l.revision, letterNo: l.letterNo, stampedForm: l.stampedForm, log: log.length };
  };

  it('R-F9 link approve without the letter, with a letter dated in the future, or without the stamped form is refused in one line and changes nothing', () => {
    const id = pending();
    const stamped = writeTemp(dir, 'stamped.pdf', STAMPED_FORM.content);
    const before = state(id);
    expect(before).toMatchObject({ status: 'pending', letterNo: null, stampedForm: null });
    expectUserError(cli(dir, ['link', 'approve', id, '--stamped-form', stamped]), new RegExp(`link ${id} cannot be approved without NIA's reply letter: give its number and date .*\\(--letter-no\\)`));
    expectUserError(cli(dir, ['link', 'approve', id, '--letter-no', '移署資字第1150001號', '--stamped-form', stamped]), /without NIA's reply letter/);
    expectUserError(cli(dir, ['link', 'approve', id, '--letter-no', '移署資字第1150001號', '--letter-date', tomorrow(), '--stamped-form', stamped]), /the reply letter's date \d{4}-\d{2}-\d{2} is in the future.*\(--letter-date\)/);
    expectUserError(cli(dir, ['link', 'approve', id, '--letter-no', '移署資字第1150001號', '--letter-date', '2026-02-30', '--stamped-form', stamped]), /is not a date/);
    expectUserError(cli(dir, ['link', 'approve', id, '--letter-no', '移署資字第1150001號', '--letter-date', '2026-03-01']), /without the agency's stamped form: give its file .*\(--stamped-form\)/);
    const script = writeTemp(dir, 'stamped.sh', '#!/bin/sh\necho hi\n');
    expectUserError(cli(dir, ['link', 'approve', id, '--letter-no', '移署資字第1150001號', '--letter-date', '2026-03-01', '--stamped-form', script]), /script/);
    expect(state(id)).toEqual(before);
  });

  it('R-F9 link approve with the letter and the stamped form (the printed form itself) approves and stores the form as a document', () => {
    const id = pending();
    const pdf = path.join(dir, 'stamped-form.pdf');
    expect(cli(dir, ['link', 'form', id, '--out', pdf]).code).toBe(0);
    const r = cli(dir, ['link', 'approve', id, '--letter-no', '移署資字第1150001號', '--letter-date', '2026-03-01', '--stamped-form', pdf, '--json']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const l = JSON.parse(r.stdout);
    expect(l).toMatchObject({ status: 'active', letterNo: '移署資字第1150001號', letterDate: '2026-03-01', stampedForm: { filename: 'stamped-form.pdf', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    const approved = (JSON.parse(cli(dir, ['log', 'list', '--type', 'link.approved', '--json']).stdout) as { detail: string | Record<string, unknown> }[]).pop()!;
    const detail = typeof approved.detail === 'string' ? JSON.parse(approved.detail) : approved.detail;
    expect(detail).toMatchObject({ letterNo: '移署資字第1150001號', letterDate: '2026-03-01', stampedForm: { document: l.stampedForm.document, sha256: l.stampedForm.sha256 } });
    expect(cli(dir, ['link', 'show', id]).stdout).toMatch(/stamped form\s+document \d+ stamped-form\.pdf/);
  });

  it('R-F9 a stamped form stored ahead (link stamped-form) lets the approval carry the letter only', () => {
    const id = pending();
    expect(cli(dir, ['link', 'stamped-form', id, writeTemp(dir, 'stamped.pdf', STAMPED_FORM.content)]).stdout).toMatch(new RegExp(`stamped form of link ${id} stored as document \\d+`));
    expect(cli(dir, ['link', 'approve', id, '--letter-no', '移署資字第1150001號', '--letter-date', '2026-03-01']).code).toBe(0);
    expectUserError(cli(dir, ['link', 'stamped-form', id, writeTemp(dir, 'again.pdf', STAMPED_FORM.content)]), /is active: a stamped form is filed with its application/);
  });

  it('R-F9 change approve without the letter or with a future date is refused in one line and changes nothing; with it the letter is kept on the change', () => {
    const id = pending();
    expect(cli(dir, ['link', 'approve', id, ...approveArgs(dir)]).code).toBe(0);
    const cr = cli(dir, ['link', 'change', id, '--kind', 'officer', '--value', '李小華']).stdout.trim().split('\n').pop()!;
    const before = state(id);
    expectUserError(cli(dir, ['change', 'approve', cr]), new RegExp(`change request ${cr} cannot be approved without NIA's reply letter`));
    expectUserError(cli(dir, ['change', 'approve', cr, '--letter-no', '移署資字第1150002號', '--letter-date', tomorrow()]), /is in the future/);
    expect(state(id)).toEqual(before);
    expect(cli(dir, ['change', 'approve', cr, '--letter-no', '移署資字第1150002號', '--letter-date', '2026-03-02']).code).toBe(0);
    const shown = JSON.parse(cli(dir, ['link', 'show', id, '--json', '--history']).stdout);
    expect(shown).toMatchObject({ revision: 2, officer: '李小華' });
    expect(shown.history.changes.find((c: { id: number }) => c.id === Number(cr))).toMatchObject({ status: 'approved', letterNo: '移署資字第1150002號', letterDate: '2026-03-02' });
  });
});

describe('contacts, rules with changes and allow-lists on the command line (R14.2, R5.2, R8.2)', () => {
  it('R14.2 agency add --email (repeatable) and agency set-email store contact addresses that agency list shows; a bad address is one line', () => {
    cli(dir, ['init']);
    expect(cli(dir, ['agency', 'add', '--code', 'A001', '--name', '財政部賦稅署', '--email', 'audit@tax.example.gov.tw', '--email', 'it@tax.example.gov.tw']).code).toBe(0);
    expect(cli(dir, ['agency', 'add', '--code', 'N001', '--name', '某保險公司', '--non-government', '--sponsor', 'A001']).code).toBe(0);
    expectUserError(cli(dir, ['agency', 'add', '--code', 'A002', '--name', 'x', '--email', 'nobody']), /'nobody' is not an e-mail address/);
    expect(cli(dir, ['agency', 'set-email', 'N001', 'compliance@insurer.example.com', 'dpo@insurer.example.com']).stdout).toContain('agency N001: contact addresses compliance@insurer.example.com, dpo@insurer.example.com');
    expectUserError(cli(dir, ['agency', 'set-email', 'N009', 'a@b.example']), /agency N009 is not registered/);
    expect(JSON.parse(cli(dir, ['agency', 'list', '--json']).stdout).map((a: { code: string; emails: string[] }) => [a.code, a.emails])).toEqual([
      ['A001', ['audit@tax.example.gov.tw', 'it@tax.example.gov.tw']],
      ['N001', ['compliance@insurer.example.com', 'dpo@insurer.example.com']],
    ]);
    expect(cli(dir, ['agency', 'list']).stdout).toMatch(/^N001\tnon-government \(sponsor A001\)\t某保險公司\tcompliance@insurer\.example\.com, dpo@insurer\.example\.com$/m);
    expect(cli(dir, ['agency', 'set-email', 'N001']).stdout).toContain('agency N001: no contact address');
  });

  it('R5.2 link change records the rules version by itself, or the one filed with --rules; R8.2 an ips change to 0.0.0.0/0 is one line', () => {
    cli(dir, ['init']);
    cli(dir, ['agency', 'add', '--code', 'A001', '--name', '財政部賦稅署']);
    const id = cli(dir, applyArgs()).stdout.trim().split('\n').pop()!;
    expect(cli(dir, REVIEW_ARGS(id)).code).toBe(0);
    expect(cli(dir, ['link', 'approve', id, ...approveArgs(dir)]).code).toBe(0);
    expectUserError(cli(dir, ['link', 'change', id, '--kind', 'ips', '--value', '0.0.0.0/0']), /'0\.0\.0\.0\/0' is wider than a \/24: an allow-list names dedicated machines/);
    const plain = cli(dir, ['link', 'change', id, '--kind', 'officer', '--value', '李小華', '--json']);
    expect(JSON.parse(plain.stdout)).toMatchObject({ kind: 'officer', rulesDocument: expect.any(Number) });
    const v2 = writeTemp(dir, 'rules-v2.txt', RULES_TEXT + '九、附則\n');
    const filed = JSON.parse(cli(dir, ['link', 'change', id, '--kind', 'supervisor', '--value', '林主任', '--rules', v2, '--json']).stdout);
    const versions = JSON.parse(cli(dir, ['rules', 'list', '--agency', 'A001', '--json']).stdout) as { id: number; version: number }[];
    expect(filed.rulesDocument).toBe(versions.find((v) => v.version === 2)!.id);
    expect(JSON.parse(plain.stdout).rulesDocument).toBe(versions.find((v) => v.version === 1)!.id);
    expect(cli(dir, ['change', 'approve', String(filed.id), ...changeApproveArgs()]).code).toBe(0);
    expect(cli(dir, ['link', 'form', id]).stdout).toContain('隨附本機關應用移民資訊管理規定：<span class="value">第 2 版</span>');
  });
});

describe('nia-link compliance status (R3.4)', () => {
  it('R3.4 compliance status lists a link recorded before scopes existed, saying to file link change --kind scope; the approved scope change clears it', async () => {
    cli(dir, ['init']);
    cli(dir, ['agency', 'add', '--code', 'A001', '--name', 'x']);
    const apply = (over: Record<string, string>) => {
      const r = cli(dir, applyArgs(over));
      expect(r.code).toBe(0);
      const id = r.stdout.trim().split('\n').pop()!;
      expect(cli(dir, REVIEW_ARGS(id)).code).toBe(0);
      expect(cli(dir, ['link', 'approve', id, ...approveArgs(dir)]).code).toBe(0);
      return id;
    };
    const legacy = apply({ '--account': 'a001' });
    await makeLegacyScopeIn({ dataDir: dir, url: db.url }, Number(legacy));
    const scoped = apply({ '--scope-justification': 'a justified whole-dataset scope', '--account': 'a002' });
    const status = cli(dir, ['compliance', 'status']);
    expect(status.code).toBe(0);
    const review = status.stdout.split('\n').filter((l) => /scope review/.test(l));
    expect(review).toEqual([`link ${legacy}: scope review needed: recorded before scopes existed, it receives the whole dataset until its agency files nia-link link change ${legacy} --kind scope`]);
    expect(status.stdout).not.toContain(`link ${scoped}: scope`);
    expect(JSON.parse(cli(dir, ['compliance', 'status', '--json']).stdout)).toContain(review[0]);

    const changed = cli(dir, ['link', 'change', legacy, '--kind', 'scope', '--value', 'nationality in VNM,IDN']);
    expect(changed.code).toBe(0);
    expect(cli(dir, ['change', 'approve', changed.stdout.trim().split('\n').pop()!, ...changeApproveArgs()]).code).toBe(0);
    expect(cli(dir, ['compliance', 'status']).stdout).not.toMatch(/scope review/);
  });
});

describe('nia-link start', () => {
  it('prints one line per role and ready, answers /healthz, and stops on SIGTERM', async () => {
    const env = { ...process.env, ...db.env, REDIS_URL: process.env.NIA_TEST_REDIS_URL!, NIA_LINK_HTTP_PORT: '0', NIA_LINK_SFTP_PORT: '0', NIA_LINK_LOG_LEVEL: 'warn' };
    const child = spawn(process.execPath, [BIN, '--data-dir', dir, 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    for (let i = 0; i < 200 && !/ready/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
    expect(out).toMatch(/ready/);
    expect(out).toMatch(/^redis: /m);
    const port = Number(/http: listening on http:\/\/[^:]+:(\d+)/.exec(out)![1]);
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', db: 'ok', redis: 'ok' });
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toMatch(/stopped/);
  });

  it('a port already in use is one line naming the setting, in one process or several', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = String((taken.address() as AddressInfo).port);
    try {
      for (const processes of ['1', '2']) {
        const r = cli(dir, ['start', '--role', 'query'], { REDIS_URL: process.env.NIA_TEST_REDIS_URL!, NIA_LINK_QUERY_HOST: '127.0.0.1', NIA_LINK_QUERY_PORT: port, NIA_LINK_QUERY_PROCESSES: processes });
        expect(r.code).toBe(1);
        const last = r.stderr.trim().split('\n');
        expect(last).toEqual([`nia-link: query: cannot listen on 127.0.0.1:${port}: the address is already in use (set query.host / query.port)`]);
      }
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});
