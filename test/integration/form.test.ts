import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { rocDateText, taipeiDate } from '../../src/domain';
import { FormService, renderHtml } from '../../src/forms';
import { listLog } from '../../src/usagelog';
import { application, approvedLink, cli, REVIEW_ARGS, RULES_TEXT, STAMPED_FORM, tmpDir, writeTemp, type AgencyKeys, type TestWorld, worldEachTest } from '../helpers/world';

let keys: AgencyKeys;
let w: TestWorld;
let forms: FormService;
worldEachTest({ keys: (k) => (keys = k), world: (x) => (w = x) });
beforeEach(() => {
  forms = new FormService(w.cdb, w.registry, w.clock);
});

/** Every tick box of the rendered HTML: label → ticked. */
function boxes(html: string): Record<string, boolean[]> {
  const out: Record<string, boolean[]> = {};
  for (const m of html.matchAll(/<span class="opt" data-checked="(true|false)"><span class="box"[^>]*>[■□]<\/span>([^<]+)<\/span>/g)) {
    (out[m[2]] ??= []).push(m[1] === 'true');
  }
  return out;
}
/** The text of one numbered item of the form, tags stripped. */
const item = (html: string, n: string) => new RegExp(`<p class="item" data-item="${n}">(.*?)</p>`).exec(html)?.[1].replace(/<[^>]+>/g, '') ?? '';
/** The day on the form: the day it was filed, in Taipei, in the ROC calendar. */
const today = (plusDays = 0) => rocDateText(taipeiDate(new Date(w.clock.now().getTime() + plusDays * 86400000)));
const html = async (linkId: number, revision?: number) => renderHtml(await forms.model(linkId, revision));

async function link(over: Parameters<typeof approvedLink>[2] = {}): Promise<number> {
  await w.registry.addAgency({ code: 'A003', name: '內政部警政署' }, 'test');
  const id = await approvedLink(w, keys, {
    agency: 'A003',
    dataset: 'residence',
    fields: [{ name: 'arc_no', transform: 'mask' }, { name: 'nationality' }, { name: 'address' }],
    legalBasis: '警察職權行使法第17條',
    purpose: '治安維護',
    department: '外事科',
    officer: '王小明',
    supervisor: '陳大文',
    from: '2026-01-01',
    to: '2027-12-31',
    disposal: '期滿後三十日內刪除',
    allowIps: ['127.0.0.1/32', '10.1.2.0/24'],
    ...over,
  });
  return id;
}

describe('the form 申請暨異動書 (form items 1–9, R3.1, R3.3)', () => {
  it('R3.1 R3.3 a first application: every item filled, 首次申請 ticked, fields by their Chinese labels, ROC dates', async () => {
    const id = await link();
    const page = await html(id);
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).toContain('<title>各機關應用移民資訊申請暨異動書（連結案第');
    expect(page).toContain('<h1>各機關應用移民資訊申請暨異動書</h1>');
    expect(page).toContain('@page { size: A4;');
    expect(page).toContain('<span class="value">內政部警政署</span>（即資料取得機關）為業務所需，經內政部移民署（下稱移民署）提供<span class="value">居留資料</span>資料');
    expect(item(page, '一')).toBe('一、取得資料之法令依據：警察職權行使法第17條');
    expect(page).toContain('使用目的：<span class="value">治安維護</span>');
    expect(page).toContain('申請項目：<span class="value">居留證統一證號（遮罩）、國籍、居留地址</span>');
    expect(item(page, '二')).toBe('二、資料使用部門：外事科　承辦人員：王小明　單位主管：陳大文');
    expect(page).toContain('上述傳輸方式指定之帳號或 IP 位址：<span class="value">SFTP 帳號 a001；IP 位址 127.0.0.1/32、10.1.2.0/24</span>');
    expect(item(page, '四')).toBe('四、資料利用期間：中華民國 115 年 1 月 1 日至 116 年 12 月 31 日　■首次申請□展延');
    expect(item(page, '五')).toBe('五、資料利用之特定目的消失或期限屆滿時之處理：期滿後三十日內刪除');
    expect(boxes(page)).toEqual({
      首次申請: [true, true], // items 3 and 4
      變更: [false],
      電子郵件: [false],
      SFTP: [true],
      其他: [false],
      線上資料查詢: [false],
      展延: [false],
      '變更單位主管：': [false],
      '變更承辦人員：': [false],
      變更本機關應用移民資訊管理規定: [false],
      申請停止資料提供: [false],
    });
    expect(page).toContain('七、自移民署取得之資料，資料取得機關須負保密責任，未經移民署同意，不得任意移轉');
    expect(item(page, '八')).toBe('八、資料取得機關應依移民署之各機關應用移民資訊連結作業及管理要點辦理。');
    expect(item(page, '九')).toBe('九、本申請書經資料取得機關用印並正式函復同意後，即行生效。');
    expect(page).toContain('機關用印：');
    expect(page).toContain(`<p class="date">${today()}</p>`);
    expect(page).not.toMatch(/<script|\son\w+=/i);
  });

  it("R3.3 NIA's letter number and date appear on the form once the link is approved with them", async () => {
    await w.registry.addAgency({ code: 'A003', name: '內政部警政署' }, 'test');
    const { id } = await w.registry.apply(application(keys, { agency: 'A003' }), 'agency');
    expect(await html(id)).toContain('<tr><th>移民署函復文號</th><td>　</td></tr>');
    await w.rules.review({ linkId: id }, '1-8', undefined, 'reviewer');
    await w.registry.approve(id, { by: 'nia', letterNo: '移署資字第1150001234號', letterDate: '2026-03-05', stampedForm: STAMPED_FORM });
    const page = await html(id);
    expect(page).toContain('<tr><th>移民署函復文號</th><td>移署資字第1150001234號</td></tr>');
    expect(page).toContain('<tr><th>函復日期</th><td>中華民國 115 年 3 月 5 日</td></tr>');
  });

  it('R5.1 a change revision ticks its change: officer, supervisor, rules, stop, extension, provision method', async () => {
    const id = await link();
    const approve = async (kind: Parameters<typeof w.registry.fileChange>[1], input: Parameters<typeof w.registry.fileChange>[2]) => {
      const cr = await w.registry.fileChange(id, kind, input, 'agency');
      if (kind === 'rules') await w.rules.review({ documentId: (cr.change as { rulesDocument: number }).rulesDocument }, '1-8', undefined, 'r');
      w.clock.advanceDays(1);
      return (await w.registry.approveChange(cr.id, 'nia')).link.revision;
    };
    const ticked = (page: string) => Object.entries(boxes(page)).flatMap(([label, v]) => v.map((on, i) => (on ? `${label}${v.length > 1 ? `#${i + 3}` : ''}` : null))).filter(Boolean);

    const r2 = await approve('officer', { value: '李小華' });
    let page = await html(id, r2);
    expect(page).toContain(`第 ${r2} 版　異動申請第 1 號：變更承辦人員`);
    expect(ticked(page)).toEqual(['SFTP', '變更承辦人員：']);
    expect(page).toContain('變更承辦人員：</span><span class="value">李小華</span>');
    expect(page).toContain(`<p class="date">${today(-1)}</p>`); // the day it was filed
    expect(page).toContain(`<tr><th>異動核定日期</th><td>${today()}</td></tr>`);

    const r3 = await approve('supervisor', { value: '林主任' });
    expect(ticked(await html(id, r3))).toEqual(['SFTP', '變更單位主管：']);
    const r4 = await approve('rules', { file: { filename: 'rules-v2.txt', content: Buffer.from(RULES_TEXT + '九、附則\n') } });
    page = await html(id, r4);
    expect(ticked(page)).toEqual(['SFTP', '變更本機關應用移民資訊管理規定']);
    expect(page).toContain('變更本機關應用移民資訊管理規定</span><span class="value">第 2 版</span>');
    const r5 = await approve('extend', { value: '2028-12-31' });
    page = await html(id, r5);
    expect(ticked(page)).toEqual(['SFTP', '展延']);
    expect(item(page, '四')).toContain('中華民國 115 年 1 月 1 日至 117 年 12 月 31 日');
    const r6 = await approve('method', { value: 'sftp-pull,email', email: ['data@agency.example.gov.tw'] });
    page = await html(id, r6);
    expect(ticked(page)).toEqual(['變更', '電子郵件', 'SFTP']);
    expect(page).toContain('電子郵件 data@agency.example.gov.tw');
    // A stop date is never past (R12.1): a month from the test's day.
    const stopOn = taipeiDate(new Date(w.clock.now().getTime() + 30 * 86400000));
    const r7 = await approve('stop', { value: stopOn, letterNo: '府授字第1150000001號' });
    page = await html(id, r7);
    expect(ticked(page)).toEqual(['電子郵件', 'SFTP', '申請停止資料提供']);
    expect(page).toContain(`申請停止資料提供</span><span class="value">自${rocDateText(stopOn)}起</span>`);
    // Earlier revisions still render as they were.
    expect(ticked(await html(id, 1))).toEqual(['首次申請#3', '首次申請#4', 'SFTP']);
    await expect(forms.model(id, 99)).rejects.toThrow(/has no revision 99/);
  });

  it("R5.2 R-F9 a change revision prints the management-rules version that came with the change and NIA's reply letter to that change, not the application's", async () => {
    const id = await link();
    // Filed with its own rules (version 2), approved with its own letter; the next change files none and names the newest on record.
    const cr = await w.registry.fileChange(id, 'officer', { value: '李小華', rules: { filename: 'rules-v2.txt', content: Buffer.from(RULES_TEXT + '九、附則\n') } }, 'agency');
    w.clock.advanceDays(1);
    const replyDate = taipeiDate(w.clock.now());
    const r2 = (await w.registry.approveChange(cr.id, 'nia', { letterNo: '移署資字第1150004321號', letterDate: replyDate })).link.revision;
    const cr3 = await w.registry.fileChange(id, 'supervisor', { value: '林主任' }, 'agency');
    const r3 = (await w.registry.approveChange(cr3.id, 'nia', { letterNo: '移署資字第1150004322號', letterDate: replyDate })).link.revision;
    const reply = (page: string) => [/<tr><th>移民署函復文號<\/th><td>([^<]*)<\/td><\/tr>/.exec(page)?.[1], /<tr><th>函復日期<\/th><td>([^<]*)<\/td><\/tr>/.exec(page)?.[1]];

    let page = await html(id, r2);
    expect(page).toContain('<p class="sub">隨附本機關應用移民資訊管理規定：<span class="value">第 2 版</span></p>');
    expect(reply(page)).toEqual(['移署資字第1150004321號', rocDateText(replyDate)]);
    page = await html(id, r3);
    expect(page).toContain('<p class="sub">隨附本機關應用移民資訊管理規定：<span class="value">第 2 版</span></p>');
    expect(reply(page)).toEqual(['移署資字第1150004322號', rocDateText(replyDate)]);
    // The application's revision keeps the application's letter and names no accompanying rules.
    page = await html(id, 1);
    expect(reply(page)).toEqual(['移署資字第1150000001號', rocDateText(taipeiDate(new Date(Date.now() - 86400000)))]);
    expect(page).not.toContain('隨附本機關應用移民資訊管理規定');

    const { output } = await forms.render(id, { format: 'pdf', revision: r2 }, 'clerk');
    const dir = tmpDir();
    try {
      const text = execFileSync('pdftotext', [writeTemp(dir, 'form.pdf', output), '-']).toString().replace(/\s+/g, '');
      expect(text).toContain('隨附本機關應用移民資訊管理規定：第2版');
      expect(text).toContain('移署資字第1150004321號');
      expect(text).not.toContain('移署資字第1150000001號');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every value is escaped: an agency name or purpose with <script> stays text', async () => {
    await w.registry.addAgency({ code: 'X1', name: '<script>alert("x")</script>機關' }, 'test');
    const id = await approvedLink(w, keys, { agency: 'X1', purpose: `"><img src=x onerror=alert(1)> & 'q'` });
    const page = await html(id);
    expect(page).not.toContain('<script>');
    expect(page).not.toContain('<img');
    expect(page).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;機關');
    expect(page).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt; &amp; &#39;q&#39;');
    expect(page).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`);
  });

  it('the PDF is one A4 page that opens, and pdftotext gives back the Chinese text, ticks and ROC date', async () => {
    const id = await link();
    const { output, form } = await forms.render(id, { format: 'pdf' }, 'clerk');
    expect(output.subarray(0, 5).toString()).toBe('%PDF-');
    const dir = tmpDir();
    try {
      const file = writeTemp(dir, 'form.pdf', output);
      const info = execFileSync('pdfinfo', [file]).toString();
      expect(info).toMatch(/^Pages:\s+1$/m);
      expect(info).toMatch(/^Page size:\s+595\.28 x 841\.89 pts \(A4\)$/m);
      const text = execFileSync('pdftotext', ['-layout', file, '-']).toString();
      for (const s of ['各機關應用移民資訊申請暨異動書', '內政部警政署', '警察職權行使法第17條', '居留證統一證號（遮罩）、國籍、居留地址', '■首次申請', '□變更', '■SFTP', '期滿後三十日內刪除', '未經移民署同意，不得任意移轉', '機關用印', today()]) {
        expect(text).toContain(s);
      }
      expect(form.revision).toBe(1);
      const logged = await listLog(w.cdb.db, { linkId: id, type: 'form.rendered' });
      expect(JSON.parse(logged[0].detail)).toMatchObject({ format: 'pdf', bytes: output.length });
      expect(logged[0].actor).toBe('clerk');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('nia-link link form writes HTML and PDF by the --out name, and refuses other names', () => {
    const dir = tmpDir();
    try {
      const pub = writeTemp(dir, 'pub.asc', keys.publicArmored);
      const rules = writeTemp(dir, 'rules.txt', RULES_TEXT);
      cli(dir, ['init']);
      cli(dir, ['agency', 'add', '--code', 'A003', '--name', '內政部警政署']);
      const applied = cli(dir, [
        'link', 'apply', '--agency', 'A003', '--dataset', 'residence', '--fields', 'arc_no,nationality,address', '--legal-basis', '警察職權行使法',
        '--purpose', '治安維護', '--department', '外事科', '--officer', 'o', '--supervisor', 's', '--from', '2026-01-01', '--to', '2027-12-31',
        '--disposal', '刪除', '--method', 'sftp-pull', '--allow-ip', '127.0.0.1/32', '--account', 'a003', '--ssh-key', `${keys.sshPrivateFile}.pub`,
        '--pgp-key', pub, '--rules', rules, '--scope', 'all', '--scope-justification', '治安維護需全部居留資料',
      ]);
      const id = applied.stdout.trim().split('\n').pop()!;
      expect(cli(dir, REVIEW_ARGS(id)).code).toBe(0);
      expect(cli(dir, ['link', 'approve', id, '--letter-no', '移署資字第1150001號', '--letter-date', '2026-03-01', '--stamped-form', writeTemp(dir, 'stamped.pdf', STAMPED_FORM.content)]).code).toBe(0);
      const out = path.join(dir, 'form.html');
      expect(cli(dir, ['link', 'form', id, '--out', out]).stdout).toMatch(/revision 1 written to/);
      const page = readFileSync(out, 'utf8');
      expect(page).toContain('移署資字第1150001號');
      expect(page).toContain(rocDateText(taipeiDate(new Date())));
      const stamp = (s: string) => s.replace(/產製於 [^<]+/, '產製於 …');
      expect(stamp(cli(dir, ['link', 'form', id]).stdout)).toBe(stamp(page)); // the same document on standard output
      const pdf = path.join(dir, 'form.pdf');
      expect(cli(dir, ['link', 'form', id, '--out', pdf]).code).toBe(0);
      expect(execFileSync('pdftotext', [pdf, '-']).toString()).toContain('移署資字第1150001號');
      const bad = cli(dir, ['link', 'form', id, '--out', path.join(dir, 'form.docx')]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/name it \.html or \.pdf/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the records a link may receive and its daily cap on the form (R3.4, R3.5)', () => {
  /** The PDF's text with every space and line break removed: pdftotext wraps long values anywhere. */
  async function pdfText(id: number, revision?: number): Promise<string> {
    const { output } = await forms.render(id, { format: 'pdf', revision }, 'clerk');
    const dir = tmpDir();
    try {
      return execFileSync('pdftotext', [writeTemp(dir, 'form.pdf', output), '-']).toString().replace(/\s+/g, '');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('R3.4 the form prints the scope in words (資料範圍) in HTML and PDF', async () => {
    const id = await link({ scope: { text: 'nationality in VNM,IDN; permit_type in migrant-work; issued_on within-days 400' } });
    const words = '國籍：越南、印尼；居留許可類別：移工；核發日期：製檔或查詢日前400日內';
    const page = await html(id);
    expect(page).toContain(`申請項目：<span class="value">居留證統一證號（遮罩）、國籍、居留地址</span></p>\n<p class="sub">資料範圍：<span class="value">${words}</span></p>`);
    expect(page).not.toContain('全部資料');
    const text = await pdfText(id);
    expect(text).toContain(`資料範圍：${words}`);
    expect(text).not.toContain('VNM');
  });

  it('R3.4 a whole-dataset scope is printed as 全部資料 with its justification, in HTML and PDF', async () => {
    const id = await link({ scope: { text: 'all', justification: '治安維護需全部居留資料' } });
    expect(await html(id)).toContain('資料範圍：<span class="value">全部資料（理由：治安維護需全部居留資料）</span>');
    expect(await pdfText(id)).toContain('資料範圍：全部資料（理由：治安維護需全部居留資料）');
  });

  it('R3.4 R5.1 a scope change is named 變更資料範圍 and its revision prints the new scope, the earlier one the old', async () => {
    const id = await link({ scope: { text: 'nationality in VNM,IDN' } });
    const cr = await w.registry.fileChange(id, 'scope', { value: 'nationality in VNM' }, 'agency');
    w.clock.advanceDays(1);
    const r2 = (await w.registry.approveChange(cr.id, 'nia')).link.revision;
    const page = await html(id, r2);
    expect(page).toContain(`第 ${r2} 版　異動申請第 ${cr.id} 號：變更資料範圍`);
    expect(page).toContain('資料範圍：<span class="value">國籍：越南</span>');
    expect(await html(id, 1)).toContain('資料範圍：<span class="value">國籍：越南、印尼</span>');
  });

  it('R3.5 a link with online query prints its daily cap on the 線上資料查詢 line (HTML and PDF); a file-only link prints none', async () => {
    const dir = tmpDir();
    try {
      const key = path.join(dir, 'client.key');
      const crt = path.join(dir, 'client.crt');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj', '/CN=agency', '-keyout', key, '-out', crt], { stdio: 'ignore' });
      const id = await link({ account: undefined, sshKeys: [], methods: ['online-query'], clientCerts: [readFileSync(crt, 'utf8')], maxIdsPerDay: 250 });
      const page = await html(id);
      expect(page).toMatch(/<p class="sub">線上資料查詢：<span class="opt" data-checked="true">.*<\/span>　每日查詢上限<span class="value">250<\/span>筆身分識別碼<\/p>/);
      expect(await pdfText(id)).toContain('每日查詢上限250筆身分識別碼');
      const cr = await w.registry.fileChange(id, 'max-ids-per-day', { value: '500' }, 'agency');
      const r2 = (await w.registry.approveChange(cr.id, 'nia')).link.revision;
      expect(await html(id, r2)).toContain('：變更每日查詢上限');
      expect(await html(id, r2)).toContain('每日查詢上限<span class="value">500</span>筆身分識別碼');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const fileOnly = await approvedLink(w, keys);
    expect(await html(fileOnly)).not.toContain('每日查詢上限');
  });
});
