import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { ComplianceService } from '../../src/compliance';
import { loadConfig, type Config } from '../../src/config';
import { compliance as repo, documents } from '../../src/db/repositories';
import { addDays, addMonths, taipeiDate } from '../../src/domain';
import { connectionOf } from '../../src/db';
import { listLog, verifyLog } from '../../src/usagelog';
import { approvedLink, cli, REVIEW_ARGS, RULES_TEXT, STAMPED_FORM, tmpDir, writeTemp, type AgencyKeys, type TestWorld, worldEachTest } from '../helpers/world';

/**
 * The agency's own duties and those of its sponsor and vendors (R6.4, R7.2, R9.2, R14.2): what the
 * agency sends is kept as a checked document beside the record it answers, and what is missing or
 * overdue is listed by compliance status. Time moves through the injected clock of the service.
 */
let keys: AgencyKeys;
let w: TestWorld;
let config: Config;
let svc: ComplianceService;
let smtp: SMTPServer;
let smtpPort: number;
const mails: { rcpt: string[]; subject: string }[] = [];

worldEachTest({ keys: (k) => (keys = k), world: (x) => (w = x) });

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });

beforeAll(async () => {
  smtpPort = await freePort();
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, session, cb) {
      simpleParser(stream).then((m) => {
        mails.push({ rcpt: session.envelope.rcptTo.map((r) => r.address), subject: m.subject ?? '' });
        cb();
      }, cb);
    },
  });
  await new Promise<void>((r) => smtp.listen(smtpPort, '127.0.0.1', r));
});
afterAll(async () => {
  await new Promise<void>((r) => smtp?.close(() => r()));
});
beforeEach(() => {
  mails.length = 0;
  config = loadConfig(
    { dataDir: w.dataDir },
    { NIA_LINK_LOG_LEVEL: 'silent', NIA_LINK_SMTP_HOST: '127.0.0.1', NIA_LINK_SMTP_PORT: String(smtpPort), NIA_LINK_SMTP_REQUIRE_TLS: 'false' },
  );
  svc = new ComplianceService({ cdb: w.cdb, registry: w.registry, clock: w.clock, config });
});

const today = () => taipeiDate(w.clock.now());
/** Every action happens at the clock's time: move it to noon of a Taipei day (only ever forward). */
const dayIs = (day: string) => w.clock.set(new Date(Date.parse(`${day}T12:00:00+08:00`)).toISOString());
const REPORT = { filename: 'report.txt', content: Buffer.from('自行稽核報告\n一、日誌保存：符合\n二、帳號管理：符合\n') };
const RESPONSE = { filename: 'explanation.txt', content: Buffer.from('說明及改善措施\n一、原因：排程設定錯誤\n二、改善：已修正並加強檢核\n') };
/** An executable named as a PDF: refused by content whatever its name. */
const DISGUISED = { filename: 'report.pdf', content: Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(120)]) };
const logCount = async () => (await listLog(w.cdb.db, {})).length;

describe('self-audits and audits (R6.4, R9.1)', () => {
  it("R6.4 a self-audit is recorded with the agency's report, stored and checked like management rules; without one, or with an executable, nothing is written", async () => {
    await w.registry.addAgency({ code: 'A001', name: '財政部賦稅署' }, 'test');
    const before = await logCount();
    await expect(svc.addAudit({ agency: 'A001', kind: 'self', summary: '上半年自行稽核' }, 'clerk')).rejects.toThrow(/a self-audit is recorded with the agency's report: give the report's file/);
    await expect(svc.addAudit({ agency: 'A001', kind: 'self', summary: '上半年自行稽核', file: DISGUISED }, 'clerk')).rejects.toThrow(/report\.pdf: the content is .*not a document/);
    expect(await svc.listAudits('A001')).toEqual([]);
    expect(await logCount()).toBe(before);

    const a = await svc.addAudit({ agency: 'A001', kind: 'self', summary: '上半年自行稽核', file: REPORT }, 'clerk');
    expect(a).toMatchObject({ kind: 'self', auditor: 'A001', date: today(), document: { filename: 'report.txt' } });
    const doc = (await documents.byId(w.cdb.db, a.documentId!))!;
    expect(doc).toMatchObject({ kind: 'self-audit-report', mediaType: expect.stringMatching(/^text\/plain/), size: REPORT.content.length });
    expect(doc.content.equals(REPORT.content)).toBe(true);
    const rec = await listLog(w.cdb.db, { type: 'selfaudit.recorded' });
    expect(rec).toHaveLength(1);
    expect(rec[0].object).toBe(`audit:${a.id}`);
    expect(JSON.parse(rec[0].detail)).toMatchObject({ date: today(), document: { id: doc.id, sha256: doc.sha256 } });
  });

  it("R6.4 an audit's date is its report's: not in the future, at most 30 days back", async () => {
    await w.registry.addAgency({ code: 'A001', name: '財政部賦稅署' }, 'test');
    await expect(svc.addAudit({ agency: 'A001', kind: 'self', date: addDays(today(), 1), summary: 's', file: REPORT }, 'clerk')).rejects.toThrow(/the audit's date .* is in the future/);
    await expect(svc.addAudit({ agency: 'A001', kind: 'self', date: addDays(today(), -31), summary: 's', file: REPORT }, 'clerk')).rejects.toThrow(/more than 30 days back/);
    await expect(svc.addAudit({ agency: 'A001', kind: 'periodic', date: addDays(today(), 1), summary: 's' }, 'nia')).rejects.toThrow(/is in the future/);
    expect((await svc.addAudit({ agency: 'A001', kind: 'self', date: addDays(today(), -30), summary: 's', file: REPORT }, 'clerk')).date).toBe(addDays(today(), -30));
  });

  it('R6.4 an agency with fewer than two self-audits in a whole calendar year, or none in six months, is flagged; two a year are not', async () => {
    await w.registry.addAgency({ code: 'A001', name: '財政部賦稅署' }, 'test');
    await w.registry.addAgency({ code: 'A002', name: '勞動部' }, 'test');
    await approvedLink(w, keys, { agency: 'A001', account: 'a001' });
    await approvedLink(w, keys, { agency: 'A002', account: 'a002' });
    const year = Number(today().slice(0, 4)) + 1; // the first whole calendar year both are linked for
    dayIs(`${year}-03-02`);
    await svc.addAudit({ agency: 'A001', kind: 'self', summary: '上半年', file: REPORT }, 'clerk');
    await svc.addAudit({ agency: 'A002', kind: 'self', summary: '上半年', file: REPORT }, 'clerk');
    dayIs(`${year}-09-01`);
    await svc.addAudit({ agency: 'A002', kind: 'self', summary: '下半年', file: REPORT }, 'clerk');
    dayIs(`${year + 1}-01-10`);
    const status = await svc.status();
    expect(status).toContain(`agency A001: ${year}: 1 self-audit, at least two are required (R6.4)`);
    expect(status).toContain(`agency A001: no self-audit since ${year}-07-10 (R6.4)`);
    expect(status.filter((l) => l.startsWith('agency A002:'))).toEqual([]);
  });

  it('R12.1 the necessity review is overdue a year after approval (or the last review) and listed until one is recorded', async () => {
    await w.registry.addAgency({ code: 'A001', name: '財政部賦稅署' }, 'test');
    const id = await approvedLink(w, keys, { agency: 'A001', to: addMonths(today(), 36) });
    const approved = today();
    dayIs(addMonths(approved, 12));
    expect((await svc.status()).filter((l) => l.includes('necessity review'))).toEqual([]);
    dayIs(addDays(addMonths(approved, 12), 1));
    expect(await svc.status()).toContain(`link ${id}: necessity review overdue since ${addMonths(approved, 12)}`);
    // A review's date is a past event's: a date ahead would put the next one off.
    await expect(svc.addReview(id, addMonths(today(), 12), 'keep', undefined, 'nia')).rejects.toThrow(/the review's date .* is in the future/);
    await expect(svc.addReview(id, addDays(today(), -31), 'keep', undefined, 'nia')).rejects.toThrow(/more than 30 days back/);
    await svc.addReview(id, today(), 'keep', '仍有業務需要', 'nia');
    expect((await svc.status()).filter((l) => l.includes('necessity review'))).toEqual([]);
  });
});

describe("the agency's explanation and improvement measures (R7.2)", () => {
  it('R7.2 finding respond keeps the document and its usage-log record together; a refused document writes neither', async () => {
    const id = await approvedLink(w, keys);
    const f = await svc.addFinding({ linkId: id, deadline: addDays(today(), 10), text: '日誌未依規定保存' }, 'nia');
    const before = await logCount();
    await expect(svc.respond(f.id, { file: DISGUISED }, 'clerk')).rejects.toThrow(/not a document/);
    await expect(svc.respond(f.id, { file: { filename: 'empty.txt', content: Buffer.alloc(0) } }, 'clerk')).rejects.toThrow(/the document is empty/);
    await expect(svc.respond(999, { file: RESPONSE }, 'clerk')).rejects.toThrow(/finding 999 does not exist/);
    expect(await logCount()).toBe(before);
    expect(await repo.findingResponses(w.cdb.db, f.id)).toEqual([]);

    const r = await svc.respond(f.id, { file: RESPONSE, note: '已修正排程' }, 'clerk');
    expect(r).toMatchObject({ findingId: f.id, receivedOn: today(), late: false, filename: 'explanation.txt', note: '已修正排程', recordedBy: 'clerk' });
    const doc = (await documents.byId(w.cdb.db, r.documentId))!;
    expect(doc).toMatchObject({ kind: 'finding-response', linkId: id });
    expect(doc.content.equals(RESPONSE.content)).toBe(true);
    const rec = await listLog(w.cdb.db, { type: 'finding.responded' });
    expect(rec).toHaveLength(1);
    expect(rec[0]).toMatchObject({ linkId: id, object: `finding:${f.id}`, actor: 'clerk' });
    expect(JSON.parse(rec[0].detail)).toMatchObject({ response: r.id, deadline: f.deadline, late: false, document: { id: doc.id, sha256: doc.sha256 } });
    expect((await svc.listFindings(id))[0].respondedOn).toBe(today());
    // On the write connection (`w.cdb.sqlite` only reads).
    await expect(w.cdb.write((tx) => connectionOf(tx).prepare('UPDATE finding_response SET received_on = ?').run(addDays(today(), -5)))).rejects.toMatchObject({ message: expect.stringMatching(/records/) });
    expect((await verifyLog(w.cdb)).ok).toBe(true);
  });

  it('R7.2 compliance status lists a finding whose deadline passed without a response; a late one is kept and marked late', async () => {
    const id = await approvedLink(w, keys);
    const deadline = addDays(today(), 5);
    const answered = await svc.addFinding({ linkId: id, deadline, text: '夜間大量下載' }, 'nia');
    const silent = await svc.addFinding({ linkId: id, deadline, text: '日誌未依規定保存' }, 'nia');
    await svc.respond(answered.id, { file: RESPONSE }, 'clerk');
    const missing = async (f: number) => (await svc.status()).filter((l) => l.startsWith(`finding ${f} `) && l.includes('(R7.2)'));
    dayIs(deadline);
    expect(await missing(silent.id)).toEqual([]); // the deadline day is still in time
    dayIs(addDays(deadline, 1));
    expect(await missing(answered.id)).toEqual([]);
    expect(await missing(silent.id)).toEqual([`finding ${silent.id} (link ${id}): no written explanation and improvement measures by its deadline ${deadline} (R7.2)`]);
    // A preview of an earlier day does not count it yet.
    expect((await svc.status(deadline)).filter((l) => l.includes('(R7.2)'))).toEqual([]);
    const late = await svc.respond(silent.id, { file: RESPONSE }, 'clerk');
    expect(late.late).toBe(true);
    expect(JSON.parse((await listLog(w.cdb.db, { type: 'finding.responded' })).pop()!.detail)).toMatchObject({ late: true, receivedOn: today() });
    expect(await missing(silent.id)).toEqual([`finding ${silent.id} (link ${id}): no written explanation and improvement measures by its deadline ${deadline} (received late, ${today()}) (R7.2)`]);
  });

  it("R7.2 R10.1 a finding's deadline cannot lie in the past", async () => {
    const id = await approvedLink(w, keys);
    await expect(svc.addFinding({ linkId: id, deadline: addDays(today(), -1), text: 't' }, 'nia')).rejects.toThrow(/the deadline .* is in the past/);
    expect(await repo.findings(w.cdb.db, id)).toEqual([]);
    expect((await svc.addFinding({ linkId: id, deadline: today(), text: 't' }, 'nia')).deadline).toBe(today());
  });
});

describe('vendors audited (R9.2)', () => {
  it("R9.2 an audit names the vendors audited with the evidence each gave; vendor show lists the audits; another agency's vendor is refused", async () => {
    await w.registry.addAgency({ code: 'A001', name: '財政部賦稅署' }, 'test');
    await w.registry.addAgency({ code: 'A002', name: '勞動部' }, 'test');
    const id = await approvedLink(w, keys, { agency: 'A001', account: 'a001', allowIps: ['10.1.2.0/24', '127.0.0.1/32'] });
    const other = await approvedLink(w, keys, { agency: 'A002', account: 'a002', allowIps: ['10.1.3.0/24'] });
    const main = await w.vendors.add({ linkId: id, name: '某資訊公司', contact: '02-1234', machines: ['10.1.2.7/32'] }, 'agency');
    const sub = await w.vendors.add({ linkId: id, name: '某外包工作室', contact: '02-5678', machines: ['10.1.2.8/32'], parentId: main.id }, 'agency');
    const foreign = await w.vendors.add({ linkId: other, name: '他機關廠商', contact: '02', machines: ['10.1.3.4/32'] }, 'agency');

    const before = await logCount();
    await expect(svc.addAudit({ agency: 'A001', kind: 'periodic', summary: '年度稽核', vendors: [{ id: foreign.id }] }, 'nia')).rejects.toThrow(new RegExp(`vendor ${foreign.id} is not a vendor of A001's links`));
    await expect(svc.addAudit({ agency: 'A001', kind: 'periodic', summary: '年度稽核', vendors: [{ id: 999 }] }, 'nia')).rejects.toThrow(/vendor 999 is not a vendor/);
    await expect(svc.addAudit({ agency: 'A001', kind: 'periodic', summary: '年度稽核', vendors: [{ id: main.id }, { id: main.id }] }, 'nia')).rejects.toThrow(/named twice/);
    await expect(svc.addAudit({ agency: 'A002', linkId: other, kind: 'periodic', summary: '年度稽核', vendors: [{ id: main.id }] }, 'nia')).rejects.toThrow(/is not a vendor of A002's links/);
    expect(await svc.listAudits()).toEqual([]);
    expect(await logCount()).toBe(before);

    const a = await svc.addAudit({ agency: 'A001', linkId: id, kind: 'periodic', summary: '年度稽核', file: REPORT, vendors: [{ id: main.id, evidence: '機房進出紀錄' }, { id: sub.id }] }, 'nia');
    expect(a.vendors).toEqual([
      { id: main.id, name: '某資訊公司', linkId: id, evidence: '機房進出紀錄' },
      { id: sub.id, name: '某外包工作室', linkId: id, evidence: null },
    ]);
    expect(a.document).toMatchObject({ filename: 'report.txt' });
    expect(JSON.parse((await listLog(w.cdb.db, { type: 'audit.recorded' }))[0].detail).vendors).toEqual([
      { id: main.id, name: '某資訊公司', evidence: '機房進出紀錄' },
      { id: sub.id, name: '某外包工作室', evidence: null },
    ]);
    const shown = await w.vendors.show(main.id);
    expect(shown).toMatchObject({ id: main.id, agency: 'A001', subcontractors: [{ id: sub.id, name: '某外包工作室', removedAt: null }] });
    expect(shown.audits).toEqual([{ id: a.id, date: today(), kind: 'periodic', auditor: 'NIA', summary: '年度稽核', agency: 'A001', linkId: id, evidence: '機房進出紀錄' }]);
    expect((await w.vendors.show(foreign.id)).audits).toEqual([]);
  });
});

describe('the sponsoring authority of a non-government body (R14.2)', () => {
  async function sponsoredBody(): Promise<number> {
    await w.registry.addAgency({ code: 'MOL', name: '勞動部', emails: ['audit@mol.example.gov.tw'] }, 'test');
    await w.registry.addAgency({ code: 'NGO1', name: '某人力仲介公會', nonGovernment: true, sponsor: 'MOL', emails: ['office@ngo1.example.org'] }, 'test');
    return approvedLink(w, keys, { agency: 'NGO1', account: 'ngo1' });
  }

  it("R14.2 every notice about a non-government body's links goes to its sponsoring authority's contact addresses too, stored and e-mailed", async () => {
    const id = await sponsoredBody();
    await w.registry.addAgency({ code: 'A001', name: '財政部賦稅署', emails: ['it@a001.example.gov.tw'] }, 'test');
    const gov = await approvedLink(w, keys, { agency: 'A001', account: 'a001' });
    const f = await svc.addFinding({ linkId: id, deadline: addDays(today(), 10), text: '日誌未依規定保存' }, 'nia');
    await svc.suspend(id, '違反第八點', 'nia');
    await svc.addFinding({ linkId: gov, deadline: addDays(today(), 10), text: '夜間大量下載' }, 'nia');

    const notices = await svc.listNotices(id);
    expect(notices.map((n) => n.kind)).toEqual(['finding', 'suspended']);
    for (const n of notices) expect(n.recipients).toEqual(expect.arrayContaining(['office@ngo1.example.org', 'audit@mol.example.gov.tw']));
    expect((await svc.listNotices(gov))[0].recipients).not.toContain('audit@mol.example.gov.tw');
    const issued = (await listLog(w.cdb.db, { linkId: id, type: 'notice.issued' })).map((r) => JSON.parse(r.detail));
    expect(issued[0]).toMatchObject({ kind: 'finding', sponsor: { code: 'MOL', recipients: ['audit@mol.example.gov.tw'] } });

    const sent = mails.filter((m) => m.subject.includes(`L${id} `));
    expect(sent.map((m) => m.subject)).toEqual([`[nia-link] L${id} finding`, `[nia-link] L${id} suspended`]);
    for (const m of sent) expect(m.rcpt).toEqual(expect.arrayContaining(['office@ngo1.example.org', 'audit@mol.example.gov.tw']));
    expect(mails.find((m) => m.subject.includes(`L${gov} `))!.rcpt).toEqual(['it@a001.example.gov.tw']);
    expect(f.deadline).toBe(addDays(today(), 10));
  });

  it("R14.2 the sponsor's periodic audits of the body are recorded and flagged a year overdue; a government agency has no sponsor audit", async () => {
    await sponsoredBody();
    await w.registry.addAgency({ code: 'A001', name: '財政部賦稅署' }, 'test');
    await expect(svc.addAudit({ agency: 'A001', kind: 'sponsor', summary: '督考' }, 'nia')).rejects.toThrow(/agency A001 has no sponsoring authority/);
    const approved = today();
    const overdue = async () => (await svc.status()).filter((l) => l.includes('(R14.2') || l.includes('R14.2)'));
    dayIs(addMonths(approved, 12));
    expect(await overdue()).toEqual([]);
    dayIs(addDays(addMonths(approved, 12), 1));
    expect(await overdue()).toEqual([`agency NGO1: audit by its sponsoring authority MOL overdue since ${addDays(addMonths(approved, 12), 1)} (never audited; every 12 months, R14.2)`]);
    const a = await svc.addAudit({ agency: 'NGO1', kind: 'sponsor', summary: '年度督考稽核', file: REPORT }, 'mol-clerk');
    expect(a).toMatchObject({ kind: 'sponsor', auditor: 'MOL', date: today() });
    expect(await overdue()).toEqual([]);
    const last = today();
    dayIs(addDays(addMonths(last, 12), 1));
    expect(await overdue()).toEqual([`agency NGO1: audit by its sponsoring authority MOL overdue since ${addDays(addMonths(last, 12), 1)} (last ${last}; every 12 months, R14.2)`]);
  });
});

describe('the commands (one line, non-zero exit on every refusal)', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const run = (args: string[]) => cli(dir, args);
  const ok = (r: { code: number; stdout: string; stderr: string }) => {
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const refused = (r: { code: number; stderr: string }, pattern: RegExp) => {
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(pattern);
  };
  const last = (out: string) => out.trim().split('\n').pop()!;

  it('R6.4 R7.2 R9.2 selfaudit add --file, audit add --vendor, finding respond --file and vendor show through the CLI', () => {
    const file = (name: string, content: Buffer | string) => writeTemp(dir, name, content);
    ok(run(['init']));
    ok(run(['agency', 'add', '--code', 'A001', '--name', '財政部賦稅署']));
    const id = last(
      ok(
        run([
          'link', 'apply', '--agency', 'A001', '--dataset', 'entry_exit', '--fields', 'person_id,port', '--legal-basis', '所得稅法第7條', '--purpose', '居住者身分認定',
          '--department', '稽核科', '--officer', '王小明', '--supervisor', '陳大文', '--from', addDays(taipeiDate(new Date()), -10), '--to', addMonths(taipeiDate(new Date()), 24),
          '--disposal', '刪除', '--method', 'sftp-pull', '--allow-ip', '127.0.0.1/32', '--account', 'a001', '--ssh-key', `${keys.sshPrivateFile}.pub`,
          '--pgp-key', file('pub.asc', keys.publicArmored), '--rules', file('rules.txt', RULES_TEXT), '--scope', 'all', '--scope-justification', 'test: the whole dataset',
        ]),
      ),
    );
    ok(run(REVIEW_ARGS(id)));
    ok(run(['link', 'approve', id, '--letter-no', '移署資字第1150000001號', '--letter-date', taipeiDate(new Date()), '--stamped-form', file('stamped.pdf', STAMPED_FORM.content)]));

    refused(run(['selfaudit', 'add', '--agency', 'A001']), /required option '--file <file>' not specified/);
    refused(run(['selfaudit', 'add', '--agency', 'A001', '--file', file('report.pdf', DISGUISED.content)]), /report\.pdf: the content is .*not a document/);
    refused(run(['selfaudit', 'add', '--agency', 'A001', '--file', file('report.txt', REPORT.content), '--date', addDays(taipeiDate(new Date()), 1)]), /is in the future/);
    const sa = last(ok(run(['selfaudit', 'add', '--agency', 'A001', '--file', file('report.txt', REPORT.content)])));
    expect(JSON.parse(ok(run(['selfaudit', 'list', '--agency', 'A001', '--json'])))).toEqual([expect.objectContaining({ id: Number(sa), kind: 'self', document: expect.objectContaining({ filename: 'report.txt' }) })]);

    const vendor = last(ok(run(['vendor', 'add', '--link', id, '--name', '某資訊公司', '--contact', '02-1234', '--machines', '127.0.0.1/32'])));
    refused(run(['audit', 'add', '--agency', 'A001', '--kind', 'periodic', '--summary', '年度稽核', '--vendor', '999']), /: vendor 999 is not a vendor of A001's links \(--vendor\)/);
    refused(run(['audit', 'add', '--agency', 'A001', '--kind', 'sponsor', '--summary', '督考']), /agency A001 has no sponsoring authority/);
    const audit = last(ok(run(['audit', 'add', '--agency', 'A001', '--kind', 'periodic', '--summary', '年度稽核', '--vendor', `${vendor}:機房進出紀錄`])));
    const shown = ok(run(['vendor', 'show', vendor]));
    expect(shown).toContain(`vendor ${vendor} "某資訊公司" (contractor) of link ${id}, agency A001: current`);
    expect(shown).toMatch(new RegExp(`audit ${audit}\\t${taipeiDate(new Date())}\\tperiodic\\tNIA\\t年度稽核\\tevidence: 機房進出紀錄`));
    refused(run(['vendor', 'show', '999']), /vendor 999 does not exist/);

    refused(run(['finding', 'add', '--link', id, '--deadline', addDays(taipeiDate(new Date()), -1), '--text', '日誌未依規定保存']), /: the deadline .* is in the past .*\(--deadline\)/);
    const f = last(ok(run(['finding', 'add', '--link', id, '--deadline', addDays(taipeiDate(new Date()), 10), '--text', '日誌未依規定保存'])));
    refused(run(['finding', 'respond', f]), /required option '--file <file>' not specified/);
    refused(run(['finding', 'respond', f, '--file', file('explanation.pdf', DISGUISED.content)]), /not a document/);
    expect(ok(run(['finding', 'respond', f, '--file', file('explanation.txt', RESPONSE.content), '--note', '已修正排程']))).toMatch(
      new RegExp(`finding ${f}: response 1 recorded on ${taipeiDate(new Date())}: explanation\\.txt \\(sha256 [0-9a-f]{64}\\)`),
    );
    expect(ok(run(['finding', 'responses', f]))).toContain('explanation.txt');
    expect(JSON.parse(ok(run(['log', 'list', '--json']))).filter((r: { type: string }) => r.type === 'finding.responded')).toHaveLength(1);
  });
});
