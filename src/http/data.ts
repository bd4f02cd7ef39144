import type { Queue } from 'bullmq';
import type { ControlDb } from '../db';
import { agencies as agencyRepo, consoleQueries, logCheckpoints, type usageLog, usageLog as usageLogRepo } from '../db/repositories';
import { addDays, type Clock, type DatasetCatalog, describeScope, findingStatus, formatField, type FieldSpec, type LinkStatus, type PushEndpoint, type Scope, startOfTaipeiDay, taipeiDate } from '../domain';
import type { DeliveryView } from '../extract';
import { batchList, type BatchListItem } from '../batch/list';
import type { LinkView } from '../registry';
import type { Services } from '../services';
import { downloadsOf } from '../sftp';
import { listAnomalies, verifyLog } from '../usagelog';
import { UserError } from '../errors';

/** The counts of one BullMQ queue that the console and /metrics show. */
export const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed'] as const;
export type QueueDepth = { queue: string; paused: boolean } & Record<(typeof JOB_STATES)[number], number>;

export interface RevisionDiff {
  number: number;
  createdAt: string;
  changeRequestId: number | null;
  /**
   * What differs from the revision before (every item for the first one), in Chinese; `en` where an
   * item reads differently in English (the scope, in the catalog's words).
   */
  changes: { item: string; before: string | null; after: string | null; en?: { before: string | null; after: string | null } }[];
}

/** Links the console marks (R3.4): recorded before scopes existed, so they may still receive the whole dataset. */
export const needsScopeReview = (l: Pick<LinkView, 'scopeReview' | 'status'>): boolean => l.scopeReview && (l.status === 'pending' || l.status === 'active' || l.status === 'suspended');

export interface CalendarEntry {
  date: string;
  kind: 'finding-deadline' | 'period-end' | 'link-ends' | 'change-pending';
  linkId: number;
  agency: string | null;
  text: string;
  overdue: boolean;
}

export interface LogStatus {
  headSeq: number | null;
  checkpoint: { seq: number; at: string } | null;
  verified: { at: string; actor: string | null; ok: boolean } | null;
}

export interface LogQuery {
  link?: number;
  agency?: string;
  type?: string;
  actor?: string;
  /** Taipei calendar days, inclusive. */
  from?: string;
  to?: string;
  before?: number;
  limit?: number;
}

/** An sftp-push endpoint as one line: user@host:port/dir (pinned host key). */
export const pushTarget = (p: PushEndpoint): string => `${p.user}@${p.host}:${p.port}${p.dir} (${p.fingerprint})`;

/**
 * How a revision item reads on a page: field lists as the CLI writes them, the scope in the catalog's
 * words (codes mean nothing to the people approving), other lists comma-separated.
 */
function showItem(key: string, v: unknown, catalog: DatasetCatalog | undefined, lang: 'zh' | 'en' = 'zh'): string | null {
  if (v === null || v === undefined) return null;
  if (key === 'fields' && Array.isArray(v)) return (v as FieldSpec[]).map(formatField).join(', ');
  if (key === 'scope' && typeof v === 'object') return describeScope(v as Scope, catalog, lang);
  if (key === 'period') return `${(v as { from: string }).from} – ${(v as { to: string }).to}`;
  if (key === 'push') return pushTarget(v as PushEndpoint);
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** The differences between consecutive revisions, item by item. */
export function revisionDiffs(
  revisions: { number: number; content: unknown; createdAt: string; changeRequestId: number | null }[],
  catalogs: ReadonlyMap<string, DatasetCatalog> = new Map(),
): RevisionDiff[] {
  const sorted = [...revisions].sort((a, b) => a.number - b.number);
  return sorted.map((r, i) => {
    const before = (i > 0 ? sorted[i - 1].content : {}) as Record<string, unknown>;
    const after = r.content as Record<string, unknown>;
    const catalogOf = (c: Record<string, unknown>) => (typeof c.dataset === 'string' ? catalogs.get(c.dataset) : undefined);
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
    const changes = keys
      .map((item) => {
        const c: RevisionDiff['changes'][number] = { item, before: showItem(item, before[item], catalogOf(before)), after: showItem(item, after[item], catalogOf(after)) };
        if (item === 'scope') c.en = { before: showItem(item, before[item], catalogOf(before), 'en'), after: showItem(item, after[item], catalogOf(after), 'en') };
        return c;
      })
      .filter((c) => c.before !== c.after);
    return { number: r.number, createdAt: r.createdAt, changeRequestId: r.changeRequestId, changes };
  });
}

/**
 * What the console shows, gathered from the services: the same answers for the pages and for /api,
 * so the two cannot drift apart.
 */
export class ConsoleData {
  constructor(
    private readonly d: { cdb: ControlDb; services: Services; queues: readonly Queue[]; clock: Clock },
  ) {}

  get today(): string {
    return taipeiDate(this.d.clock.now());
  }

  async queueDepths(): Promise<QueueDepth[]> {
    return Promise.all(
      this.d.queues.map(async (q) => {
        const [c, paused] = await Promise.all([q.getJobCounts(...JOB_STATES), q.isPaused()]);
        return { queue: q.name, paused, ...Object.fromEntries(JOB_STATES.map((s) => [s, c[s] ?? 0])) } as QueueDepth;
      }),
    );
  }

  async agencies() {
    const links = await this.d.services.registry.list();
    return (await this.d.services.registry.listAgencies()).map((a) => ({
      code: a.code,
      name: a.nameZh,
      nameEn: a.nameEn,
      government: a.government,
      sponsor: a.sponsor,
      links: links.filter((l) => l.agency === a.code).length,
      active: links.filter((l) => l.agency === a.code && l.status === 'active').length,
    }));
  }

  async links(f: { status?: LinkStatus; agency?: string } = {}): Promise<(LinkView & { pendingChanges: number })[]> {
    const { registry } = this.d.services;
    const shown = (await registry.list(f.status)).filter((l) => f.agency === undefined || l.agency === f.agency);
    const pending = await registry.pendingChanges(shown.map((l) => l.id));
    return shown.map((l) => ({ ...l, pendingChanges: pending.get(l.id) ?? 0 }));
  }

  async link(id: number) {
    const { registry, extracts, compliance } = this.d.services;
    const link = await registry.show(id);
    const history = await registry.history(id);
    return {
      link,
      /** The scope in words in both console languages (the link view carries only the form's Chinese). */
      scopeWords: { zh: link.scopeText, en: describeScope(link.scope, registry.catalogs.get(link.dataset), 'en') },
      revisions: revisionDiffs(history.revisions, registry.catalogs).reverse(),
      changes: [...history.changes].reverse(),
      deliveries: (await extracts.list(id)).slice(0, 20),
      findings: await compliance.listFindings(id),
      notices: await compliance.listNotices(id),
      anomalies: await listAnomalies(this.d.cdb, { linkId: id, limit: 20 }),
    };
  }

  /** Uploads to /inbox and their outcome, newest first (counts and names only, never identifiers). */
  async batches(linkId?: number, limit = 200): Promise<BatchListItem[]> {
    return (await batchList(this.d.cdb, linkId)).slice(0, limit);
  }

  async deliveries(linkId?: number, limit = 200): Promise<DeliveryView[]> {
    return (await this.d.services.extracts.list(linkId)).slice(0, limit);
  }

  async delivery(id: number) {
    const { extracts, pushes } = this.d.services;
    const d = await extracts.get(id);
    if (!d) throw new UserError(`delivery ${id} does not exist`, 'delivery.unknown');
    return { delivery: d, downloads: await downloadsOf(this.d.cdb.db, d), retryable: (await pushes.retryJobs(id)).map((j) => j.channel) };
  }

  /** Usage-log records matching the filters, newest first, one page at a time. */
  async log(q: LogQuery): Promise<{ rows: usageLog.UsageLogRow[]; more: boolean; before: number | null }> {
    const limit = Math.min(Math.max(q.limit ?? 50, 1), 500);
    const r = await consoleQueries.searchLog(this.d.cdb.db, {
      linkId: q.link,
      agency: q.agency,
      type: q.type,
      actor: q.actor,
      fromAt: q.from ? startOfTaipeiDay(q.from).toISOString() : undefined,
      toAt: q.to ? startOfTaipeiDay(addDays(q.to, 1)).toISOString() : undefined,
      beforeSeq: q.before,
      limit,
    });
    return { ...r, before: r.more ? r.rows[r.rows.length - 1].seq : null };
  }

  async logTypes(): Promise<string[]> {
    return consoleQueries.logTypes(this.d.cdb.db);
  }

  async verifyLog() {
    return verifyLog(this.d.cdb);
  }

  /** The log's state without walking it: its head, the newest signed checkpoint, the last verification from the console. */
  async logStatus(): Promise<LogStatus> {
    const db = this.d.cdb.db;
    const head = (await consoleQueries.searchLog(db, { limit: 1 })).rows[0];
    const cp = await logCheckpoints.newest(db);
    const v = (await consoleQueries.searchLog(db, { type: 'usage-log.verified', limit: 1 })).rows[0];
    return {
      headSeq: head?.seq ?? null,
      checkpoint: cp ? { seq: cp.seq, at: cp.at } : null,
      verified: v ? { at: v.at, actor: v.actor, ok: (JSON.parse(v.detail) as { ok?: boolean }).ok === true } : null,
    };
  }

  async findings(linkId?: number) {
    return this.d.services.compliance.listFindings(linkId);
  }

  async audits() {
    const codes = new Map((await agencyRepo.all(this.d.cdb.db)).map((a) => [a.id, a.code]));
    return (await this.d.services.compliance.listAudits()).map((a) => ({ ...a, agency: codes.get(a.agencyId) ?? null }));
  }

  async notices(linkId?: number) {
    const codes = new Map((await agencyRepo.all(this.d.cdb.db)).map((a) => [a.id, a.code]));
    return (await this.d.services.compliance.listNotices(linkId)).map((n) => ({ ...n, agency: codes.get(n.agencyId) ?? null }));
  }

  async anomalies(f: { status?: 'open' | 'dismissed' | 'finding'; rule?: string; link?: number } = {}) {
    return listAnomalies(this.d.cdb, { status: f.status, rule: f.rule, linkId: f.link, limit: 500 });
  }

  /** Dates that matter in the next `days` days, and everything already overdue. */
  async calendar(days = 60, links?: readonly LinkView[]): Promise<CalendarEntry[]> {
    links ??= await this.d.services.registry.list();
    const today = this.today;
    const horizon = addDays(today, days);
    const agencyOf = new Map(links.map((l) => [l.id, l.agency]));
    const out: CalendarEntry[] = [];
    for (const f of await this.findings()) {
      if (f.remediatedOn !== null || f.deadline > horizon) continue;
      out.push({ date: f.deadline, kind: 'finding-deadline', linkId: f.linkId, agency: agencyOf.get(f.linkId) ?? null, text: f.text, overdue: findingStatus(f, today) === 'overdue' });
    }
    for (const l of links) {
      if (l.status !== 'active' && l.status !== 'suspended') continue;
      if (l.to <= horizon) out.push({ date: l.to, kind: 'period-end', linkId: l.id, agency: l.agency, text: l.purpose, overdue: l.to < today });
      if (l.endsOn && l.endsOn <= horizon) out.push({ date: l.endsOn, kind: 'link-ends', linkId: l.id, agency: l.agency, text: l.endReason ?? l.statusReason ?? '', overdue: l.endsOn < today });
    }
    return out.sort((a, b) => a.date.localeCompare(b.date) || a.linkId - b.linkId);
  }

  /** The overview: today's deliveries and failures, queues, open anomalies, overdue findings, deadlines. */
  async overview() {
    const now = this.d.clock.now();
    const today = this.today;
    const since = startOfTaipeiDay(today).toISOString();
    const totals = await consoleQueries.deliveryTotals(this.d.cdb.db, since);
    const sum = (k: 'n' | 'rows' | 'bytes', statuses?: string[]) => totals.filter((t) => !statuses || statuses.includes(t.status)).reduce((a, t) => a + t[k], 0);
    const todays = (await this.d.services.extracts.list()).filter((d) => d.createdAt >= since);
    const failedPushes = todays.flatMap((d) =>
      Object.entries(d.channels)
        .filter(([, o]) => ['failed', 'refused'].includes(String((o as { status?: string }).status)))
        .map(([channel, o]) => ({ delivery: d.id, link: d.link, channel, status: String((o as { status?: string }).status), error: String((o as { error?: string }).error ?? '') })),
    );
    const findings = await this.findings();
    const links = await this.d.services.registry.list();
    return {
      at: now.toISOString(),
      today,
      deliveries: { total: sum('n'), built: sum('n', ['built', 'purged']), failed: sum('n', ['failed']), rows: sum('rows', ['built', 'purged']), bytes: sum('bytes', ['built', 'purged']) },
      failures: { deliveries: todays.filter((d) => d.status === 'failed').map((d) => ({ delivery: d.id, link: d.link, error: d.error })), pushes: failedPushes },
      queues: await this.queueDepths(),
      anomalies: await listAnomalies(this.d.cdb, { status: 'open', limit: 10 }),
      openAnomalies: await consoleQueries.openAnomalies(this.d.cdb.db),
      overdueFindings: findings.filter((f) => f.status === 'overdue'),
      deadlines: await this.calendar(30, links),
      pendingLinks: links.filter((l) => l.status === 'pending').length,
      scopeReviews: links.filter(needsScopeReview).map((l) => ({ id: l.id, agency: l.agency, agencyName: l.agencyName, dataset: l.dataset, status: l.status, purpose: l.purpose })),
    };
  }

  /** What /metrics reads from the database: cheap aggregate queries over indexed columns. */
  async figures(opts: { sftpIdleSec: number }) {
    const db = this.d.cdb.db;
    const now = this.d.clock.now();
    const bounds = await usageLogRepo.bounds(db);
    const dbBytes = await this.d.cdb.size();
    const links = await this.d.services.registry.list();
    return {
      deliveries: await consoleQueries.deliveryTotals(db),
      pushes: await consoleQueries.pushOutcomes(db),
      authFailures: await consoleQueries.countByChannel(db, 'auth.failed'),
      sftpSessions: await consoleQueries.actorsSince(db, ['auth.succeeded', 'file.downloaded'], 'sftp-pull', new Date(now.getTime() - opts.sftpIdleSec * 1000).toISOString()),
      log: { records: bounds.count, head: bounds.max ?? 0, dbBytes },
      links: links.reduce<Record<string, number>>((m, l) => ((m[l.status] = (m[l.status] ?? 0) + 1), m), {}),
      openAnomalies: await consoleQueries.openAnomalies(db),
      overdueFindings: (await this.findings()).filter((f) => f.status === 'overdue').length,
    };
  }
}
