import type { ControlDb } from '../db';
import * as agencies from '../db/repositories/agencies';
import * as links from '../db/repositories/links';
import * as repo from '../db/repositories/usageLog';
import * as vendorsRepo from '../db/repositories/vendors';
import { addDays, addMonths, describeScope, formatScope, ipAllowed, scopeSchema, startOfTaipeiDay, taipeiDate, type DatasetCatalog, type IsoDate, type Scope } from '../domain';
import { UserError } from '../errors';
import { spreadsheetSafe } from './csv-safe';

export interface ReportScope {
  agency?: string;
  linkId?: number;
}

export interface MonthFigures {
  month: string;
  deliveries: number;
  rows: number;
  downloads: number;
  bytesDownloaded: number;
  pushes: number;
  failedLogins: number;
  /** Online look-ups answered, and the identifiers they asked for. */
  queries: number;
  idsAsked: number;
}

/** Look-ups grouped by what they were for, where they came from, or which link made them. */
export interface QueryGroup {
  requests: number;
  /** Identifiers asked in the answered requests. */
  ids: number;
  /** Of those, how many matched a record (look-ups logged before `found` was recorded are not counted). */
  found: number;
}

/** R4.2, R3.5: the online query over the period, from `query.answered` and `query.refused`. */
export interface QueryFigures {
  requests: number;
  answered: number;
  refused: number;
  idsAsked: number;
  idsFound: number;
  /** Identifiers of answered look-ups whose record does not say how many were found (written before it did). */
  idsFoundUnknown: number;
  recordsReturned: number;
  byReference: ({ reference: string } & QueryGroup)[];
  byIp: ({ ip: string | null } & QueryGroup)[];
  byLink: ({ linkId: number } & QueryGroup)[];
  refusedByCode: Record<string, number>;
}

/** R3.4, R4.2: the records a revision allowed, while it was in force. */
export interface ScopeInForce {
  linkId: number;
  revision: number;
  /** Taipei date the revision took effect (the link's approval for the first, the change's approval after). */
  from: IsoDate;
  /** Taipei date the next revision took effect or the link was terminated; null while still in force. */
  until: IsoDate | null;
  scope: Scope;
  /** The scope in words (zh-TW), as the form prints it. */
  text: string;
}

/** R4.2, R6.4, R9.1: what a link (or all links of an agency) actually used in a period, from the usage log. */
export interface UsageReport {
  type: 'nia-link.usage-report';
  scope: { agency: string | null; linkId: number | null; links: number[] };
  from: IsoDate;
  to: IsoDate;
  generatedAt: string;
  log: { records: number; firstSeq: number | null; lastSeq: number | null };
  deliveries: { count: number; rows: number; bytes: number; byLink: { linkId: number; count: number; rows: number }[] };
  /** Each field delivered: in how many deliveries, and how many rows carried it. */
  fields: { field: string; deliveries: number; rows: number }[];
  /** `vendor`: the outsourced vendor whose dedicated machine the address is (R8.1), when it is one. */
  downloads: { count: number; complete: number; partial: number; bytes: number; byAccountIp: { account: string | null; ip: string | null; count: number; complete: number; partial: number; bytes: number; vendor?: string }[] };
  pushes: { count: number; bytes: number; byLink: { linkId: number; count: number }[] };
  failedLogins: { count: number; byIpAccount: { ip: string | null; account: string | null; count: number; reasons: Record<string, number> }[] };
  queries: QueryFigures;
  /** Every revision in force at some time in the period, oldest first per link. */
  scopes: ScopeInForce[];
  months: MonthFigures[];
  events: Record<string, number>;
  /** R8.1, R9.1: the vendors that worked on the links at some time in the period. */
  vendors: { id: number; linkId: number; name: string; contact: string; parentId: number | null; machines: string[]; addedAt: string; removedAt: string | null }[];
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function fieldsOf(v: unknown): string[] {
  const list = Array.isArray(v) ? v.map(String) : typeof v === 'string' ? v.split(',') : [];
  return list.map((s) => s.trim()).filter(Boolean);
}

/** A download finished when the SFTP server says so: `result: complete` (or `complete: true`). */
const isComplete = (d: Record<string, unknown>) => d.complete === true || d.result === 'complete';

function bump<K>(m: Map<string, K>, key: string, make: () => K): K {
  let v = m.get(key);
  if (!v) m.set(key, (v = make()));
  return v;
}

const newMonth = (month: string): MonthFigures => ({ month, deliveries: 0, rows: 0, downloads: 0, bytesDownloaded: 0, pushes: 0, failedLogins: 0, queries: 0, idsAsked: 0 });
/** A count from a record, or null when the record does not carry one. */
const count = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null);

/**
 * The revisions of the links in force at some time in [fromAt, toAt): a revision takes effect when the
 * link is approved (the first) or its change is, and stays until the next one does or the link ends.
 * A link never approved has had no scope in force.
 */
async function scopesInForce(cdb: ControlDb, linkIds: number[], fromAt: string, toAt: string, catalogs?: ReadonlyMap<string, DatasetCatalog>): Promise<ScopeInForce[]> {
  const out: ScopeInForce[] = [];
  for (const id of linkIds) {
    const l = await links.byId(cdb.db, id);
    if (!l?.approvedAt) continue;
    const approvedAt = l.approvedAt;
    const revs = (await links.revisions(cdb.db, id)).map((rv) => ({ rv, at: rv.createdAt > approvedAt ? rv.createdAt : approvedAt }));
    const ended = l.status === 'terminated' ? l.statusChangedAt : null;
    out.push(...revs.flatMap(({ rv, at }, i) => {
      const until = revs[i + 1]?.at ?? ended;
      // A revision superseded before the link was approved was never in force.
      if (until !== null && until <= at) return [];
      if (at >= toAt || (until !== null && until <= fromAt)) return [];
      const content = rv.content as { dataset?: unknown; scope?: unknown };
      const scope = scopeSchema.parse(content.scope);
      const catalog = typeof content.dataset === 'string' ? catalogs?.get(content.dataset) : undefined;
      return [{ linkId: id, revision: rv.number, from: taipeiDate(new Date(at)), until: until === null ? null : taipeiDate(new Date(until)), scope, text: describeScope(scope, catalog, 'zh') }];
    }));
  }
  return out;
}

/** `catalogs`: the dataset catalogs, so scopes read in their labels (field names and codes without them). */
export async function usageReport(cdb: ControlDb, scope: ReportScope, from: IsoDate, to: IsoDate, now: Date, catalogs?: ReadonlyMap<string, DatasetCatalog>): Promise<UsageReport> {
  if ((scope.agency === undefined) === (scope.linkId === undefined)) throw new UserError('give an agency or a link (one of them)', 'report.scope', { kind: 'invalid', field: 'agencyOrLink' });
  if (to < from) throw new UserError(`the period's end ${to} is before its start ${from}`, 'period.reversed', { kind: 'invalid', field: 'to' });
  let agency: string | null = null;
  let linkIds: number[];
  if (scope.linkId !== undefined) {
    const l = await links.byId(cdb.db, scope.linkId);
    if (!l) throw new UserError(`no link ${scope.linkId}`, 'link.not-found');
    agency = (await agencies.byId(cdb.db, l.agencyId))?.code ?? null;
    linkIds = [l.id];
  } else {
    const a = await agencies.byCode(cdb.db, scope.agency!.trim().toUpperCase());
    if (!a) throw new UserError(`no agency ${scope.agency}`, 'agency.not-found');
    agency = a.code;
    linkIds = (await links.list(cdb.db)).filter((l) => l.agencyId === a.id).map((l) => l.id);
  }

  const months = new Map<string, MonthFigures>();
  for (let m = from.slice(0, 7) + '-01'; m <= to; m = addMonths(m, 1)) {
    months.set(m.slice(0, 7), newMonth(m.slice(0, 7)));
  }
  const r: UsageReport = {
    type: 'nia-link.usage-report',
    scope: { agency, linkId: scope.linkId ?? null, links: linkIds },
    from,
    to,
    generatedAt: now.toISOString(),
    log: { records: 0, firstSeq: null, lastSeq: null },
    deliveries: { count: 0, rows: 0, bytes: 0, byLink: [] },
    fields: [],
    downloads: { count: 0, complete: 0, partial: 0, bytes: 0, byAccountIp: [] },
    pushes: { count: 0, bytes: 0, byLink: [] },
    failedLogins: { count: 0, byIpAccount: [] },
    queries: { requests: 0, answered: 0, refused: 0, idsAsked: 0, idsFound: 0, idsFoundUnknown: 0, recordsReturned: 0, byReference: [], byIp: [], byLink: [], refusedByCode: {} },
    scopes: [],
    months: [],
    events: {},
    vendors: [],
  };
  const deliveriesByLink = new Map<string, { linkId: number; count: number; rows: number }>();
  const fields = new Map<string, { field: string; deliveries: number; rows: number }>();
  const downloads = new Map<string, UsageReport['downloads']['byAccountIp'][number]>();
  const pushesByLink = new Map<string, { linkId: number; count: number }>();
  const failures = new Map<string, UsageReport['failedLogins']['byIpAccount'][number]>();
  const byReference = new Map<string, QueryFigures['byReference'][number]>();
  const byIp = new Map<string, QueryFigures['byIp'][number]>();
  const byQueryLink = new Map<string, QueryFigures['byLink'][number]>();
  /** The groups a look-up counts in: its reference (when it gave one), its address, its link. */
  const queryGroups = (e: { ip: string | null; linkId: number | null }, reference: unknown): QueryGroup[] => [
    ...(typeof reference === 'string' ? [bump(byReference, reference, () => ({ reference, requests: 0, ids: 0, found: 0 }))] : []),
    bump(byIp, String(e.ip), () => ({ ip: e.ip, requests: 0, ids: 0, found: 0 })),
    ...(e.linkId !== null ? [bump(byQueryLink, String(e.linkId), () => ({ linkId: e.linkId!, requests: 0, ids: 0, found: 0 }))] : []),
  ];

  const rows = repo.scopeRows(cdb.db, {
    fromAt: startOfTaipeiDay(from).toISOString(),
    toAt: startOfTaipeiDay(addDays(to, 1)).toISOString(),
    ...(scope.linkId !== undefined ? { linkId: scope.linkId } : { agency: agency! }),
  });
  for await (const e of rows) {
    r.log.records++;
    r.log.firstSeq ??= e.seq;
    r.log.lastSeq = e.seq;
    r.events[e.type] = (r.events[e.type] ?? 0) + 1;
    const ym = taipeiDate(new Date(e.at)).slice(0, 7);
    const month = bump(months, ym, () => newMonth(ym));
    let d: Record<string, unknown> = {};
    try {
      d = JSON.parse(e.detail) as Record<string, unknown>;
    } catch {
      /* a detail that is not JSON counts as empty */
    }
    switch (e.type) {
      case 'extract.built': {
        const n = num(d.rows);
        r.deliveries.count++;
        r.deliveries.rows += n;
        r.deliveries.bytes += num(d.bytes);
        month.deliveries++;
        month.rows += n;
        const bl = bump(deliveriesByLink, String(e.linkId), () => ({ linkId: e.linkId!, count: 0, rows: 0 }));
        bl.count++;
        bl.rows += n;
        for (const f of fieldsOf(d.fields)) {
          const fr = bump(fields, f, () => ({ field: f, deliveries: 0, rows: 0 }));
          fr.deliveries++;
          fr.rows += n;
        }
        break;
      }
      case 'file.downloaded': {
        const account = typeof d.account === 'string' ? d.account : e.actor;
        const done = isComplete(d);
        const bytes = num(d.bytes);
        r.downloads.count++;
        r.downloads[done ? 'complete' : 'partial']++;
        r.downloads.bytes += bytes;
        month.downloads++;
        month.bytesDownloaded += bytes;
        const k = bump(downloads, `${account}\u0000${e.ip}`, () => ({ account, ip: e.ip, count: 0, complete: 0, partial: 0, bytes: 0 }));
        k.count++;
        k[done ? 'complete' : 'partial']++;
        k.bytes += bytes;
        break;
      }
      case 'file.pushed': {
        r.pushes.count++;
        r.pushes.bytes += num(d.bytes);
        month.pushes++;
        bump(pushesByLink, String(e.linkId), () => ({ linkId: e.linkId!, count: 0 })).count++;
        break;
      }
      case 'auth.failed': {
        const account = e.actor ?? (typeof d.username === 'string' ? d.username : null);
        r.failedLogins.count++;
        month.failedLogins++;
        const k = bump(failures, `${e.ip}\u0000${account}`, () => ({ ip: e.ip, account, count: 0, reasons: {} as Record<string, number> }));
        k.count++;
        const reason = typeof d.reason === 'string' ? d.reason : 'unknown';
        k.reasons[reason] = (k.reasons[reason] ?? 0) + 1;
        break;
      }
      case 'query.answered': {
        const q = r.queries;
        const ids = count(d.ids) ?? 0;
        // Older records lack `found`: unknown, which is not the same as none found.
        const found = count(d.found);
        q.requests++;
        q.answered++;
        q.idsAsked += ids;
        if (found === null) q.idsFoundUnknown += ids;
        else q.idsFound += found;
        q.recordsReturned += count(d.returned) ?? 0;
        month.queries++;
        month.idsAsked += ids;
        for (const g of queryGroups(e, d.reference)) {
          g.requests++;
          g.ids += ids;
          g.found += found ?? 0;
        }
        break;
      }
      case 'query.refused': {
        const code = typeof d.code === 'string' ? d.code : 'unknown';
        // Refusals no rate limit bounds are written once per interval with their count (query/refusals.ts).
        const n = typeof d.count === 'number' && Number.isInteger(d.count) && d.count > 0 ? d.count : 1;
        r.queries.requests += n;
        r.queries.refused += n;
        r.queries.refusedByCode[code] = (r.queries.refusedByCode[code] ?? 0) + n;
        for (const g of queryGroups(e, d.reference)) g.requests += n;
        break;
      }
    }
  }
  const byCount = <T extends { count: number }>(a: T, b: T) => b.count - a.count;
  r.deliveries.byLink = [...deliveriesByLink.values()].sort((a, b) => a.linkId - b.linkId);
  r.fields = [...fields.values()];
  r.downloads.byAccountIp = [...downloads.values()].sort(byCount);
  r.pushes.byLink = [...pushesByLink.values()].sort((a, b) => a.linkId - b.linkId);
  r.failedLogins.byIpAccount = [...failures.values()].sort(byCount);
  const byRequests = <T extends QueryGroup>(a: T, b: T) => b.requests - a.requests || b.ids - a.ids;
  r.queries.byReference = [...byReference.values()].sort(byRequests);
  r.queries.byIp = [...byIp.values()].sort(byRequests);
  r.queries.byLink = [...byQueryLink.values()].sort((a, b) => a.linkId - b.linkId);
  r.months = [...months.values()];
  const fromAt = startOfTaipeiDay(from).toISOString();
  const toAt = startOfTaipeiDay(addDays(to, 1)).toISOString();
  const linkVendors: vendorsRepo.VendorRow[] = [];
  for (const id of linkIds) linkVendors.push(...(await vendorsRepo.forLink(cdb.db, id, { removed: true })));
  r.vendors = linkVendors
    .filter((v) => v.addedAt < toAt && (v.removedAt === null || v.removedAt >= fromAt))
    .map((v) => ({ id: v.id, linkId: v.linkId, name: v.name, contact: v.contact, parentId: v.parentId, machines: v.machines, addedAt: v.addedAt, removedAt: v.removedAt }));
  r.scopes = await scopesInForce(cdb, linkIds, fromAt, toAt, catalogs);
  for (const d of r.downloads.byAccountIp) {
    const v = d.ip ? r.vendors.find((x) => ipAllowed(d.ip!, x.machines)) : undefined;
    if (v) d.vendor = v.name;
  }
  return r;
}

// Every cell: account names, addresses and query references come from outside.
const csvCell = (v: unknown) => {
  const s = spreadsheetSafe(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** One row per figure, `section,key,metric,value`: easy to filter and pivot in a spreadsheet. */
export function reportCsv(r: UsageReport): string {
  const out: unknown[][] = [['section', 'key', 'metric', 'value']];
  const add = (section: string, key: unknown, o: object, skip: string[] = []) => {
    for (const [metric, value] of Object.entries(o)) if (!skip.includes(metric) && typeof value !== 'object') out.push([section, key, metric, value]);
  };
  out.push(['scope', r.scope.linkId !== null ? `link ${r.scope.linkId}` : `agency ${r.scope.agency}`, 'period', `${r.from}..${r.to}`]);
  add('deliveries', 'total', r.deliveries);
  for (const l of r.deliveries.byLink) add('deliveries', `link ${l.linkId}`, l, ['linkId']);
  for (const f of r.fields) add('field', f.field, f, ['field']);
  add('downloads', 'total', r.downloads);
  for (const d of r.downloads.byAccountIp) add('downloads', `${d.account ?? '-'}@${d.ip ?? '-'}`, d, ['account', 'ip']);
  add('pushes', 'total', r.pushes);
  add('failed-logins', 'total', r.failedLogins);
  for (const f of r.failedLogins.byIpAccount) add('failed-logins', `${f.account ?? '-'}@${f.ip ?? '-'}`, f, ['account', 'ip']);
  add('queries', 'total', r.queries);
  for (const l of r.queries.byLink) add('queries', `link ${l.linkId}`, l, ['linkId']);
  for (const q of r.queries.byReference) add('query-reference', q.reference, q, ['reference']);
  for (const q of r.queries.byIp) add('query-ip', q.ip ?? '-', q, ['ip']);
  for (const [code, n] of Object.entries(r.queries.refusedByCode)) out.push(['query-refused', code, 'count', n]);
  for (const s of r.scopes) {
    const key = `link ${s.linkId} revision ${s.revision}`;
    out.push(['revision-scope', key, 'from', s.from], ['revision-scope', key, 'until', s.until ?? ''], ['revision-scope', key, 'scope', formatScope(s.scope)], ['revision-scope', key, 'text', s.text]);
  }
  for (const m of r.months) add('month', m.month, m, ['month']);
  for (const [type, n] of Object.entries(r.events)) out.push(['events', type, 'count', n]);
  for (const v of r.vendors) out.push(['vendor', `${v.id} ${v.name}`, 'machines', v.machines.join(' ')]);
  return out.map((row) => row.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

const esc = (v: unknown) =>
  String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function table(title: string, head: string[], rows: unknown[][]): string {
  if (!rows.length) return `<h2>${esc(title)}</h2><p>none</p>`;
  return `<h2>${esc(title)}</h2><table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((row) => `<tr>${row.map((c) => `<td${typeof c === 'number' ? ' class="n"' : ''}>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

/** A self-contained page (no scripts, no external resources) to print or attach to an audit. */
export function reportHtml(r: UsageReport): string {
  const who = r.scope.linkId !== null ? `link ${r.scope.linkId} (${r.scope.agency ?? '-'})` : `agency ${r.scope.agency} (links ${r.scope.links.join(', ') || 'none'})`;
  return `<!doctype html>
<html lang="zh-Hant"><head><meta charset="utf-8"><title>使用紀錄報表 Usage report — ${esc(who)}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}th,td{border:1px solid #999;padding:.25em .6em}td.n{text-align:right}</style></head><body>
<h1>使用紀錄報表 Usage report</h1>
<p>${esc(who)}, ${esc(r.from)} – ${esc(r.to)} (Asia/Taipei). From the usage log, seq ${esc(r.log.firstSeq ?? '-')}–${esc(r.log.lastSeq ?? '-')} (${r.log.records} records). Generated ${esc(r.generatedAt)}.</p>
${table('Scope of each revision in force (資料範圍)', ['link', 'revision', 'from', 'until', 'scope', 'conditions'], r.scopes.map((s) => [s.linkId, s.revision, s.from, s.until ?? '-', s.text, formatScope(s.scope)]))}
${table('Deliveries', ['link', 'deliveries', 'rows'], r.deliveries.byLink.map((l) => [l.linkId, l.count, l.rows]))}
<p>Total: ${r.deliveries.count} deliveries, ${r.deliveries.rows} rows, ${r.deliveries.bytes} bytes.</p>
${table('Fields delivered', ['field', 'deliveries', 'rows'], r.fields.map((f) => [f.field, f.deliveries, f.rows]))}
${table('Downloads by account and IP', ['account', 'IP', 'vendor', 'downloads', 'complete', 'partial', 'bytes'], r.downloads.byAccountIp.map((d) => [d.account ?? '-', d.ip ?? '-', d.vendor ?? '-', d.count, d.complete, d.partial, d.bytes]))}
${table('Pushes', ['link', 'pushes'], r.pushes.byLink.map((p) => [p.linkId, p.count]))}
${table('Failed logins', ['IP', 'account', 'count', 'reasons'], r.failedLogins.byIpAccount.map((f) => [f.ip ?? '-', f.account ?? '-', f.count, Object.entries(f.reasons).map(([k, v]) => `${k} ×${v}`).join(', ')]))}
<h2>Online query (線上查詢)</h2>
<p>${r.queries.requests} requests: ${r.queries.answered} answered, ${r.queries.refused} refused. ${r.queries.idsAsked} identifiers asked, ${r.queries.idsFound} found${r.queries.idsFoundUnknown ? ` (${r.queries.idsFoundUnknown} more asked in look-ups logged without the count found)` : ''}, ${r.queries.recordsReturned} records returned.</p>
${table('Look-ups by reference', ['reference', 'requests', 'ids', 'found'], r.queries.byReference.map((q) => [q.reference, q.requests, q.ids, q.found]))}
${table('Look-ups by IP', ['IP', 'requests', 'ids', 'found'], r.queries.byIp.map((q) => [q.ip ?? '-', q.requests, q.ids, q.found]))}
${table('Look-ups by link', ['link', 'requests', 'ids', 'found'], r.queries.byLink.map((q) => [q.linkId, q.requests, q.ids, q.found]))}
${table('Refused look-ups by code', ['code', 'count'], Object.entries(r.queries.refusedByCode))}
${table('Vendors (委外廠商)', ['vendor', 'link', 'name', 'contact', 'sub-contractor of', 'machines', 'added', 'removed'], r.vendors.map((v) => [v.id, v.linkId, v.name, v.contact, v.parentId ?? '-', v.machines.join(', '), v.addedAt, v.removedAt ?? '-']))}
${table('By month', ['month', 'deliveries', 'rows', 'downloads', 'bytes downloaded', 'pushes', 'failed logins', 'look-ups', 'ids asked'], r.months.map((m) => [m.month, m.deliveries, m.rows, m.downloads, m.bytesDownloaded, m.pushes, m.failedLogins, m.queries, m.idsAsked]))}
</body></html>
`;
}
