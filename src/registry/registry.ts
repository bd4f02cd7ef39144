import { randomBytes } from 'node:crypto';
import { CronExpressionParser } from 'cron-parser';
import { afterCommit, type ControlDb, type Db } from '../db';
import { agencies, credentials, documents, links, queries, rulesReviews, vendors } from '../db/repositories';
import {
  AGENCY_CODE,
  allowListProblems,
  allowListWithout,
  applyChange,
  canFileChange,
  type Change,
  type ChangeKind,
  checkClaimedDate,
  checkContactEmails,
  checkReplyLetter,
  checkRevision,
  checkScheduledDate,
  checkSponsor,
  cidrWithin,
  type Clock,
  type DatasetCatalog,
  type EndReason,
  formatField,
  formatFieldList,
  type LinkEvent,
  type LinkStatus,
  type Method,
  type PushEndpoint,
  type RevisionContent,
  revisionContentSchema,
  taipeiDate,
  transition,
  type FieldSpec,
  parseFieldList,
  machinesOutside,
  missingTopics,
  DEFAULT_MAX_IDS_PER_DAY,
  describeScope,
  isLegacyScope,
  type Scope,
  scopeFromInput,
  type Refusal,
} from '../domain';
import { inspectAgencyKey, inspectClientCertificate, inspectSshPublicKey, type SshPublicKeyFacts } from '../crypto';
import { refusalError, required, UserError } from '../errors';
import { appendLog } from '../usagelog';
import { checkDocument, type CheckedDocument } from './documents';
import { RULES_KIND, rulesGate, storeRulesDocument } from './rules';

export interface ApplyInput {
  agency: string;
  dataset: string;
  fields: FieldSpec[];
  legalBasis: string;
  purpose: string;
  department: string;
  officer: string;
  supervisor: string;
  from: string;
  to: string;
  disposal: string;
  methods: Method[];
  allowIps: string[];
  account?: string;
  sshKeys: string[];
  pgpKey: string;
  schedule?: string;
  rules?: { filename: string; content: Buffer };
  push?: PushEndpoint;
  email?: string[];
  /** online-query: the agency system's TLS client certificates (PEM). */
  clientCerts?: string[];
  /** R3.4: the records asked for, as typed (--scope), as JSON (--scope-file), or `all` with a justification. */
  scope: { text?: string; json?: unknown; justification?: string; maxSubjects?: number };
  /** R3.5: identifiers a day (default DEFAULT_MAX_IDS_PER_DAY). */
  maxIdsPerDay?: number;
}

export interface LinkView {
  id: number;
  agency: string;
  agencyName: string;
  status: LinkStatus;
  revision: number;
  dataset: string;
  fields: string[];
  channels: Method[];
  allowIps: string[];
  account: string | null;
  from: string;
  to: string;
  pgpFingerprint: string;
  legalBasis: string;
  purpose: string;
  department: string;
  officer: string;
  supervisor: string;
  disposal: string;
  schedule: string | null;
  push: PushEndpoint | null;
  email: string[];
  rulesDocument: number | null;
  /** The rules version in force and its review (R4.1): approval needs `missing` empty. */
  rules: { document: number; version: number; reviewed: boolean; missing: number[] } | null;
  vendors: { id: number; name: string; contact: string; machines: string[]; parentId: number | null }[];
  appliedAt: string;
  approvedAt: string | null;
  approvedBy: string | null;
  letterNo: string | null;
  letterDate: string | null;
  /** R-F9: the agency's stamped form on file. */
  stampedForm: { document: number; filename: string; sha256: string } | null;
  /** R14.1: a non-government body's sponsoring authority. */
  sponsor: { code: string; name: string } | null;
  statusReason: string | null;
  endReason: string | null;
  endsOn: string | null;
  stopOn: string | null;
  clientCerts: string[];
  scope: Scope;
  /** The scope in words (zh-TW), as the form prints it. */
  scopeText: string;
  /** Recorded before scopes existed: the whole dataset until the agency states a scope. */
  scopeReview: boolean;
  maxIdsPerDay: number;
}

/** A link and the revision its data flows under: what every channel and job asks for. */
export interface LinkState {
  link: links.LinkRow;
  agency: agencies.AgencyRow;
  content: RevisionContent;
  /**
   * The allow-list in force: the revision's, less the machines of vendors removed since NIA last set
   * it and that no current vendor holds (R8.2: a removed vendor is cut off at once, before NIA decides
   * the `ips` change its removal filed). Every channel checks addresses against this, never the revision's.
   */
  allowIps: string[];
}

/** LinkState.allowIps: one read of the link's vendors; the revision query only when one was removed. */
async function allowListInForce(tx: Db, link: links.LinkRow, allowIps: string[]): Promise<string[]> {
  const all = await vendors.forLink(tx, link.id, { removed: true });
  const removed = all.filter((v) => v.removedAt !== null);
  if (removed.length === 0) return allowIps;
  const setAt = await vendors.allowListSetAt(tx, link.id, link.currentRevision);
  const held = new Set(all.filter((v) => v.removedAt === null).flatMap((v) => v.machines));
  const cut = removed.filter((v) => setAt === null || v.removedAt! >= setAt).flatMap((v) => v.machines).filter((m) => !held.has(m));
  return cut.length ? allowListWithout(allowIps, cut) : allowIps;
}

export type ChangeListener = (linkId: number) => void;

function requireText(value: string | undefined, what: string, field: string): string {
  if (value === undefined || value.trim() === '') throw required(what, field);
  return value.trim();
}

function refusal(r: { ok: false; refusal: Refusal }): never {
  throw refusalError(r.refusal);
}

/**
 * A client certificate identifies one agency's system: the query service finds the link by the
 * certificate alone, so one registered for two agencies would answer one agency's requests with the
 * other's link. Every link counts, whatever its status, so a certificate never moves between agencies.
 */
async function assertCertsOfOneAgency(tx: Db, fingerprints: readonly string[], agency: agencies.AgencyRow): Promise<void> {
  for (const fp of fingerprints) {
    for (const id of await queries.linksForClientCert(tx, fp)) {
      const other = await links.byId(tx, id);
      if (other && other.agencyId !== agency.id) {
        const owner = await agencies.byId(tx, other.agencyId);
        throw new UserError(`client certificate ${fp.slice(0, 16)}… is registered for agency ${owner?.code ?? other.agencyId} (link ${id}); a certificate identifies one agency's system: ${agency.code} must make its own`, 'cert.other-agency');
      }
    }
  }
}

export const STAMPED_FORM_KIND = 'stamped-form';

/**
 * Store the agency's stamped form as a document of the link, checked by content like management
 * rules. `logged`: a record of its own when stored ahead of approval; at approval the approval's record
 * names it.
 */
async function storeStampedForm(tx: Db, agency: agencies.AgencyRow, linkId: number, doc: CheckedDocument, actor: string, now: Date, logged: boolean): Promise<documents.DocumentMeta> {
  const version = (await documents.latestVersion(tx, agency.id, STAMPED_FORM_KIND)) + 1;
  const { content: _content, ...meta } = await documents.insert(tx, { agencyId: agency.id, linkId, kind: STAMPED_FORM_KIND, version, ...doc, createdAt: now.toISOString() });
  if (logged) {
    await appendLog(tx, { type: 'stamped-form.added', agency: agency.code, linkId, actor, object: `document:${meta.id}`, detail: { filename: doc.filename, mediaType: doc.mediaType, size: doc.size, sha256: doc.sha256 } }, now);
  }
  return meta;
}

async function stampedFormOf(tx: Db, linkId: number): Promise<documents.DocumentMeta | undefined> {
  return (await documents.listMeta(tx, { linkId, kind: STAMPED_FORM_KIND })).sort((a, b) => b.id - a.id)[0];
}

/** What a view is drawn from: the link, its agency and the revision in force. */
type ViewSource = Pick<LinkState, 'link' | 'agency' | 'content'>;

const byId = <T extends { id: number }>(rows: readonly T[]): Map<number, T> => new Map(rows.map((r) => [r.id, r]));
const distinct = (values: readonly (number | null)[]): number[] => [...new Set(values.filter((v): v is number => v !== null))];

/**
 * The link registry: agencies, applications, approval, change requests. Every action runs in one
 * IMMEDIATE transaction together with its usage-log record.
 */
export class Registry {
  private readonly listeners: ChangeListener[] = [];
  private readonly revisionCache = new Map<string, RevisionContent>();

  constructor(
    private readonly cdb: ControlDb,
    readonly catalogs: ReadonlyMap<string, DatasetCatalog>,
    private readonly clock: Clock,
  ) {}

  /** Called after a commit that changes what a link may do (status, revision). */
  onLinkChange(fn: ChangeListener): void {
    this.listeners.push(fn);
  }
  /** Tell listeners (schedules, open SFTP sessions) after a commit that changed what a link may do. */
  changed(linkId: number): void {
    for (const fn of this.listeners) fn(linkId);
  }
  /**
   * Tell the listeners once `tx` commits (not at all if it rolls back). Every change of a link's
   * status, revision, end date or allow-list registers it in its own transaction: no caller has to
   * remember to.
   */
  changedAfterCommit(tx: Db, linkId: number): void {
    afterCommit(tx, () => this.changed(linkId));
  }

  // ---- agencies ----

  async addAgency(input: { code: string; name: string; nameEn?: string; nonGovernment?: boolean; sponsor?: string; emails?: string[] }, actor: string): Promise<agencies.AgencyRow> {
    const code = input.code.trim().toUpperCase();
    if (!AGENCY_CODE.test(code)) throw new UserError(`agency code '${input.code}' is not valid (2–32 of A–Z, 0–9, _ -)`, 'agency.code', { kind: 'invalid', field: 'code' });
    const name = requireText(input.name, "the agency's name", 'name');
    const emails = checkContactEmails(input.emails ?? []);
    if (!emails.ok) refusal(emails);
    const government = !input.nonGovernment;
    const now = this.clock.now();
    return this.cdb.write(async (tx) => {
      if (await agencies.byCode(tx, code)) throw new UserError(`agency ${code} exists already`, 'agency.exists');
      let sponsor: agencies.AgencyRow | undefined;
      if (input.sponsor) {
        sponsor = await agencies.byCode(tx, input.sponsor.trim().toUpperCase());
        if (!sponsor) throw new UserError(`sponsor agency ${input.sponsor} is not registered`, 'agency.sponsor.unknown');
      }
      const check = checkSponsor({ code, government }, sponsor ?? null);
      if (!check.ok) refusal(check);
      const row = await agencies.insert(tx, {
        code,
        nameZh: name,
        nameEn: input.nameEn?.trim() || null,
        government,
        sponsorId: sponsor?.id ?? null,
        createdAt: now.toISOString(),
        emails: emails.value,
      });
      await appendLog(tx, { type: 'agency.added', agency: code, actor, detail: { government, sponsor: sponsor?.code ?? null, emails: emails.value } }, now);
      return row;
    });
  }

  /** R14.2: replace an agency's contact addresses (an empty list clears them). */
  async setAgencyEmails(code: string, list: string[], actor: string): Promise<agencies.AgencyRow> {
    const emails = checkContactEmails(list);
    if (!emails.ok) refusal(emails);
    const now = this.clock.now();
    return this.cdb.write(async (tx) => {
      const a = await agencies.byCode(tx, code.trim().toUpperCase());
      if (!a) throw new UserError(`agency ${code} is not registered`, 'agency.unknown');
      await agencies.update(tx, a.id, { emails: emails.value });
      await appendLog(tx, { type: 'agency.contacts-set', agency: a.code, actor, detail: { before: a.emails, emails: emails.value } }, now);
      return (await agencies.byId(tx, a.id))!;
    });
  }

  /**
   * R14.2: where a notice about an agency's links goes: the agency's own contact addresses and, for a
   * non-government body, its sponsoring authority's, which answers for it.
   */
  async noticeContacts(tx: Db, agencyId: number): Promise<{ agency: string; emails: string[]; sponsor: { code: string; name: string; emails: string[] } | null }> {
    const a = await agencies.byId(tx, agencyId);
    if (!a) throw new Error(`agency ${agencyId} missing`);
    const sp = a.sponsorId === null ? undefined : await agencies.byId(tx, a.sponsorId);
    return { agency: a.code, emails: a.emails, sponsor: sp ? { code: sp.code, name: sp.nameZh, emails: sp.emails } : null };
  }

  async listAgencies(): Promise<(agencies.AgencyRow & { sponsor: string | null })[]> {
    const all = await agencies.all(this.cdb.db);
    const byId = new Map(all.map((a) => [a.id, a.code]));
    return all.map((a) => ({ ...a, sponsor: a.sponsorId ? byId.get(a.sponsorId) ?? null : null }));
  }

  // ---- applications ----

  private checkContent(content: RevisionContent): void {
    const problems = checkRevision(content, this.catalogs);
    if (content.schedule !== null) {
      try {
        CronExpressionParser.parse(content.schedule, { tz: 'Asia/Taipei' });
      } catch {
        problems.push(`schedule '${content.schedule}' is not a cron expression (e.g. "0 2 * * *")`);
      }
    }
    if (problems.length) throw new UserError(problems.join('; '), 'application.invalid');
  }

  /** R3.1–R3.3: record an application as a pending link with revision 1. Nothing is written if any check fails. */
  async apply(input: ApplyInput, actor: string): Promise<LinkView> {
    const now = this.clock.now();
    const pgp = await inspectAgencyKey(requireText(input.pgpKey, "the agency's OpenPGP public key", 'pgpKey'), now);
    const sshKeys: SshPublicKeyFacts[] = input.sshKeys.map((k) => inspectSshPublicKey(k));
    const rules = input.rules ? checkDocument(input.rules.filename, input.rules.content) : undefined;
    const clientCerts = (input.clientCerts ?? []).map((pem) => inspectClientCertificate(pem, now).fingerprint);
    const scope = scopeFromInput(input.scope);
    if (!scope.ok) refusal(scope);
    const content: RevisionContent = {
      dataset: input.dataset,
      fields: input.fields,
      legalBasis: input.legalBasis,
      purpose: input.purpose,
      department: input.department,
      officer: input.officer,
      supervisor: input.supervisor,
      period: { from: input.from, to: input.to },
      disposal: input.disposal,
      methods: input.methods,
      allowIps: input.allowIps,
      account: input.account ?? null,
      push: input.push ?? null,
      email: input.email ?? [],
      schedule: input.schedule ?? null,
      pgpFingerprint: pgp.fingerprint,
      rulesDocument: null,
      stopOn: null,
      clientCerts,
      scope: scope.value,
      maxIdsPerDay: input.maxIdsPerDay ?? DEFAULT_MAX_IDS_PER_DAY,
    };
    this.checkContent(content);
    const wide = allowListProblems(content.allowIps);
    if (wide.length) throw new UserError(wide.join('; '), 'allow-list.too-wide');
    if (content.methods.includes('sftp-pull') && sshKeys.length === 0) {
      throw new UserError('sftp-pull needs at least one SSH public key for the account', 'application.invalid', { field: 'sshKeys' });
    }
    if (sshKeys.length > 0 && !content.account) throw new UserError('SSH keys need an SFTP account to belong to', 'application.invalid', { field: 'account' });

    const id = await this.cdb.write(async (tx) => {
      const agency = await agencies.byCode(tx, input.agency.trim().toUpperCase());
      if (!agency) throw new UserError(`agency ${input.agency} is not registered`, 'agency.unknown');
      await assertCertsOfOneAgency(tx, content.clientCerts, agency);
      if (content.account && (await credentials.accountByName(tx, content.account))) {
        throw new UserError(`SFTP account ${content.account} is taken; choose another account name`, 'account.exists', { field: 'account' });
      }
      const at = now.toISOString();
      const row = await links.insert(tx, {
        agencyId: agency.id,
        status: 'pending',
        currentRevision: 1,
        appliedAt: at,
        approvedAt: null,
        approvedBy: null,
        letterNo: null,
        letterDate: null,
        statusChangedAt: at,
        statusReason: null,
        endReason: null,
        endsOn: null,
        hmacSecret: randomBytes(32).toString('hex'),
      });
      if (rules) content.rulesDocument = (await storeRulesDocument(tx, agency, row.id, rules, actor, now)).id;
      await links.insertRevision(tx, { linkId: row.id, number: 1, content, changeRequestId: null, createdAt: at });
      if (!(await credentials.pgpKeyFor(tx, agency.id, pgp.fingerprint))) {
        await credentials.insertPgpKey(tx, { agencyId: agency.id, ...pgp, addedAt: at });
      }
      if (content.account) {
        const account = await credentials.insertAccount(tx, { username: content.account, linkId: row.id, enabled: true, passwordHash: null, createdAt: at });
        for (const k of sshKeys) {
          await credentials.insertSshKey(tx, { accountId: account.id, algorithm: k.algorithm, fingerprint: k.fingerprint, publicKey: k.line, addedAt: at, revokedAt: null });
        }
      }
      await appendLog(
        tx,
        {
          type: 'link.applied',
          agency: agency.code,
          linkId: row.id,
          revision: 1,
          actor,
          detail: { dataset: content.dataset, fields: formatFieldList(content.fields), scope: content.scope, maxIdsPerDay: content.maxIdsPerDay, methods: content.methods, allowIps: content.allowIps, account: content.account, pgp: pgp.fingerprint },
        },
        now,
      );
      return row.id;
    });
    return this.show(id);
  }

  // ---- lifecycle ----

  /** A link inside the caller's transaction (the rules and vendor services build on it). */
  async load(tx: Db, id: number): Promise<LinkState> {
    const link = await links.byId(tx, id);
    if (!link) throw new UserError(`link ${id} does not exist`, 'link.unknown');
    const agency = await agencies.byId(tx, link.agencyId);
    if (!agency) throw new Error(`link ${id}: agency missing`);
    const content = await this.revisionContent(tx, id, link.currentRevision);
    return { link, agency, content, allowIps: await allowListInForce(tx, link, content.allowIps) };
  }

  /**
   * A revision's content, parsed once: revisions never change (triggers refuse it), so this is the one
   * thing safe to keep between requests — the link row itself (status, current revision) is read fresh.
   */
  private async revisionContent(tx: Db, id: number, number: number): Promise<RevisionContent> {
    const key = `${id}:${number}`;
    const cached = this.revisionCache.get(key);
    if (cached) return cached;
    const rev = await links.revision(tx, id, number);
    if (!rev) throw new Error(`link ${id}: revision ${number} missing`);
    const content = revisionContentSchema.parse(rev.content);
    if (this.revisionCache.size >= 10_000) this.revisionCache.clear();
    this.revisionCache.set(key, content);
    return content;
  }

  /** The revisions in force of several links: those not yet parsed are read in one statement. */
  private async currentContents(tx: Db, rows: readonly links.LinkRow[]): Promise<Map<number, RevisionContent>> {
    const out = new Map<number, RevisionContent>();
    const missing: { linkId: number; number: number }[] = [];
    for (const l of rows) {
      const cached = this.revisionCache.get(`${l.id}:${l.currentRevision}`);
      if (cached) out.set(l.id, cached);
      else missing.push({ linkId: l.id, number: l.currentRevision });
    }
    for (const rev of await links.revisionsAt(tx, missing)) {
      const content = revisionContentSchema.parse(rev.content);
      if (this.revisionCache.size >= 10_000) this.revisionCache.clear();
      this.revisionCache.set(`${rev.linkId}:${rev.number}`, content);
      out.set(rev.linkId, content);
    }
    for (const m of missing) if (!out.has(m.linkId)) throw new Error(`link ${m.linkId}: revision ${m.number} missing`);
    return out;
  }

  /** One revision of a link as recorded (a delivery is built from the revision it names, whatever came after). */
  async revisionOf(id: number, number: number): Promise<RevisionContent> {
    return this.revisionContent(this.cdb.db, id, number);
  }

  /** The link as every channel must see it now (read fresh: another process may have changed it). */
  async state(id: number): Promise<LinkState> {
    return this.load(this.cdb.db, id);
  }

  private async move(tx: Db, s: LinkState, event: LinkEvent, now: Date, extra: Partial<links.LinkRow> = {}): Promise<LinkStatus> {
    const r = transition(s.link.status, event);
    if (!r.ok) refusal(r);
    await links.update(tx, s.link.id, { status: r.value, statusChangedAt: now.toISOString(), ...extra });
    this.changedAfterCommit(tx, s.link.id);
    return r.value;
  }

  /**
   * NIA's formal consent (form item 9, R3.3). R-F9: it takes both halves of item 9, NIA's reply
   * letter (number, and a date not in the future) and the agency's stamped form, stored as a
   * document: given here, or stored before with `addStampedForm`.
   */
  async approve(id: number, opts: { by: string; letterNo?: string; letterDate?: string; stampedForm?: { filename: string; content: Buffer } }): Promise<LinkView> {
    const stamped = opts.stampedForm ? checkDocument(opts.stampedForm.filename, opts.stampedForm.content) : undefined;
    const now = this.clock.now();
    const letter = checkReplyLetter(opts, taipeiDate(now), `link ${id}`);
    await this.cdb.write(async (tx) => {
      const s = await this.load(tx, id);
      await this.move(tx, s, { kind: 'approve' }, now, {
        approvedAt: now.toISOString(),
        approvedBy: opts.by,
        letterNo: letter.ok ? letter.value.no : null,
        letterDate: letter.ok ? letter.value.date : null,
        statusReason: null,
      });
      const rules = await rulesGate(tx, s.content.rulesDocument);
      if (!rules.ok) throw new UserError(`link ${id} cannot be approved: ${rules.refusal.message}`, rules.refusal.code);
      // R3.4: a whole dataset is an explicit, justified choice; an application that predates scopes never made it.
      if (isLegacyScope(s.content.scope)) {
        throw new UserError(`link ${id} was applied for before scopes existed and states no records: reject it and have the agency apply again stating the records it needs`, 'scope.review-needed');
      }
      if (!letter.ok) refusal(letter);
      const form = stamped ? await storeStampedForm(tx, s.agency, id, stamped, opts.by, now, false) : await stampedFormOf(tx, id);
      if (!form) {
        throw new UserError(`link ${id} cannot be approved without the agency's stamped form: give its file (a PDF, ODT, DOCX or text of the stamped 申請暨異動書; form item 9, R-F9)`, 'approve.stamped-form-missing', { kind: 'invalid', field: 'stampedForm' });
      }
      await appendLog(
        tx,
        {
          type: 'link.approved',
          agency: s.agency.code,
          linkId: id,
          revision: s.link.currentRevision,
          actor: opts.by,
          detail: { letterNo: letter.value.no, letterDate: letter.value.date, stampedForm: { document: form.id, filename: form.filename, sha256: form.sha256 } },
        },
        now,
      );
    });
    return this.show(id);
  }

  /** R-F9: the agency's stamped form of a pending link, stored ahead of approval (the console approves with the one on file). */
  async addStampedForm(id: number, file: { filename: string; content: Buffer }, actor: string): Promise<documents.DocumentMeta> {
    const doc = checkDocument(file.filename, file.content);
    const now = this.clock.now();
    return this.cdb.write(async (tx) => {
      const s = await this.load(tx, id);
      if (s.link.status !== 'pending') throw new UserError(`link ${id} is ${s.link.status}: a stamped form is filed with its application, before approval`, 'stamped-form.link-status');
      return storeStampedForm(tx, s.agency, id, doc, actor, now, true);
    });
  }

  /** The stamped form on file for a link (the newest), or undefined. */
  async stampedForm(id: number): Promise<documents.DocumentMeta | undefined> {
    return stampedFormOf(this.cdb.db, id);
  }

  async reject(id: number, reason: string, by: string): Promise<LinkView> {
    const why = requireText(reason, 'a reason', 'reason');
    const now = this.clock.now();
    await this.cdb.write(async (tx) => {
      const s = await this.load(tx, id);
      await this.move(tx, s, { kind: 'reject' }, now, { statusReason: why });
      await appendLog(tx, { type: 'link.rejected', agency: s.agency.code, linkId: id, revision: s.link.currentRevision, actor: by, detail: { reason: why } }, now);
    });
    return this.show(id);
  }

  /** End a link now, for a reason of the regulation; scheduled deliveries stop with it. */
  /** R10.1: stop all data flow of an active link, inside the caller's transaction. */
  async suspend(tx: Db, id: number, reason: string, actor: string, now: Date, detail: Record<string, unknown> = {}): Promise<void> {
    const s = await this.load(tx, id);
    await this.move(tx, s, { kind: 'suspend' }, now, { statusReason: reason });
    await appendLog(tx, { type: 'link.suspended', agency: s.agency.code, linkId: id, revision: s.link.currentRevision, actor, detail: { reason, ...detail } }, now);
  }

  /** R10.2: NIA agreed to resume a suspended link, inside the caller's transaction. */
  async resume(tx: Db, id: number, actor: string, now: Date, detail: Record<string, unknown> = {}): Promise<void> {
    const s = await this.load(tx, id);
    await this.move(tx, s, { kind: 'resume' }, now, { statusReason: null });
    await appendLog(tx, { type: 'link.resumed', agency: s.agency.code, linkId: id, revision: s.link.currentRevision, actor, detail }, now);
  }

  /** R11.1: the date an agency's termination notice takes effect. */
  async scheduleEnd(tx: Db, id: number, endsOn: string, actor: string, now: Date, detail: Record<string, unknown>): Promise<void> {
    const s = await this.load(tx, id);
    if (s.link.status !== 'active' && s.link.status !== 'suspended') throw new UserError(`a ${s.link.status} link cannot be terminated`, 'link.terminate.refused');
    await links.update(tx, id, { endsOn });
    this.changedAfterCommit(tx, id);
    await appendLog(tx, { type: 'link.termination-noticed', agency: s.agency.code, linkId: id, revision: s.link.currentRevision, actor, detail: { endsOn, ...detail } }, now);
  }

  /** Read a link inside the caller's transaction. */
  async stateIn(tx: Db, id: number): Promise<LinkState> {
    return this.load(tx, id);
  }

  async terminate(tx: Db, id: number, reason: EndReason, actor: string, now: Date, detail: Record<string, unknown> = {}): Promise<void> {
    const s = await this.load(tx, id);
    await this.move(tx, s, { kind: 'terminate', reason }, now, { endReason: reason, statusReason: reason });
    await appendLog(tx, { type: 'link.terminated', agency: s.agency.code, linkId: id, revision: s.link.currentRevision, actor, detail: { reason, ...detail } }, now);
  }

  // ---- change requests (R5.1) ----

  async fileChange(
    id: number,
    kind: ChangeKind,
    input: { value?: string; file?: { filename: string; content: Buffer }; push?: PushEndpoint; email?: string[]; account?: string; clientCerts?: string[]; justification?: string; letterNo?: string; letterDate?: string; rules?: { filename: string; content: Buffer } },
    actor: string,
  ): Promise<links.ChangeRow> {
    const now = this.clock.now();
    const value = input.value?.trim();
    const need = (what: string) => {
      if (!value) throw new UserError(`a ${kind} change needs its new value: ${what}`, 'change.value', { kind: 'invalid', field: 'value' });
      return value;
    };
    let change: Change;
    let rulesDoc: ReturnType<typeof checkDocument> | undefined;
    let pgp: Awaited<ReturnType<typeof inspectAgencyKey>> | undefined;
    switch (kind) {
      case 'officer':
        change = { kind, officer: need('NAME') };
        break;
      case 'supervisor':
        change = { kind, supervisor: need('NAME') };
        break;
      case 'fields':
        change = { kind, fields: parseFieldList(need('f1,f2,…')) };
        break;
      case 'scope': {
        if (value !== undefined && input.file) throw new UserError('a scope change takes the conditions as text or as a scope file, not both', 'scope.ambiguous', { kind: 'invalid', field: 'file' });
        let json: unknown;
        if (input.file) {
          try {
            json = JSON.parse(input.file.content.toString('utf8'));
          } catch {
            throw new UserError(`${input.file.filename} is not JSON (see schemas/scope.schema.json)`, 'scope.invalid');
          }
        } else need("'FIELD in V1,V2; FIELD from YYYY-MM-DD' (or all, with a justification)");
        const scope = scopeFromInput({ text: input.file ? undefined : value, json, justification: input.justification });
        if (!scope.ok) refusal(scope);
        change = { kind, scope: scope.value };
        break;
      }
      case 'max-ids-per-day': {
        const n = need('N');
        if (!/^\d{1,8}$/.test(n) || Number(n) < 1) throw new UserError(`'${n}': the daily cap is a whole number of identifiers, at least 1`, 'change.value', { kind: 'invalid', field: 'value' });
        change = { kind, maxIdsPerDay: Number(n) };
        break;
      }
      case 'ips': {
        change = { kind, allowIps: need('CIDR[,CIDR…]').split(',').map((s) => s.trim()).filter(Boolean) };
        const wide = allowListProblems(change.allowIps);
        if (wide.length) throw new UserError(wide.join('; '), 'allow-list.too-wide');
        break;
      }
      case 'method':
        change = {
          kind,
          methods: need('sftp-pull[,sftp-push,email,online-query]').split(',').map((s) => s.trim()).filter(Boolean) as Method[],
          ...(input.push !== undefined ? { push: input.push } : {}),
          ...(input.email !== undefined ? { email: input.email } : {}),
          ...(input.account !== undefined ? { account: input.account } : {}),
          ...(input.clientCerts !== undefined ? { clientCerts: input.clientCerts.map((pem) => inspectClientCertificate(pem, now).fingerprint) } : {}),
        };
        break;
      case 'client-cert': {
        const pems = input.clientCerts ?? (input.file ? [input.file.content.toString('utf8')] : []);
        if (pems.length === 0) throw new UserError('a client-cert change needs the certificates that replace the registered ones', 'change.client-cert', { kind: 'invalid', field: 'clientCerts' });
        change = { kind, clientCerts: pems.map((pem) => inspectClientCertificate(pem, now).fingerprint) };
        break;
      }
      case 'extend':
        change = { kind, to: need('YYYY-MM-DD') };
        break;
      case 'stop': {
        // R12.1: the agency applies in writing; the stop date may be today (the link ends at once) or later, never past.
        const today = taipeiDate(now);
        const stopOn = checkScheduledDate({ what: 'the stop date', field: 'value' }, value ?? today, today);
        if (!stopOn.ok) refusal(stopOn);
        const letterNo = input.letterNo?.trim();
        if (!letterNo) throw new UserError("a stop request needs the letter number of the agency's written request to stop", 'change.stop.letter', { kind: 'invalid', field: 'letterNo' });
        if (input.letterDate !== undefined) {
          const dated = checkClaimedDate({ what: "the agency's letter's date", field: 'letterDate', date: input.letterDate, letterNo }, today);
          if (!dated.ok) refusal(dated);
        }
        change = { kind, stopOn: stopOn.value, letterNo, letterDate: input.letterDate ?? null };
        break;
      }
      case 'rules':
        if (!input.file) throw new UserError('a rules change needs the file of the amended management rules', 'change.file', { kind: 'invalid', field: 'file' });
        rulesDoc = checkDocument(input.file.filename, input.file.content);
        change = { kind, rulesDocument: 0 };
        break;
      case 'pgp-key':
        if (!input.file) throw new UserError("a pgp-key change needs the file of the agency's new public key", 'change.file', { kind: 'invalid', field: 'file' });
        pgp = await inspectAgencyKey(input.file.content.toString('utf8'), now);
        change = { kind, pgpFingerprint: pgp.fingerprint };
        break;
      default:
        throw new UserError(`unknown change kind '${kind as string}'`, 'change.kind', { kind: 'invalid', field: 'kind' });
    }
    // R5.2: a change form may come with a new version of the agency's rules.
    if (input.rules && kind === 'rules') throw new UserError("a rules change carries the amended rules as the change's file, not as separate rules", 'change.file', { kind: 'invalid', field: 'rules' });
    const filedRules = input.rules ? checkDocument(input.rules.filename, input.rules.content) : undefined;
    return this.cdb.write(async (tx) => {
      const s = await this.load(tx, id);
      const can = canFileChange(s.link.status);
      if (!can.ok) refusal(can);
      if (rulesDoc && change.kind === 'rules') change = { kind: 'rules', rulesDocument: (await storeRulesDocument(tx, s.agency, id, rulesDoc, actor, now)).id };
      if (pgp && !(await credentials.pgpKeyFor(tx, s.agency.id, pgp.fingerprint))) {
        await credentials.insertPgpKey(tx, { agencyId: s.agency.id, ...pgp, addedAt: now.toISOString() });
      }
      const rulesWith = filedRules ? (await storeRulesDocument(tx, s.agency, id, filedRules, actor, now)).id : undefined;
      return this.fileChangeIn(tx, id, change, actor, now, rulesWith);
    });
  }

  /** File a change request inside the caller's transaction (a vendor's removal files one with its own record). */
  async fileChangeIn(tx: Db, id: number, change: Change, actor: string, now: Date, filedRules?: number): Promise<links.ChangeRow> {
    const s = await this.load(tx, id);
    const can = canFileChange(s.link.status);
    if (!can.ok) refusal(can);
    // Refuse at filing time what could never be approved.
    await this.nextContent(tx, s, change);
    // R5.2: the request names the rules it came with: those filed with it, else the agency's newest on record.
    const rulesDocument = change.kind === 'rules' ? change.rulesDocument : (filedRules ?? (await documents.listMeta(tx, { agencyId: s.agency.id, kind: RULES_KIND }))[0]?.id ?? null);
    const cr = await links.insertChange(tx, { linkId: id, kind: change.kind, change, status: 'pending', filedAt: now.toISOString(), filedBy: actor, decidedAt: null, decidedBy: null, reason: null, revision: null, rulesDocument, letterNo: null, letterDate: null });
    await appendLog(tx, { type: 'change.filed', agency: s.agency.code, linkId: id, revision: s.link.currentRevision, actor, object: `change:${cr.id}`, detail: { kind: change.kind, change } }, now);
    return cr;
  }

  /** The revision a change would make, checked: catalog and endpoints, and no vendor machine left outside the allow-list (R8.1). */
  private async nextContent(tx: Db, s: LinkState, change: Change): Promise<RevisionContent> {
    const next = applyChange(s.content, change);
    if (!next.ok) refusal(next);
    this.checkContent(next.value);
    if (change.kind === 'client-cert' || (change.kind === 'method' && change.clientCerts !== undefined)) await assertCertsOfOneAgency(tx, next.value.clientCerts, s.agency);
    if (change.kind === 'ips') {
      // R8.2. Only the new list is judged, so a link approved with a wide entry before the rule can still
      // file other changes; and a list inside the current one opens nothing new, so a vendor's removal
      // from such a link still files the change that cuts its machines off.
      const narrowing = change.allowIps.every((e) => cidrWithin(e, s.content.allowIps));
      const wide = narrowing ? [] : allowListProblems(change.allowIps);
      if (wide.length) throw new UserError(wide.join('; '), 'allow-list.too-wide');
      const stranded = machinesOutside(await vendors.forLink(tx, s.link.id), next.value.allowIps);
      if (stranded.length) {
        throw new UserError(`the new allow-list leaves vendor machines outside: ${stranded.join(', ')}; remove the vendor first`, 'change.ips.vendor');
      }
    }
    return next.value;
  }

  private async pendingChange(tx: Db, changeId: number): Promise<links.ChangeRow> {
    const cr = await links.changeById(tx, changeId);
    if (!cr) throw new UserError(`change request ${changeId} does not exist`, 'change.unknown');
    if (cr.status !== 'pending') throw new UserError(`change request ${changeId} is ${cr.status} already`, 'change.decided', 'conflict');
    return cr;
  }

  /**
   * Approving a change makes the next revision; history is never overwritten (R5.1). An approved stop
   * records the link's end date and ends nothing: a link ends only through the compliance service,
   * which opens the disposal task and issues the notice; callers ask it to end links whose day has come.
   */
  async approveChange(changeId: number, by: string, reply?: { letterNo?: string; letterDate?: string }): Promise<{ change: links.ChangeRow; link: LinkView }> {
    const now = this.clock.now();
    // R-F9: the commands NIA decides with (CLI, console) always pass the reply letter; given, it is checked and kept.
    const letter = reply ? checkReplyLetter(reply, taipeiDate(now), `change request ${changeId}`) : undefined;
    const linkId = await this.cdb.write(async (tx) => {
      const cr = await this.pendingChange(tx, changeId);
      const s = await this.load(tx, cr.linkId);
      const can = canFileChange(s.link.status);
      if (!can.ok) refusal(can);
      const change = cr.change as Change;
      const next = await this.nextContent(tx, s, change);
      if (change.kind === 'rules') {
        const rules = await rulesGate(tx, change.rulesDocument);
        if (!rules.ok) throw new UserError(`change request ${cr.id} cannot be approved: ${rules.refusal.message}`, rules.refusal.code);
      }
      const number = s.link.currentRevision + 1;
      await links.insertRevision(tx, { linkId: s.link.id, number, content: next, changeRequestId: cr.id, createdAt: now.toISOString() });
      await links.update(tx, s.link.id, { currentRevision: number, ...(change.kind === 'stop' ? { endsOn: change.stopOn } : {}) });
      this.changedAfterCommit(tx, s.link.id);
      if (letter && !letter.ok) refusal(letter);
      const reply = letter?.ok ? { letterNo: letter.value.no, letterDate: letter.value.date } : {};
      await links.updateChange(tx, cr.id, { status: 'approved', decidedAt: now.toISOString(), decidedBy: by, revision: number, ...reply });
      await appendLog(tx, { type: 'change.approved', agency: s.agency.code, linkId: s.link.id, revision: number, actor: by, object: `change:${cr.id}`, detail: { kind: cr.kind, ...reply } }, now);
      return s.link.id;
    });
    return { change: (await links.changeById(this.cdb.db, changeId))!, link: await this.show(linkId) };
  }

  async rejectChange(changeId: number, reason: string, by: string): Promise<links.ChangeRow> {
    const why = requireText(reason, 'a reason', 'reason');
    const now = this.clock.now();
    return this.cdb.write(async (tx) => {
      const cr = await this.pendingChange(tx, changeId);
      const s = await this.load(tx, cr.linkId);
      await links.updateChange(tx, cr.id, { status: 'rejected', decidedAt: now.toISOString(), decidedBy: by, reason: why });
      await appendLog(tx, { type: 'change.rejected', agency: s.agency.code, linkId: s.link.id, revision: s.link.currentRevision, actor: by, object: `change:${cr.id}`, detail: { kind: cr.kind, reason: why } }, now);
      return (await links.changeById(tx, cr.id))!;
    });
  }

  // ---- views ----

  /**
   * Links as shown: what each view adds to the link's state (its sponsor, current vendors, rules
   * version and review, stamped form) is read for all of them at once, a fixed number of statements
   * however many links there are. `known`: agencies already read (their sponsors among them, when any).
   */
  private async views(tx: Db, sources: readonly ViewSource[], known: ReadonlyMap<number, agencies.AgencyRow> = new Map()): Promise<LinkView[]> {
    if (sources.length === 0) return [];
    const linkIds = sources.map((s) => s.link.id);
    const sponsorIds = distinct(sources.map((s) => s.agency.sponsorId)).filter((id) => !known.has(id));
    const agencyById = new Map([...known, ...byId(await agencies.withSponsors(tx, sponsorIds))]);
    const rulesDocs = byId(await documents.metas(tx, distinct(sources.map((s) => s.content.rulesDocument))));
    const reviews = new Map((await rulesReviews.latestOf(tx, [...rulesDocs.keys()])).map((r) => [r.documentId, r]));
    const vendorsOf = new Map<number, vendors.VendorRow[]>();
    for (const v of await vendors.forLinks(tx, linkIds)) vendorsOf.set(v.linkId, [...(vendorsOf.get(v.linkId) ?? []), v]);
    const stamped = new Map((await documents.newestOfLinks(tx, linkIds, STAMPED_FORM_KIND)).map((d) => [d.linkId!, d]));
    return sources.map(({ link, agency, content: c }) => {
      const doc = c.rulesDocument === null ? undefined : rulesDocs.get(c.rulesDocument);
      const review = doc ? reviews.get(doc.id) : undefined;
      const sponsor = agency.sponsorId === null ? undefined : agencyById.get(agency.sponsorId);
      const form = stamped.get(link.id);
      return {
        id: link.id,
        agency: agency.code,
        agencyName: agency.nameZh,
        status: link.status,
        revision: link.currentRevision,
        dataset: c.dataset,
        fields: c.fields.map(formatField),
        channels: c.methods,
        allowIps: c.allowIps,
        account: c.account,
        from: c.period.from,
        to: c.period.to,
        pgpFingerprint: c.pgpFingerprint,
        legalBasis: c.legalBasis,
        purpose: c.purpose,
        department: c.department,
        officer: c.officer,
        supervisor: c.supervisor,
        disposal: c.disposal,
        schedule: c.schedule,
        push: c.push,
        email: c.email,
        rulesDocument: c.rulesDocument,
        rules: doc ? { document: doc.id, version: doc.version, reviewed: !!review, missing: missingTopics(review?.covers ?? []).map((t) => t.n) } : null,
        vendors: (vendorsOf.get(link.id) ?? []).map((v) => ({ id: v.id, name: v.name, contact: v.contact, machines: v.machines, parentId: v.parentId })),
        appliedAt: link.appliedAt,
        approvedAt: link.approvedAt,
        approvedBy: link.approvedBy,
        letterNo: link.letterNo,
        letterDate: link.letterDate,
        stampedForm: form ? { document: form.id, filename: form.filename, sha256: form.sha256 } : null,
        sponsor: sponsor ? { code: sponsor.code, name: sponsor.nameZh } : null,
        statusReason: link.statusReason,
        endReason: link.endReason,
        endsOn: link.endsOn,
        stopOn: c.stopOn,
        clientCerts: c.clientCerts,
        scope: c.scope,
        scopeText: describeScope(c.scope, this.catalogs.get(c.dataset)),
        scopeReview: isLegacyScope(c.scope),
        maxIdsPerDay: c.maxIdsPerDay,
      };
    });
  }

  private async view(s: ViewSource): Promise<LinkView> {
    return (await this.views(this.cdb.db, [s]))[0];
  }

  async show(id: number): Promise<LinkView> {
    return this.view(await this.state(id));
  }

  /** Every link (or those with this status), oldest first, in a fixed number of statements. */
  async list(status?: LinkStatus): Promise<LinkView[]> {
    const db = this.cdb.db;
    const rows = await links.list(db, status);
    if (rows.length === 0) return [];
    const agencyById = byId(await agencies.withSponsors(db, distinct(rows.map((l) => l.agencyId))));
    const contents = await this.currentContents(db, rows);
    const sources = rows.map((link) => {
      const agency = agencyById.get(link.agencyId);
      if (!agency) throw new Error(`link ${link.id}: agency missing`);
      return { link, agency, content: contents.get(link.id)! };
    });
    return this.views(db, sources, agencyById);
  }

  /** How many change requests wait for NIA's decision, by link (links without any are absent). */
  async pendingChanges(linkIds: readonly number[]): Promise<Map<number, number>> {
    return links.pendingChangeCounts(this.cdb.db, linkIds);
  }

  async history(id: number): Promise<{ revisions: links.RevisionRow[]; changes: links.ChangeRow[] }> {
    await this.state(id);
    return { revisions: await links.revisions(this.cdb.db, id), changes: await links.changes(this.cdb.db, id) };
  }
}
