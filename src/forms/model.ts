import type { Change, ChangeKind, DatasetCatalog, Method, RevisionContent, Transform } from '../domain';
import { DRILL_MARK, describeScope, rocDateText, taipeiDate } from '../domain';

/**
 * The application/change form 各機關應用移民資訊申請暨異動書 as data: numbered items made of runs
 * (fixed text, filled-in values, tick boxes). The HTML and PDF renderers draw the same model, so the
 * two can never say different things.
 */
export type Run = { t: 'text'; text: string } | { t: 'value'; text: string } | { t: 'box'; checked: boolean; label: string };

export type Block =
  | { kind: 'title'; text: string }
  | { kind: 'meta'; text: string }
  | { kind: 'para'; item?: string; indent: 0 | 1; runs: Run[] }
  | { kind: 'stamp'; agencyLabel: string; reply: { label: string; value: string }[] }
  | { kind: 'date'; text: string }
  | { kind: 'footer'; text: string };

export interface FormDocument {
  title: string;
  linkId: number;
  revision: number;
  blocks: Block[];
}

/** Everything the form shows, gathered by the caller from the registry. */
export interface FormInput {
  linkId: number;
  agencyName: string;
  revision: { number: number; content: RevisionContent; createdAt: string };
  /** The change request that made this revision, or null for the first application. */
  change: {
    id: number;
    kind: ChangeKind;
    change: Change;
    filedAt: string;
    decidedAt: string | null;
    /** R5.2: the management-rules version the change came with. */
    rulesVersion?: number | null;
    /** R-F9: NIA's reply letter approving this change (form item 9 of the change form). */
    letter?: { no: string; date: string } | null;
  } | null;
  /** R14.1: a non-government body's sponsoring authority (目的事業主管機關). */
  sponsor?: { code: string; name: string } | null;
  appliedAt: string;
  /** NIA's formal reply to the application (R3.3, form item 9); a change revision prints its own change's reply instead. */
  letter: { no: string; date: string } | null;
  approvedAt: string | null;
  rulesVersion: number | null;
  catalog: DatasetCatalog | undefined;
  generatedAt: Date;
  /** Made on a drill installation: every copy says so, so it can never be filed as a real one. */
  drill?: boolean;
}

export const FORM_TITLE = '各機關應用移民資訊申請暨異動書';

const TRANSFORM_ZH: Record<Transform, string> = { mask: '遮罩', hmac: '雜湊化', year: '僅年份', 'year-month': '僅年月' };

/** The change kinds in the form's words (a kind added later shows its own name until it gets one). */
export const CHANGE_KIND_ZH: Readonly<Record<string, string>> = {
  officer: '變更承辦人員',
  supervisor: '變更單位主管',
  rules: '變更應用移民資訊管理規定',
  method: '變更資料提供方式',
  fields: '變更申請項目',
  scope: '變更資料範圍',
  'max-ids-per-day': '變更每日查詢上限',
  ips: '變更指定帳號或 IP 位址',
  'pgp-key': '變更加密金鑰',
  'client-cert': '變更線上查詢用戶端憑證',
  extend: '展延資料利用期間',
  stop: '申請停止資料提供',
};

const text = (s: string): Run => ({ t: 'text', text: s });
const value = (s: string): Run => ({ t: 'value', text: s });
const box = (checked: boolean, label: string): Run => ({ t: 'box', checked, label });
/** Changes of item 3 (provision method, designated accounts, IPs or credentials): its 變更 box. */
const PROVISION_CHANGES: ReadonlySet<string> = new Set(['method', 'ips', 'client-cert']);
const has = (methods: readonly Method[], m: Method) => methods.includes(m);

export function buildForm(f: FormInput): FormDocument {
  const c = f.revision.content;
  const kind = f.change?.kind ?? null;
  const first = f.change === null;
  const fieldLabel = (name: string) => f.catalog?.fields.find((x) => x.name === name)?.label.zh ?? name;
  const items = c.fields.map((x) => `${fieldLabel(x.name)}${x.transform ? `（${TRANSFORM_ZH[x.transform]}）` : ''}`).join('、');

  const designated: string[] = [];
  if (c.account && (has(c.methods, 'sftp-pull') || has(c.methods, 'online-query'))) designated.push(`SFTP 帳號 ${c.account}`);
  if (c.push) designated.push(`SFTP 推送 ${c.push.user}@${c.push.host}:${c.push.port} ${c.push.dir}`);
  if (c.email.length) designated.push(`電子郵件 ${c.email.join('、')}`);
  designated.push(`IP 位址 ${c.allowIps.join('、')}`);
  const fileTransfer = has(c.methods, 'sftp-pull') || has(c.methods, 'sftp-push') || has(c.methods, 'email');
  const online = has(c.methods, 'online-query');

  const stop = f.change?.change.kind === 'stop' ? f.change.change.stopOn : null;
  const filed = taipeiDate(new Date(f.change?.filedAt ?? f.appliedAt));

  const mark = f.drill ? `${DRILL_MARK}　` : '';
  // Form item 9 of a change form is NIA's reply to that change, not the application's letter.
  const reply = first ? f.letter : f.change!.letter ?? null;
  const blocks: Block[] = [
    { kind: 'title', text: `${mark}${FORM_TITLE}` },
    {
      kind: 'meta',
      text: `連結案第 ${f.linkId} 號　第 ${f.revision.number} 版　${first ? '首次申請' : `異動申請第 ${f.change!.id} 號：${CHANGE_KIND_ZH[kind!] ?? kind}`}`,
    },
    {
      kind: 'para',
      indent: 0,
      runs: [value(f.agencyName), text('（即資料取得機關）為業務所需，經內政部移民署（下稱移民署）提供'), value(f.catalog?.label.zh ?? c.dataset), text('資料，為確保資料安全，資料取得機關應依下列內容辦理：')],
    },
    // R14.1: a non-government body's application is filed and answered for by its sponsoring authority.
    ...(f.sponsor ? [{ kind: 'para' as const, indent: 0 as const, runs: [text('目的事業主管機關（代為申請並督考）：'), value(`${f.sponsor.name}（${f.sponsor.code}）`)] }] : []),
    { kind: 'para', item: '一', indent: 0, runs: [text('一、取得資料之法令依據：'), value(c.legalBasis)] },
    { kind: 'para', indent: 1, runs: [text('使用目的：'), value(c.purpose)] },
    { kind: 'para', indent: 1, runs: [text('申請項目：'), value(items)] },
    // R3.4: the records are part of what is approved, so the form states them beside the fields.
    { kind: 'para', indent: 1, runs: [text('資料範圍：'), value(describeScope(c.scope, f.catalog, 'zh'))] },
    { kind: 'para', item: '二', indent: 0, runs: [text('二、資料使用部門：'), value(c.department), text('　承辦人員：'), value(c.officer), text('　單位主管：'), value(c.supervisor)] },
    { kind: 'para', item: '三', indent: 0, runs: [text('三、資料提供方式：'), box(first, '首次申請'), box(kind !== null && PROVISION_CHANGES.has(kind), '變更')] },
    {
      kind: 'para',
      indent: 1,
      runs: [text('檔案傳輸：'), box(has(c.methods, 'email'), '電子郵件'), box(has(c.methods, 'sftp-pull') || has(c.methods, 'sftp-push'), 'SFTP'), box(false, '其他'), text('，')],
    },
    { kind: 'para', indent: 1, runs: [text('上述傳輸方式指定之帳號或 IP 位址：'), value(fileTransfer ? designated.join('；') : '（無）')] },
    {
      kind: 'para',
      indent: 1,
      runs: [
        text('線上資料查詢：'),
        box(online, '線上資料查詢'),
        value(online ? `${c.account ? `帳號 ${c.account}；` : ''}IP 位址 ${c.allowIps.join('、')}` : '（無）'),
        // R3.5: the cap is what keeps the query from harvesting the dataset, so the agency signs to it.
        ...(online ? [text('　每日查詢上限'), value(String(c.maxIdsPerDay)), text('筆身分識別碼')] : []),
      ],
    },
    {
      kind: 'para',
      item: '四',
      indent: 0,
      runs: [text('四、資料利用期間：'), value(`${rocDateText(c.period.from)}至 ${rocDateText(c.period.to).replace('中華民國 ', '')}`), text('　'), box(first, '首次申請'), box(kind === 'extend', '展延')],
    },
    { kind: 'para', item: '五', indent: 0, runs: [text('五、資料利用之特定目的消失或期限屆滿時之處理：'), value(c.disposal)] },
    { kind: 'para', item: '六', indent: 0, runs: [text('六、應用移民資訊管理異動：')] },
    {
      kind: 'para',
      indent: 1,
      runs: [box(kind === 'supervisor', '變更單位主管：'), value(kind === 'supervisor' ? c.supervisor : '　'), text('　'), box(kind === 'officer', '變更承辦人員：'), value(kind === 'officer' ? c.officer : '　')],
    },
    {
      kind: 'para',
      indent: 1,
      runs: [
        box(kind === 'rules', '變更本機關應用移民資訊管理規定'),
        ...(kind === 'rules' && f.rulesVersion !== null ? [value(`第 ${f.rulesVersion} 版`)] : []),
        text('　'),
        box(kind === 'stop', '申請停止資料提供'),
        ...(stop ? [value(`自${rocDateText(stop)}起`)] : []),
      ],
    },
    // R5.2: a change form comes with the agency's latest management rules; the form names the version.
    ...(f.change ? [{ kind: 'para' as const, indent: 1 as const, runs: [text('隨附本機關應用移民資訊管理規定：'), value(f.change.rulesVersion ? `第 ${f.change.rulesVersion} 版` : '未檢附')] }] : []),
    {
      kind: 'para',
      item: '七',
      indent: 0,
      runs: [
        text(
          '七、自移民署取得之資料，資料取得機關須負保密責任，未經移民署同意，不得任意移轉，如有不當使用或侵害個人隱私，除應依相關規定追究行政責任外，應依刑法、個人資料保護法等相關規定，移請司法機關偵辦。',
        ),
      ],
    },
    { kind: 'para', item: '八', indent: 0, runs: [text('八、資料取得機關應依移民署之各機關應用移民資訊連結作業及管理要點辦理。')] },
    { kind: 'para', item: '九', indent: 0, runs: [text('九、本申請書經資料取得機關用印並正式函復同意後，即行生效。')] },
    {
      kind: 'stamp',
      agencyLabel: '機關用印：',
      reply: [
        { label: '移民署函復文號', value: reply?.no ?? '　' },
        { label: '函復日期', value: reply ? rocDateText(reply.date) : '　' },
        ...(f.change?.decidedAt ? [{ label: '異動核定日期', value: rocDateText(taipeiDate(new Date(f.change.decidedAt))) }] : []),
      ],
    },
    { kind: 'date', text: rocDateText(filed) },
    { kind: 'footer', text: `${mark}nia-link 連結案 ${f.linkId}／第 ${f.revision.number} 版／產製於 ${f.generatedAt.toISOString()}` },
  ];
  return { title: `${mark}${FORM_TITLE}（連結案第 ${f.linkId} 號第 ${f.revision.number} 版）`, linkId: f.linkId, revision: f.revision.number, blocks };
}
