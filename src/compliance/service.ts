import type { Config } from '../config';
import type { ControlDb, Db } from '../db';
import { agencies, compliance as repo, documents, vendors } from '../db/repositories';
import { modeOf } from '../db/repositories/installation';
import {
  addDays,
  addMonths,
  checkClaimedDate,
  checkDeadlineExtension,
  checkResumption,
  checkScheduledDate,
  checkTerminationNotice,
  type Clock,
  DRILL_MARK,
  findingStatus,
  inactive,
  isValidDate,
  periodOver,
  reviewDue,
  selfAuditFlags,
  suspensionLapsed,
  taipeiDate,
  type EndReason,
  type DateInput,
  type Refusal,
} from '../domain';
import { sendMail } from '../delivery/mailer';
import { refusalError, required, UserError } from '../errors';
import { checkDocument, type LinkState, type Registry } from '../registry';
import { appendLog } from '../usagelog';
import { responseMissing, SPONSOR_AUDIT_CYCLE_MONTHS, sponsorAuditDue } from './duties';
import { type NoticeKind, renderNotice } from './notices';

export interface ComplianceDeps {
  cdb: ControlDb;
  registry: Registry;
  clock: Clock;
  config: Config;
}

export interface SweepResult {
  today: string;
  changes: string[];
  due: string[];
}

/** A date claimed for a past event and the document it comes from (R10.4). */
export interface Claim {
  /** The day the document gives (default: today). */
  on?: string;
  letterNo?: string;
}

type Mail = { to: string[]; subject: string; text: string };

/** A document an agency (or its sponsor) sent: a self-audit report, an audit report, a response to a finding. */
export interface DocumentFile {
  filename: string;
  content: Buffer;
}

/** Kinds of `document` the compliance records keep (management rules and stamped forms are the registry's). */
export const SELF_AUDIT_REPORT_KIND = 'self-audit-report';
export const AUDIT_REPORT_KIND = 'audit-report';
export const FINDING_RESPONSE_KIND = 'finding-response';

export type AuditInput = {
  agency: string;
  linkId?: number;
  kind: repo.AuditRow['kind'];
  /** Who audited; a sponsor audit defaults to the sponsoring authority's code, a self-audit to the agency's. */
  auditor?: string;
  /** The day of the audit (its report's date): a past event, so not ahead and at most 30 days back. Default today. */
  date?: string;
  summary: string;
  periodFrom?: string;
  periodTo?: string;
  /** The report; required for a self-audit (R6.4), checked by content like management rules. */
  file?: DocumentFile;
  /** R9.2: the contractors and sub-contractors audited, with the evidence each gave. */
  vendors?: { id: number; evidence?: string }[];
};

export type AuditView = repo.AuditRow & { document: { id: number; filename: string; sha256: string } | null; vendors: { id: number; name: string; linkId: number; evidence: string | null }[] };
export type FindingResponseView = repo.FindingResponseRow & { filename: string; sha256: string; late: boolean };

export const REVIEW_CYCLE_MONTHS = 12;

const refusal = (r: { ok: false; refusal: Refusal }): never => {
  throw refusalError(r.refusal);
};

const dayOf = (iso: string) => taipeiDate(new Date(iso));

/** The dates the user gives here, as messages name them and by the input that carries them. */
const AUDIT_DATE = { what: "the audit's date", field: 'date' } as const satisfies DateInput;
const PERIOD_FROM = { what: "the audited period's start", field: 'periodFrom' } as const satisfies DateInput;
const PERIOD_TO = { what: "the audited period's end", field: 'periodTo' } as const satisfies DateInput;
const DEADLINE: DateInput = { what: 'the deadline', field: 'deadline' };
const COMPLETED_ON: DateInput = { what: 'the completion date', field: 'completedOn' };

/** Rows grouped by a key, each group in the rows' order. */
function groupBy<T, K>(rows: readonly T[], key: (row: T) => K): Map<K, T[]> {
  const out = new Map<K, T[]>();
  for (const r of rows) {
    const k = key(r);
    const g = out.get(k);
    if (g) g.push(r);
    else out.set(k, [r]);
  }
  return out;
}

/**
 * The day the improvements behind a suspension were completed, or null while any is outstanding:
 * every finding of the link still open when it began (or the one that caused it), and for a
 * suspension without a finding its own recorded completion (R10.4: the six months run whatever
 * caused it). `findings`: the suspended link's.
 */
function remediatedOn(findings: readonly repo.FindingRow[], susp: repo.SuspensionRow): string | null {
  const inPlay = findings.filter((f) => f.id === susp.findingId || (dayOf(f.createdAt) <= susp.startedOn && (f.remediatedOn === null || f.remediatedOn >= susp.startedOn)));
  if (inPlay.some((f) => f.remediatedOn === null)) return null;
  const dates = inPlay.map((f) => f.remediatedOn!);
  if (susp.findingId === null) {
    if (susp.remediatedOn === null) return null;
    dates.push(susp.remediatedOn);
  }
  return dates.sort().pop() ?? null;
}

/**
 * The regulation's deadlines enforced by the system (R6.4, R7.1, R9.1, R10–R13, R-F5): audits and
 * findings, suspension and resumption, termination, inactivity, disposal, reviews and notices. Each
 * action is one transaction with its usage-log record; notices are stored, logged, and e-mailed where
 * the link has addresses.
 *
 * Every action happens at the clock's time (R6.6): the clock is the system's, except on a drill
 * installation, whose composition root may set it to another day. Dates the user gives either
 * schedule something (a deadline, never in the past) or are claimed for a past event, from a dated
 * document (checkClaimedDate); both are kept beside the time they were entered.
 */
export class ComplianceService {
  constructor(private readonly d: ComplianceDeps) {}

  private instant(): { now: Date; today: string } {
    const now = this.d.clock.now();
    return { now, today: taipeiDate(now) };
  }

  /** The day a read-only view is computed for: `at` previews another day; nothing is written. */
  private day(at?: string): string {
    if (at === undefined) return taipeiDate(this.d.clock.now());
    if (!isValidDate(at)) throw new UserError(`the day to preview '${at}' is not a date (YYYY-MM-DD)`, 'preview.date', { field: 'at' });
    return at;
  }

  private claim(input: DateInput, c: Claim, today: string, notBefore?: { date: string; what: string }): { date: string; letterNo: string } {
    const r = checkClaimedDate({ ...input, date: c.on ?? today, letterNo: c.letterNo, notBefore }, today);
    return r.ok ? r.value : refusal(r);
  }

  // ---- notices ----

  private async notice(tx: Db, s: LinkState, kind: NoticeKind, today: string, now: Date, values: Record<string, string>): Promise<Mail> {
    const drill = (await modeOf(tx)) === 'drill';
    const text = renderNotice(kind, { agency: s.agency.nameZh, agency_en: s.agency.nameEn ?? s.agency.nameZh, link: String(s.link.id), today, ...values }, { drill });
    // R14.2: the link's addresses, the agency's contact addresses and, for a non-government body, its
    // sponsoring authority's, which answers for it: every notice goes to all of them.
    const contacts = await this.d.registry.noticeContacts(tx, s.agency.id);
    const recipients = [...new Set([...s.content.email, ...contacts.emails, ...(contacts.sponsor?.emails ?? [])])];
    const row = await repo.insertNotice(tx, { agencyId: s.agency.id, linkId: s.link.id, kind, textZh: text.zh, textEn: text.en, recipients, createdAt: now.toISOString() });
    await appendLog(
      tx,
      {
        type: 'notice.issued',
        agency: s.agency.code,
        linkId: s.link.id,
        revision: s.link.currentRevision,
        actor: 'compliance',
        object: `notice:${row.id}`,
        detail: { kind, recipients, sponsor: contacts.sponsor ? { code: contacts.sponsor.code, recipients: contacts.sponsor.emails } : null },
      },
      now,
    );
    return { to: recipients, subject: `[nia-link]${drill ? ` [${DRILL_MARK}]` : ''} L${s.link.id} ${kind}`, text: `${text.zh}\n\n----\n\n${text.en}` };
  }

  /** E-mail stored notices after the transaction that made them committed; a failed e-mail never undoes the action. */
  private async mail(messages: Mail[]): Promise<void> {
    if (!this.d.config.smtp.host) return;
    for (const m of messages) {
      if (m.to.length === 0) continue;
      try {
        await sendMail(this.d.config, m);
      } catch {
        // The notice is stored and listed (notice list); delivery by e-mail is best effort.
      }
    }
  }

  // ---- audits and findings (R7.1, R9.1) ----

  /** Keep a document the agency or its auditor sent, checked by content (registry/documents.ts) and never opened. */
  private async storeDocument(tx: Db, agencyId: number, linkId: number | null, kind: string, file: ReturnType<typeof checkDocument>, now: Date): Promise<documents.DocumentMeta> {
    const version = (await documents.latestVersion(tx, agencyId, kind)) + 1;
    const { content: _content, ...meta } = await documents.insert(tx, { agencyId, linkId, kind, version, ...file, createdAt: now.toISOString() });
    return meta;
  }

  /**
   * R6.4, R9.1, R9.2, R14.2: an audit of an agency (or one of its links) as it happened: NIA's, ad hoc,
   * from an anomaly, the agency's own (with its report, required), or its sponsoring authority's.
   */
  async addAudit(input: AuditInput, actor: string): Promise<AuditView> {
    for (const d of [AUDIT_DATE, PERIOD_FROM, PERIOD_TO]) {
      const v = input[d.field];
      if (v !== undefined && !isValidDate(v)) throw new UserError(`${d.what} '${v}' is not a date (YYYY-MM-DD)`, 'audit.date', { field: d.field });
    }
    if (input.periodFrom && input.periodTo && input.periodFrom > input.periodTo) throw new UserError(`the audited period's start ${input.periodFrom} is after its end ${input.periodTo}`, 'audit.period', { field: 'periodFrom' });
    const summary = input.summary.trim();
    if (!summary) throw new UserError('a summary is required (what was audited and found)', 'audit.summary', { kind: 'invalid', field: 'summary' });
    if (input.kind === 'self' && !input.file) throw new UserError("a self-audit is recorded with the agency's report: give the report's file (R6.4)", 'selfaudit.report-missing', { kind: 'invalid', field: 'file' });
    const file = input.file ? checkDocument(input.file.filename, input.file.content) : undefined;
    const { now, today } = this.instant();
    // The audit is a past event: its day comes from its report, not ahead and at most 30 days back.
    const date = this.claim(AUDIT_DATE, { on: input.date, letterNo: file ? file.filename : input.auditor ?? input.kind }, today).date;
    if (input.periodTo && input.periodTo > date) throw new UserError(`the audited period's end ${input.periodTo} is after the audit's date ${date}: an audit covers a period behind it`, 'audit.period', { field: 'periodTo' });
    const seen = new Set<number>();
    for (const v of input.vendors ?? []) {
      if (seen.has(v.id)) throw new UserError(`vendor ${v.id} is named twice`, 'audit.vendor-twice', { field: 'vendors' });
      seen.add(v.id);
    }
    const view = await this.d.cdb.write(async (tx) => {
      const agency = await agencies.byCode(tx, input.agency.trim().toUpperCase());
      if (!agency) throw new UserError(`agency ${input.agency} is not registered`, 'agency.unknown');
      if (input.linkId !== undefined && (await this.d.registry.stateIn(tx, input.linkId)).agency.id !== agency.id) throw new UserError(`link ${input.linkId} is not ${agency.code}'s`, 'audit.link-agency');
      let auditor = input.auditor?.trim() || '';
      if (input.kind === 'sponsor') {
        // R14.2: only a non-government body has a sponsoring authority to audit it.
        const sponsor = agency.sponsorId === null ? undefined : await agencies.byId(tx, agency.sponsorId);
        if (!sponsor) throw new UserError(`agency ${agency.code} has no sponsoring authority: a sponsor audit is of a non-government body (R14.2)`, 'audit.no-sponsor');
        auditor ||= sponsor.code;
      }
      if (input.kind === 'self') auditor ||= agency.code;
      auditor ||= 'NIA';
      const named: { row: vendors.VendorRow; evidence: string | null }[] = [];
      for (const v of input.vendors ?? []) {
        const row = await vendors.byId(tx, v.id);
        const owner = row ? (await this.d.registry.stateIn(tx, row.linkId)).agency : undefined;
        if (!row || owner?.id !== agency.id) throw new UserError(`vendor ${v.id} is not a vendor of ${agency.code}'s links`, 'audit.vendor-unknown', { field: 'vendors' });
        if (input.linkId !== undefined && row.linkId !== input.linkId) throw new UserError(`vendor ${v.id} works on link ${row.linkId}, not on the audited link ${input.linkId}`, 'audit.vendor-link', { field: 'vendors' });
        named.push({ row, evidence: v.evidence?.trim() || null });
      }
      const doc = file ? await this.storeDocument(tx, agency.id, input.linkId ?? null, input.kind === 'self' ? SELF_AUDIT_REPORT_KIND : AUDIT_REPORT_KIND, file, now) : undefined;
      const row = await repo.insertAudit(tx, {
        agencyId: agency.id,
        linkId: input.linkId ?? null,
        kind: input.kind,
        auditor,
        date,
        summary,
        periodFrom: input.periodFrom ?? null,
        periodTo: input.periodTo ?? null,
        documentId: doc?.id ?? null,
        createdAt: now.toISOString(),
      });
      for (const n of named) await repo.insertAuditVendor(tx, { auditId: row.id, vendorId: n.row.id, evidence: n.evidence });
      await appendLog(
        tx,
        {
          type: input.kind === 'self' ? 'selfaudit.recorded' : 'audit.recorded',
          agency: agency.code,
          linkId: input.linkId ?? null,
          actor,
          object: `audit:${row.id}`,
          detail: {
            kind: input.kind,
            auditor,
            date,
            recordedAt: now.toISOString(),
            document: doc ? { id: doc.id, filename: doc.filename, mediaType: doc.mediaType, size: doc.size, sha256: doc.sha256 } : null,
            vendors: named.map((n) => ({ id: n.row.id, name: n.row.name, evidence: n.evidence })),
          },
        },
        now,
      );
      return await this.auditView(tx, row);
    });
    return view;
  }

  /** Audits as shown, with their reports and the vendors they covered: read for all of them at once. */
  private async auditViews(tx: Db, rows: readonly repo.AuditRow[]): Promise<AuditView[]> {
    if (rows.length === 0) return [];
    const docs = new Map((await documents.metas(tx, rows.flatMap((a) => (a.documentId === null ? [] : [a.documentId])))).map((d) => [d.id, d]));
    const covered = groupBy(await repo.vendorsOfAudits(tx, rows.map((a) => a.id)), (x) => x.auditId);
    const vendorById = new Map((await vendors.byIds(tx, [...new Set([...covered.values()].flat().map((x) => x.vendorId))])).map((v) => [v.id, v]));
    return rows.map((a) => {
      const doc = a.documentId === null ? undefined : docs.get(a.documentId);
      return {
        ...a,
        document: doc ? { id: doc.id, filename: doc.filename, sha256: doc.sha256 } : null,
        vendors: (covered.get(a.id) ?? []).map((x) => {
          const v = vendorById.get(x.vendorId)!;
          return { id: v.id, name: v.name, linkId: v.linkId, evidence: x.evidence };
        }),
      };
    });
  }

  private async auditView(tx: Db, a: repo.AuditRow): Promise<AuditView> {
    return (await this.auditViews(tx, [a]))[0];
  }

  async listAudits(agency?: string, kind?: repo.AuditRow['kind']): Promise<AuditView[]> {
    const db = this.d.cdb.db;
    const a = agency ? await agencies.byCode(db, agency.trim().toUpperCase()) : undefined;
    if (agency && !a) throw new UserError(`agency ${agency} is not registered`, 'agency.unknown');
    return this.auditViews(db, await repo.audits(db, { agencyId: a?.id, kind }));
  }

  /** R9.2: the audits that named a vendor, with the evidence it gave. */
  async auditsOfVendor(vendorId: number): Promise<(repo.AuditRow & { evidence: string | null; agency: string })[]> {
    const db = this.d.cdb.db;
    const rows = await repo.auditsOfVendor(db, vendorId);
    const codes = new Map((await agencies.byIds(db, [...new Set(rows.map((a) => a.agencyId))])).map((a) => [a.id, a.code]));
    return rows.map((a) => ({ ...a, agency: codes.get(a.agencyId) ?? String(a.agencyId) }));
  }

  async addFinding(input: { linkId: number; deadline: string; text: string; auditId?: number; anomalyId?: number; evidence?: number[] }, actor: string): Promise<repo.FindingRow> {
    const { now, today } = this.instant();
    // A deadline already behind would make the link overdue the moment it is recorded.
    const deadline = checkScheduledDate(DEADLINE, input.deadline, today);
    if (!deadline.ok) refusal(deadline);
    let mail: Mail | undefined;
    const row = await this.d.cdb.write(async (tx) => {
      const s = await this.d.registry.stateIn(tx, input.linkId);
      if (s.link.status === 'terminated' || s.link.status === 'rejected' || s.link.status === 'pending') throw new UserError(`link ${input.linkId} is ${s.link.status}: findings are for approved links`, 'finding.link-status');
      if (input.auditId !== undefined && !(await repo.auditById(tx, input.auditId))) throw new UserError(`audit ${input.auditId} does not exist`, 'audit.unknown');
      let text = input.text.trim();
      const evidence = [...(input.evidence ?? [])];
      if (input.anomalyId !== undefined) {
        const a = await repo.anomalyById(tx, input.anomalyId);
        if (!a) throw new UserError(`anomaly ${input.anomalyId} does not exist`, 'anomaly.unknown');
        if (a.linkId !== null && a.linkId !== input.linkId) throw new UserError(`anomaly ${input.anomalyId} concerns link ${a.linkId}, not ${input.linkId}`, 'finding.anomaly-link');
        text ||= a.summary;
        evidence.push(...a.evidence);
      }
      if (!text) throw new UserError("the finding's text is required (what must be explained and improved)", 'finding.text', { kind: 'invalid', field: 'text' });
      const f = await repo.insertFinding(tx, { linkId: input.linkId, auditId: input.auditId ?? null, anomalyId: input.anomalyId ?? null, text, deadline: input.deadline, evidence: { seqs: evidence }, remediatedOn: null, remediationNote: null, remediationLetterNo: null, remediationRecordedAt: null, createdAt: now.toISOString() });
      await appendLog(tx, { type: 'finding.added', agency: s.agency.code, linkId: s.link.id, revision: s.link.currentRevision, actor, object: `finding:${f.id}`, detail: { deadline: input.deadline, anomaly: input.anomalyId ?? null, audit: input.auditId ?? null } }, now);
      mail = await this.notice(tx, s, 'finding', today, now, { deadline: input.deadline, text });
      return f;
    });
    await this.mail(mail ? [mail] : []);
    return row;
  }

  /** R7.2, R10.4: the agency completed the improvements, on the day its document says. */
  async remediate(id: number, claim: Claim & { note?: string }, actor: string): Promise<repo.FindingRow> {
    const { now, today } = this.instant();
    return this.d.cdb.write(async (tx) => {
      const f = await repo.findingById(tx, id);
      if (!f) throw new UserError(`finding ${id} does not exist`, 'finding.unknown');
      if (f.remediatedOn) throw new UserError(`finding ${id} was remediated on ${f.remediatedOn} already`, 'finding.remediated', 'conflict');
      const c = this.claim(COMPLETED_ON, claim, today, { date: dayOf(f.createdAt), what: `finding ${id} was recorded` });
      const note = claim.note?.trim() || null;
      await repo.updateFinding(tx, id, { remediatedOn: c.date, remediationNote: note, remediationLetterNo: c.letterNo, remediationRecordedAt: now.toISOString() });
      const s = await this.d.registry.stateIn(tx, f.linkId);
      await appendLog(tx, { type: 'finding.remediated', agency: s.agency.code, linkId: f.linkId, actor, object: `finding:${id}`, detail: { completedOn: c.date, letterNo: c.letterNo, recordedAt: now.toISOString(), note } }, now);
      return (await repo.findingById(tx, id))!;
    });
  }

  /**
   * R7.2: the agency's written explanation and improvement measures answering a finding, kept as a
   * document (checked by content like management rules) and logged in the same transaction. It counts
   * on the day it is recorded; one recorded after the deadline is kept and marked late.
   */
  async respond(id: number, input: { file: DocumentFile; note?: string }, actor: string): Promise<FindingResponseView> {
    const file = checkDocument(input.file.filename, input.file.content);
    const { now, today } = this.instant();
    return this.d.cdb.write(async (tx) => {
      const f = await repo.findingById(tx, id);
      if (!f) throw new UserError(`finding ${id} does not exist`, 'finding.unknown');
      const s = await this.d.registry.stateIn(tx, f.linkId);
      const doc = await this.storeDocument(tx, s.agency.id, f.linkId, FINDING_RESPONSE_KIND, file, now);
      const note = input.note?.trim() || null;
      const late = today > f.deadline;
      const row = await repo.insertFindingResponse(tx, { findingId: id, documentId: doc.id, note, receivedOn: today, recordedAt: now.toISOString(), recordedBy: actor });
      await appendLog(
        tx,
        {
          type: 'finding.responded',
          agency: s.agency.code,
          linkId: f.linkId,
          revision: s.link.currentRevision,
          actor,
          object: `finding:${id}`,
          detail: { response: row.id, deadline: f.deadline, receivedOn: today, late, note, document: { id: doc.id, filename: doc.filename, mediaType: doc.mediaType, size: doc.size, sha256: doc.sha256 } },
        },
        now,
      );
      return { ...row, filename: doc.filename, sha256: doc.sha256, late };
    });
  }

  /** R7.2: the responses recorded for a finding, oldest first. */
  async responses(id: number): Promise<FindingResponseView[]> {
    const db = this.d.cdb.db;
    const f = await repo.findingById(db, id);
    if (!f) throw new UserError(`finding ${id} does not exist`, 'finding.unknown');
    const rows = await repo.findingResponses(db, id);
    const docs = new Map((await documents.metas(db, rows.map((r) => r.documentId))).map((d) => [d.id, d]));
    return rows.map((r) => {
      const d = docs.get(r.documentId)!;
      return { ...r, filename: d.filename, sha256: d.sha256, late: r.receivedOn > f.deadline };
    });
  }

  async extend(id: number, deadline: string, actor: string): Promise<repo.FindingRow> {
    if (!isValidDate(deadline)) throw new UserError(`the deadline '${deadline}' is not a date (YYYY-MM-DD)`, 'schedule.date', { kind: 'invalid', field: 'deadline' });
    const { now, today } = this.instant();
    const ahead = checkScheduledDate(DEADLINE, deadline, today);
    if (!ahead.ok) refusal(ahead);
    return this.d.cdb.write(async (tx) => {
      const f = await repo.findingById(tx, id);
      if (!f) throw new UserError(`finding ${id} does not exist`, 'finding.unknown');
      const ok = checkDeadlineExtension(f, deadline, today);
      if (!ok.ok) refusal(ok);
      await repo.updateFinding(tx, id, { deadline });
      await appendLog(tx, { type: 'finding.extended', linkId: f.linkId, actor, object: `finding:${id}`, detail: { from: f.deadline, to: deadline } }, now);
      return (await repo.findingById(tx, id))!;
    });
  }

  /** Findings with their status as of today, or as of `at` (a preview; nothing changes). */
  async listFindings(linkId?: number, at?: string): Promise<(repo.FindingRow & { status: string; respondedOn: string | null })[]> {
    const today = this.day(at);
    const db = this.d.cdb.db;
    const rows = await repo.findings(db, linkId);
    const responses = groupBy(await repo.responsesTo(db, rows.map((f) => f.id)), (r) => r.findingId);
    return rows.map((f) => ({ ...f, status: findingStatus(f, today), respondedOn: responses.get(f.id)?.find((r) => r.receivedOn <= today)?.receivedOn ?? null }));
  }

  // ---- suspension and resumption (R10) ----

  private async suspendIn(tx: Db, linkId: number, reason: string, findingId: number | null, actor: string, today: string, now: Date): Promise<Mail> {
    const s = await this.d.registry.stateIn(tx, linkId);
    await this.d.registry.suspend(tx, linkId, reason, actor, now, { finding: findingId });
    await repo.insertSuspension(tx, { linkId, startedOn: today, reason, findingId, resumeRequestedOn: null, endedOn: null, outcome: null, remediatedOn: null, remediationLetterNo: null, remediationRecordedAt: null });
    return await this.notice(tx, s, 'suspended', today, now, { reason });
  }

  async suspend(linkId: number, reason: string, actor: string): Promise<void> {
    if (!reason.trim()) throw required('a reason', 'reason');
    const { now, today } = this.instant();
    const mail = await this.d.cdb.write((tx) => this.suspendIn(tx, linkId, reason.trim(), null, actor, today, now));
    await this.mail([mail]);
  }

  /**
   * R10.4: a suspension without a finding needs the completion of its improvements recorded too, with
   * its document, before the agency may ask to resume.
   */
  async remediateSuspension(linkId: number, claim: Claim & { note?: string }, actor: string): Promise<repo.SuspensionRow> {
    const { now, today } = this.instant();
    return this.d.cdb.write(async (tx) => {
      const s = await this.d.registry.stateIn(tx, linkId);
      const susp = await repo.openSuspension(tx, linkId);
      if (s.link.status !== 'suspended' || !susp) throw new UserError(`link ${linkId} is ${s.link.status}, not suspended`, 'link.not-suspended');
      if (susp.findingId !== null) throw new UserError(`link ${linkId} was suspended for finding ${susp.findingId}: record the finding's remediation instead`, 'suspension.has-finding');
      if (susp.remediatedOn) throw new UserError(`the improvements for link ${linkId}'s suspension were recorded as completed on ${susp.remediatedOn} already`, 'suspension.remediated', 'conflict');
      const c = this.claim(COMPLETED_ON, claim, today, { date: susp.startedOn, what: 'the suspension began' });
      const note = claim.note?.trim() || null;
      await repo.updateSuspension(tx, susp.id, { remediatedOn: c.date, remediationLetterNo: c.letterNo, remediationRecordedAt: now.toISOString() });
      await appendLog(tx, { type: 'suspension.remediated', agency: s.agency.code, linkId, revision: s.link.currentRevision, actor, detail: { suspendedOn: susp.startedOn, completedOn: c.date, letterNo: c.letterNo, recordedAt: now.toISOString(), note } }, now);
      return (await repo.openSuspension(tx, linkId))!;
    });
  }

  /** R10.4: when the improvements behind the link's open suspension were completed (remediatedOn). */
  private async remediatedOn(tx: Db, linkId: number, susp: repo.SuspensionRow): Promise<string | null> {
    return remediatedOn(await repo.findings(tx, linkId), susp);
  }

  /**
   * The one way a link ends (R-F5, R11.1, R12.1, R13.1, R10.3): the link is terminated, its
   * suspension closed, its disposal task opened, and the agency notified.
   */
  private async endIn(tx: Db, linkId: number, reason: EndReason, actor: string, today: string, now: Date, detail: Record<string, unknown> = {}, kind?: NoticeKind): Promise<Mail> {
    const s = await this.d.registry.stateIn(tx, linkId);
    await this.d.registry.terminate(tx, linkId, reason, actor, now, detail);
    const open = await repo.openSuspension(tx, linkId);
    if (open) await repo.updateSuspension(tx, open.id, { endedOn: today, outcome: 'ended' });
    if (!(await repo.disposalFor(tx, linkId))) {
      await repo.insertDisposal(tx, { linkId, openedOn: today, required: s.content.disposal, confirmedAt: null, confirmedBy: null, how: null, doneOn: null, letterNo: null });
      await appendLog(tx, { type: 'disposal.opened', agency: s.agency.code, linkId, actor, detail: { required: s.content.disposal } }, now);
    }
    return await this.notice(tx, s, kind ?? (reason === 'reapplication-required' ? 'resume-refused' : 'ended'), today, now, { reason: String(detail.why ?? reason), disposal: s.content.disposal });
  }

  async resumeRequest(linkId: number, actor: string): Promise<{ accepted: boolean; message: string }> {
    const { now, today } = this.instant();
    const r = await this.d.cdb.write(async (tx) => {
      const s = await this.d.registry.stateIn(tx, linkId);
      const susp = await repo.openSuspension(tx, linkId);
      if (s.link.status !== 'suspended' || !susp) throw new UserError(`link ${linkId} is ${s.link.status}, not suspended`, 'link.not-suspended');
      const check = checkResumption({ suspendedOn: susp.startedOn, remediatedOn: await this.remediatedOn(tx, linkId, susp) });
      if (!check.ok && check.refusal.code === 'resume.too-late') {
        return { accepted: false, message: check.refusal.message, mail: await this.endIn(tx, linkId, 'reapplication-required', actor, today, now, { why: check.refusal.message }) };
      }
      if (!check.ok) refusal(check);
      await repo.updateSuspension(tx, susp.id, { resumeRequestedOn: today });
      await appendLog(tx, { type: 'link.resume-requested', agency: s.agency.code, linkId, actor, detail: { suspendedOn: susp.startedOn } }, now);
      return { accepted: true, message: `resumption of link ${linkId} requested; NIA decides with \`nia-link link resume-approve ${linkId}\``, mail: undefined };
    });
    await this.mail(r.mail ? [r.mail] : []);
    if (!r.accepted) throw new UserError(`${r.message}; link ${linkId} has ended (reapplication-required)`, 'resume.too-late');
    return { accepted: r.accepted, message: r.message };
  }

  async resumeApprove(linkId: number, actor: string): Promise<void> {
    const { now, today } = this.instant();
    const r = await this.d.cdb.write(async (tx) => {
      const s = await this.d.registry.stateIn(tx, linkId);
      const susp = await repo.openSuspension(tx, linkId);
      if (s.link.status !== 'suspended' || !susp) throw new UserError(`link ${linkId} is ${s.link.status}, not suspended`, 'link.not-suspended');
      if (!susp.resumeRequestedOn) throw new UserError(`link ${linkId} has no resumption request: the agency asks to resume first`, 'resume.not-requested');
      const check = checkResumption({ suspendedOn: susp.startedOn, remediatedOn: await this.remediatedOn(tx, linkId, susp) });
      if (!check.ok && check.refusal.code === 'resume.too-late') return { ended: check.refusal.message, mail: await this.endIn(tx, linkId, 'reapplication-required', actor, today, now, { why: check.refusal.message }) };
      if (!check.ok) refusal(check);
      await this.d.registry.resume(tx, linkId, actor, now, { suspendedOn: susp.startedOn });
      await repo.updateSuspension(tx, susp.id, { endedOn: today, outcome: 'resumed' });
      return { ended: null, mail: await this.notice(tx, s, 'resumed', today, now, {}) };
    });
    await this.mail([r.mail]);
    if (r.ended) throw new UserError(`${r.ended}; link ${linkId} has ended (reapplication-required)`, 'resume.too-late');
  }

  // ---- termination (R11.1) and stop requests (R12.1) ----

  /**
   * R11.1: the agency's written notice, received on the day its letter says, ends the link on the
   * effective date; on that date through the one path that ends links (at once when it is today).
   */
  async terminate(linkId: number, input: { effective: string; noticeDate?: string; letterNo?: string }, actor: string): Promise<void> {
    const { now, today } = this.instant();
    const effective = checkScheduledDate({ what: 'the effective date', field: 'effective' }, input.effective, today);
    if (!effective.ok) refusal(effective);
    const mails = await this.d.cdb.write(async (tx) => {
      const s = await this.d.registry.stateIn(tx, linkId);
      const approved = s.link.approvedAt ? { date: dayOf(s.link.approvedAt), what: `link ${linkId} was approved` } : undefined;
      const c = this.claim({ what: "the notice's date", field: 'noticeDate' }, { on: input.noticeDate, letterNo: input.letterNo }, today, approved);
      const ok = checkTerminationNotice(c.date, input.effective);
      if (!ok.ok) refusal(ok);
      await this.d.registry.scheduleEnd(tx, linkId, input.effective, actor, now, { noticeDate: c.date, letterNo: c.letterNo, recordedAt: now.toISOString(), reason: 'agency-notice' });
      await repo.insertTermination(tx, { linkId, noticeDate: c.date, letterNo: c.letterNo, effectiveOn: input.effective, recordedAt: now.toISOString(), recordedBy: actor });
      const out = [await this.notice(tx, s, 'termination', today, now, { effective: input.effective })];
      const ended = await this.endDateIn(tx, linkId, actor, today, now);
      if (ended) out.push(ended.mail);
      return out;
    });
    await this.mail(mails);
  }

  /** An approved end date (a termination notice's or a stop request's) that has come ends the link. */
  private async endDateIn(tx: Db, linkId: number, actor: string, today: string, now: Date): Promise<{ line: string; mail: Mail } | null> {
    const s = await this.d.registry.stateIn(tx, linkId);
    if (s.link.status !== 'active' && s.link.status !== 'suspended') return null;
    if (s.link.endsOn === null || s.link.endsOn > today) return null;
    const reason: EndReason = s.content.stopOn === s.link.endsOn ? 'stop-request' : 'agency-notice';
    return { line: `link ${linkId}: ended on ${s.link.endsOn} (${reason})`, mail: await this.endIn(tx, linkId, reason, actor, today, now, { endsOn: s.link.endsOn }) };
  }

  /**
   * End the links (or the one link) whose approved end date has come, through the one path: what an
   * approved stop request dated today needs at once, since the registry that approves it cannot end
   * a link itself. Returns what ended; `mailed` settles once the notices are e-mailed.
   */
  async endDue(actor: string, linkId?: number): Promise<{ ended: string[]; mailed: Promise<void> }> {
    const { now, today } = this.instant();
    const ids = linkId !== undefined ? [linkId] : (await this.d.registry.list()).filter((l) => l.endsOn !== null && (l.status === 'active' || l.status === 'suspended')).map((l) => l.id);
    const ended: string[] = [];
    const mails: Mail[] = [];
    for (const id of ids) {
      const r = await this.d.cdb.write((tx) => this.endDateIn(tx, id, actor, today, now));
      if (!r) continue;
      ended.push(r.line);
      mails.push(r.mail);
    }
    return { ended, mailed: this.mail(mails) };
  }

  // ---- inactivity (R13.1), disposal (R-F5), reviews (R12.1) ----

  /** The Taipei day of the link's last use (R13.1), or of its approval when it was never used. */
  private async lastUseDay(tx: Db, s: LinkState, today: string): Promise<string> {
    const at = (await repo.lastUse(tx, s.link.id)) ?? s.link.approvedAt;
    return at ? dayOf(at) : today;
  }

  /** A flag that still stands: a link used again since it was flagged is no longer inactive. */
  private async inactivityRow(tx: Db, linkId: number, today: string): Promise<repo.InactivityRow> {
    const row = await repo.inactivityFor(tx, linkId);
    if (!row) throw new UserError(`link ${linkId} is not flagged as inactive (the daily sweep flags links unused for over a year)`, 'inactivity.not-flagged');
    const s = await this.d.registry.stateIn(tx, linkId);
    if (s.link.status !== 'active' && s.link.status !== 'suspended') throw new UserError(`link ${linkId} is ${s.link.status}`, 'inactivity.link-status');
    const last = await this.lastUseDay(tx, s, today);
    if (!inactive(last, today)) throw new UserError(`link ${linkId} was used on ${last}, within the last year: it is not inactive (R13.1)`, 'inactivity.used');
    return row;
  }

  async inactivityNotice(linkId: number, actor: string): Promise<void> {
    const { now, today } = this.instant();
    const mail = await this.d.cdb.write(async (tx) => {
      const row = await this.inactivityRow(tx, linkId, today);
      const s = await this.d.registry.stateIn(tx, linkId);
      await repo.updateInactivity(tx, row.id, { noticeOn: today });
      await appendLog(tx, { type: 'inactivity.noticed', agency: s.agency.code, linkId, actor, detail: { lastUse: row.lastUse } }, now);
      return await this.notice(tx, s, 'inactivity', today, now, { last_use: row.lastUse });
    });
    await this.mail([mail]);
  }

  /** The agency's written confirmation that it has no need, dated by its letter: the link ends. */
  async inactivityConfirm(linkId: number, claim: Claim, actor: string): Promise<void> {
    const { now, today } = this.instant();
    const mail = await this.d.cdb.write(async (tx) => {
      const row = await this.inactivityRow(tx, linkId, today);
      if (!row.noticeOn) throw new UserError(`NIA has not given written notice of inactivity for link ${linkId} yet`, 'inactivity.no-notice');
      const c = this.claim({ what: "the agency's confirmation", field: 'confirmedOn' }, claim, today, { date: row.noticeOn, what: "NIA's notice of inactivity" });
      await repo.updateInactivity(tx, row.id, { confirmedOn: c.date, confirmationLetterNo: c.letterNo, confirmationRecordedAt: now.toISOString() });
      return await this.endIn(tx, linkId, 'inactivity', actor, today, now, { why: 'unused for over a year; the agency confirmed it has no need', lastUse: row.lastUse, confirmedOn: c.date, letterNo: c.letterNo, recordedAt: now.toISOString() });
    });
    await this.mail([mail]);
  }

  /** R-F5: who disposed of the data, how, and on the day the agency's document says. */
  async confirmDisposal(linkId: number, input: Claim & { how: string; by: string }): Promise<repo.DisposalRow> {
    if (!input.how.trim()) throw required('how the data was disposed of (destroyed, returned, …)', 'how');
    if (!input.by.trim()) throw required('who disposed of the data', 'by');
    const { now, today } = this.instant();
    return this.d.cdb.write(async (tx) => {
      const row = await repo.disposalFor(tx, linkId);
      if (!row) throw new UserError(`link ${linkId} has no disposal task (it opens when the link ends)`, 'disposal.unknown');
      if (row.confirmedAt) throw new UserError(`disposal for link ${linkId} was confirmed on ${row.confirmedAt} already`, 'disposal.confirmed', 'conflict');
      const c = this.claim({ what: 'the day of disposal', field: 'doneOn' }, input, today, { date: row.openedOn, what: `link ${linkId} ended` });
      await repo.updateDisposal(tx, row.id, { confirmedAt: now.toISOString(), confirmedBy: input.by.trim(), how: input.how.trim(), doneOn: c.date, letterNo: c.letterNo });
      const s = await this.d.registry.stateIn(tx, linkId);
      await appendLog(tx, { type: 'disposal.confirmed', agency: s.agency.code, linkId, actor: input.by.trim(), detail: { how: input.how.trim(), required: row.required, doneOn: c.date, letterNo: c.letterNo, recordedAt: now.toISOString() } }, now);
      return (await repo.disposalFor(tx, linkId))!;
    });
  }

  async addReview(linkId: number, date: string, outcome: 'keep' | 'stop', note: string | undefined, actor: string): Promise<repo.ReviewRow> {
    if (!isValidDate(date)) throw new UserError(`the review's date '${date}' is not a date (YYYY-MM-DD)`, 'review.date', { field: 'date' });
    const { now, today } = this.instant();
    return this.d.cdb.write(async (tx) => {
      const s = await this.d.registry.stateIn(tx, linkId);
      // The review is a past event: a date ahead would put the next one off (R12.1), one far back is NIA's decision, not a date to type.
      const approved = s.link.approvedAt ? { date: dayOf(s.link.approvedAt), what: `link ${linkId} was approved` } : undefined;
      this.claim({ what: "the review's date", field: 'date' }, { on: date, letterNo: 'review' }, today, approved);
      const row = await repo.insertReview(tx, { linkId, date, outcome, note: note ?? null, createdAt: now.toISOString() });
      await appendLog(tx, { type: 'review.recorded', agency: s.agency.code, linkId, actor, detail: { date, outcome } }, now);
      return row;
    });
  }

  // ---- the daily sweep ----

  /** Apply every deadline as of today and say what changed and what is due. */
  async sweep(actor: string): Promise<SweepResult> {
    const { now, today } = this.instant();
    const changes: string[] = [];
    const due: string[] = [];
    const mails: Mail[] = [];
    for (const l of await this.d.registry.list()) {
      if (l.status !== 'active' && l.status !== 'suspended') continue;
      const r = await this.d.cdb.write(async (tx) => {
        const s = await this.d.registry.stateIn(tx, l.id);
        if (s.link.status !== 'active' && s.link.status !== 'suspended') return null;
        // R11.1 / R12.1: an approved end date has come.
        const ended = await this.endDateIn(tx, l.id, actor, today, now);
        if (ended) {
          mails.push(ended.mail);
          return ended.line;
        }
        // R-F5: the use period is over.
        if (periodOver(s.content.period.to, today)) {
          mails.push(await this.endIn(tx, l.id, 'expiry', actor, today, now, { to: s.content.period.to }));
          return `link ${l.id}: use period ended on ${s.content.period.to}; disposal task opened`;
        }
        // R10.4: six months after a suspension began, whatever caused it, without the improvements completed in time.
        const susp = s.link.status === 'suspended' ? await repo.openSuspension(tx, l.id) : undefined;
        if (susp) {
          const completed = await this.remediatedOn(tx, l.id, susp);
          if (suspensionLapsed({ suspendedOn: susp.startedOn, remediatedOn: completed }, today)) {
            const latest = addMonths(susp.startedOn, 6);
            const why = `${completed ? `improvements completed on ${completed}, after` : 'improvements not completed by'} ${latest}, six months after the suspension began on ${susp.startedOn}: a new application is required (R10.4)`;
            mails.push(await this.endIn(tx, l.id, 'reapplication-required', actor, today, now, { why, suspendedOn: susp.startedOn }, 'ended'));
            return `link ${l.id}: ended (reapplication-required): ${why}`;
          }
        }
        // R10.1: an overdue finding suspends the link (or waits for an operator when autoSuspend is off).
        const overdue = (await repo.findings(tx, l.id)).filter((f) => findingStatus(f, today) === 'overdue');
        if (s.link.status === 'active' && overdue.length > 0) {
          if (!this.d.config.policy.autoSuspend) {
            due.push(`link ${l.id}: due for suspension (finding ${overdue.map((f) => f.id).join(', ')} overdue); confirm with nia-link link suspend ${l.id} --reason …`);
            return null;
          }
          const f = overdue[0];
          mails.push(await this.suspendIn(tx, l.id, `finding ${f.id} not remediated by ${f.deadline}: ${f.text}`, f.id, actor, today, now));
          return `link ${l.id}: suspended (finding ${f.id} overdue since ${addDays(f.deadline, 1)})`;
        }
        // R13.1: unused for more than a year (Taipei days) is flagged; it stops only after notice and confirmation.
        const lastUse = await this.lastUseDay(tx, s, today);
        const flagged = await repo.inactivityFor(tx, l.id);
        if (inactive(lastUse, today) && !flagged) {
          await repo.insertInactivity(tx, { linkId: l.id, flaggedOn: today, lastUse, noticeOn: null, confirmedOn: null, confirmationLetterNo: null, confirmationRecordedAt: null });
          await appendLog(tx, { type: 'inactivity.flagged', agency: s.agency.code, linkId: l.id, actor, detail: { lastUse } }, now);
          return `link ${l.id}: flagged inactive (last use ${lastUse})`;
        }
        if (flagged && !inactive(lastUse, today) && !flagged.confirmedOn) await repo.deleteInactivity(tx, flagged.id);
        return null;
      });
      if (r) changes.push(r);
    }
    await this.mail(mails);
    due.push(...(await this.status()).filter((x) => !due.includes(x)));
    return { today, changes, due };
  }

  /**
   * What is due, overdue or flagged today, or as of `at` (a preview; nothing changes). Each kind of
   * record is read once for every link and agency: a fixed number of statements however many there are.
   */
  async status(at?: string): Promise<string[]> {
    const today = this.day(at);
    const out: string[] = [];
    const db = this.d.cdb.db;
    const findings = await repo.findings(db);
    const findingsOf = groupBy(findings, (f) => f.linkId);
    const responses = groupBy(await repo.responsesTo(db, findings.map((f) => f.id)), (r) => r.findingId);
    for (const f of findings) {
      const st = findingStatus(f, today);
      if (st === 'open') out.push(`finding ${f.id} (link ${f.linkId}): due ${f.deadline}`);
      if (st === 'overdue') out.push(`finding ${f.id} (link ${f.linkId}): OVERDUE since ${addDays(f.deadline, 1)}`);
      // R7.2: the written explanation and improvement measures were due by the deadline too.
      const responded = (responses.get(f.id) ?? []).map((r) => r.receivedOn).filter((d) => d <= today);
      const settled = f.remediatedOn !== null && f.remediatedOn <= today;
      if (!settled && responseMissing(f.deadline, responded, today)) {
        out.push(`finding ${f.id} (link ${f.linkId}): no written explanation and improvement measures by its deadline ${f.deadline}${responded.length ? ` (received late, ${responded[0]})` : ''} (R7.2)`);
      }
    }
    for (const s of await repo.openSuspensions(db)) {
      const completed = remediatedOn(findingsOf.get(s.linkId) ?? [], s);
      out.push(
        `link ${s.linkId}: suspended since ${s.startedOn}${completed ? `, improvements completed ${completed}` : `, improvements to be completed by ${addMonths(s.startedOn, 6)} (R10.4)`}${s.resumeRequestedOn ? `, resumption requested ${s.resumeRequestedOn}` : ''}`,
      );
    }
    for (const d of await repo.disposals(db)) if (!d.confirmedAt) out.push(`link ${d.linkId}: disposal (${d.required}) not confirmed since ${d.openedOn}`);
    const links = await this.d.registry.list();
    const inForce = links.filter((l) => l.status === 'active' || l.status === 'suspended');
    const inForceIds = inForce.map((l) => l.id);
    const inactivity = new Map((await repo.inactivityOf(db, inForceIds)).map((r) => [r.linkId, r]));
    const reviewed = await repo.lastReviewDates(db, inForceIds);
    for (const l of inForce) {
      const ina = inactivity.get(l.id);
      if (ina && !ina.confirmedOn) out.push(`link ${l.id}: inactive since ${ina.lastUse}${ina.noticeOn ? `, notice given ${ina.noticeOn}` : ', notice not yet given'}`);
      const last = reviewed.get(l.id) ?? (l.approvedAt ? dayOf(l.approvedAt) : today);
      const next = reviewDue(last, REVIEW_CYCLE_MONTHS);
      if (next < today) out.push(`link ${l.id}: necessity review overdue since ${next}`);
      if (l.endsOn) out.push(`link ${l.id}: ends on ${l.endsOn}`);
      // R3.4: the migration gave such links the whole dataset so nothing stopped; only the agency can say which records it needs.
      if (l.scopeReview) out.push(`link ${l.id}: scope review needed: recorded before scopes existed, it receives the whole dataset until its agency files nia-link link change ${l.id} --kind scope`);
    }
    const linksOf = groupBy(links, (l) => l.agency);
    const audits = await repo.audits(db);
    const selfAudits = groupBy(
      audits.filter((x) => x.kind === 'self'),
      (x) => x.agencyId,
    );
    const sponsorAudits = groupBy(
      audits.filter((x) => x.kind === 'sponsor'),
      (x) => x.agencyId,
    );
    const all = await agencies.all(db);
    const agencyById = new Map(all.map((a) => [a.id, a]));
    for (const a of all) {
      const own = linksOf.get(a.code) ?? [];
      const dates = (selfAudits.get(a.id) ?? []).map((x) => x.date);
      const tracked = own.filter((l) => l.approvedAt).map((l) => dayOf(l.approvedAt!)).sort()[0];
      if (tracked) for (const flag of selfAuditFlags(dates, today, tracked)) out.push(`agency ${a.code}: ${flag}`);
      // R14.2: a non-government body with links in force is audited by its sponsoring authority every cycle.
      const sponsor = a.sponsorId === null ? undefined : agencyById.get(a.sponsorId);
      const inForceSince = own
        .filter((l) => l.approvedAt && (l.status === 'active' || l.status === 'suspended'))
        .map((l) => dayOf(l.approvedAt!))
        .sort()[0];
      if (sponsor && inForceSince) {
        const last = (sponsorAudits.get(a.id) ?? []).map((x) => x.date).filter((d) => d <= today).pop() ?? null;
        const due = sponsorAuditDue(last, inForceSince, SPONSOR_AUDIT_CYCLE_MONTHS);
        if (due < today) out.push(`agency ${a.code}: audit by its sponsoring authority ${sponsor.code} overdue since ${addDays(due, 1)} (${last ? `last ${last}` : 'never audited'}; every ${SPONSOR_AUDIT_CYCLE_MONTHS} months, R14.2)`);
      }
    }
    return out;
  }

  async listNotices(linkId?: number): Promise<repo.NoticeRow[]> {
    return repo.notices(this.d.cdb.db, linkId);
  }
}
