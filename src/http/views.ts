import type { usageLog } from '../db/repositories';
import type { DeliveryView } from '../extract';
import type { BatchListItem } from '../batch/list';
import type { LinkView } from '../registry';
import type { AnomalyRow } from '../usagelog';
import { DRILL_MARK } from '../domain';
import { CSS_URL } from './assets';
import { type CalendarEntry, type ConsoleData, type LogStatus, needsScopeReview, pushTarget, type QueueDepth, type RevisionDiff } from './data';
import { Html, html, qs, type Value } from './html';
import type { Lang, MessageKey, T } from './i18n';
import type { ConsoleSession, OperatorView } from './operators';

/** What every page knows about the request it answers. */
export interface View {
  t: T;
  lang: Lang;
  op: ConsoleSession | null;
  /** The path and query of this page (for the language switch and the login's way back). */
  path: string;
  /** A drill installation: every page is marked, so no screen of a drill passes for production. */
  drill?: boolean;
}

type Overview = Awaited<ReturnType<ConsoleData['overview']>>;
type LinkPage = Awaited<ReturnType<ConsoleData['link']>>;
type DeliveryPage = Awaited<ReturnType<ConsoleData['delivery']>>;

// ---- small pieces ----

/** Times in Taipei, as NIA staff read them. */
export function taipeiTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Date(d.getTime() + 8 * 3600e3).toISOString().slice(0, 19).replace('T', ' ');
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

const num = (n: number | null | undefined) => (n === null || n === undefined ? '' : n.toLocaleString('en-US'));
const badge = (cls: string, text: string) => html`<span class="badge ${cls}">${text}</span>`;
const statusBadge = (v: View, s: string) => badge(s, (['pending', 'active', 'suspended', 'terminated', 'rejected'].includes(s) ? v.t(`status_${s}` as MessageKey) : s));
const linkTo = (id: number) => html`<a href="/links/${id}">#${id}</a>`;
const scopeReviewBadge = (v: View) => badge('pending scope-review', v.t('scopeReview'));
const csrf = (v: View) => html`<input type="hidden" name="_csrf" value="${v.op?.csrfToken ?? ''}">`;
const can = (v: View, ...roles: string[]) => v.op !== null && roles.includes(v.op.role);

function table(head: Value[], rows: Value[][], empty: string): Html {
  if (rows.length === 0) return html`<p class="muted">${empty}</p>`;
  return html`<table><thead><tr>${head.map((h) => (h instanceof Html && h.text.startsWith('<th') ? h : html`<th>${h}</th>`))}</tr></thead><tbody>${rows.map((r) => html`<tr>${r.map((c) => (c instanceof Html && c.text.startsWith('<td') ? c : html`<td>${c}</td>`))}</tr>`)}</tbody></table>`;
}
const numCell = (n: number | null | undefined) => html`<td class="num">${num(n)}</td>`;
const numHead = (label: string) => html`<th class="num">${label}</th>`;
const monoCell = (s: string | null | undefined) => html`<td class="mono">${s ?? ''}</td>`;

function kv(rows: [string, Value][]): Html {
  return html`<table class="kv"><tbody>${rows.map(([k, val]) => html`<tr><th>${k}</th><td>${val}</td></tr>`)}</tbody></table>`;
}

const NAV: { href: string; key: MessageKey; roles?: string[] }[] = [
  { href: '/', key: 'overview' },
  { href: '/agencies', key: 'agencies' },
  { href: '/links', key: 'links' },
  { href: '/deliveries', key: 'deliveries' },
  { href: '/batches', key: 'batches' },
  { href: '/log', key: 'usageLog', roles: ['admin', 'auditor'] },
  { href: '/compliance', key: 'compliance' },
  { href: '/anomalies', key: 'anomalies' },
  { href: '/queues', key: 'queues' },
  { href: '/operators', key: 'operators', roles: ['admin'] },
];

function langSwitch(v: View): string {
  const u = new URL(v.path, 'http://x');
  u.searchParams.set('lang', v.lang === 'en' ? 'zh-TW' : 'en');
  return u.pathname + u.search;
}

/** The page around every console view. */
export function layout(v: View, title: string, body: Html, flash?: { ok: boolean; text: string } | null): string {
  const current = (href: string) => (href === '/' ? v.path === '/' || v.path.startsWith('/?') : v.path.startsWith(href));
  const nav = v.op
    ? html`<nav>${NAV.filter((n) => !n.roles || n.roles.includes(v.op!.role)).map((n) => html`<a href="${n.href}" class="${current(n.href) ? 'current' : ''}">${v.t(n.key)}</a>`)}</nav>
      <div class="who"><span>${v.op.username} (${v.t(`role_${v.op.role}` as MessageKey)})</span><a href="${langSwitch(v)}" lang="${v.lang === 'en' ? 'zh-TW' : 'en'}">${v.t('language')}</a>
      <form method="post" action="/logout">${csrf(v)}<button type="submit">${v.t('logout')}</button></form></div>`
    : html`<nav></nav><div class="who"><a href="${langSwitch(v)}">${v.t('language')}</a></div>`;
  return html`<!DOCTYPE html>
<html lang="${v.lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><title>${v.drill ? `${DRILL_MARK} · ` : ''}${title} · ${v.t('title')}</title><link rel="stylesheet" href="${CSS_URL}"></head>
<body><header class="top"><span class="brand">${v.t('title')}</span>${v.drill ? html`<span class="badge suspended drill" role="note">${DRILL_MARK}</span>` : ''}${nav}</header>
<main>${flash ? html`<div class="flash ${flash.ok ? 'ok' : 'bad'}" role="status">${flash.text}</div>` : ''}${body}</main>
<footer>nia-link · 內政部移民署 National Immigration Agency</footer></body></html>`.text;
}

// ---- login ----

export function loginPage(v: View, o: { next: string; error?: string; username?: string }): string {
  return layout(
    v,
    v.t('login'),
    html`<div class="login"><h1>${v.t('login')}</h1>${o.error ? html`<div class="flash bad" role="alert">${o.error}</div>` : ''}
<form method="post" action="/login"><input type="hidden" name="next" value="${o.next}">
<label for="username">${v.t('username')}</label><input id="username" name="username" autocomplete="username" required maxlength="64" value="${o.username ?? ''}" autofocus>
<label for="password">${v.t('password')}</label><input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
<label for="code">${v.t('totpCode')}</label><input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="6" pattern="[0-9]{6}">
<button type="submit">${v.t('login')}</button></form></div>`,
  );
}

// ---- overview ----

function queueTable(v: View, queues: QueueDepth[]): Html {
  return table(
    [v.t('queue'), numHead(v.t('waiting')), numHead(v.t('active')), numHead(v.t('delayed')), numHead(v.t('failed')), numHead(v.t('completed')), v.t('status')],
    queues.map((q) => [html`<a href="/queues/queue/${q.queue}">${q.queue}</a>`, numCell(q.waiting + q.prioritized), numCell(q.active), numCell(q.delayed), numCell(q.failed), numCell(q.completed), q.paused ? badge('failed', v.t('paused')) : badge('ok', v.t('active'))]),
    v.t('none'),
  );
}

function calendarTable(v: View, entries: CalendarEntry[]): Html {
  return table(
    [v.t('date'), v.t('kind'), v.t('link'), v.t('agency'), v.t('text')],
    entries.map((e) => [html`${e.date} ${e.overdue ? badge('overdue', v.t('overdue')) : ''}`, v.t(`cal_${e.kind.replace('-', '_')}` as MessageKey), linkTo(e.linkId), e.agency, e.text]),
    v.t('none'),
  );
}

function anomalyTable(v: View, rows: AnomalyRow[]): Html {
  return table(
    [v.t('id'), v.t('rule'), v.t('link'), v.t('agency'), v.t('ip'), v.t('summary'), numHead(v.t('count')), v.t('firstLast'), v.t('status')],
    rows.map((a) => [a.id, a.rule, a.linkId ? linkTo(a.linkId) : '', a.agency, a.ip, a.summary, numCell(a.count), html`${taipeiTime(a.firstAt)}<br>${taipeiTime(a.lastAt)}`, badge(a.status, a.status)]),
    v.t('none'),
  );
}

export function overviewPage(v: View, o: Overview): string {
  const card = (n: Value, label: string, cls = '') => html`<div class="card ${cls}"><div class="n">${n}</div><div class="l">${label}</div></div>`;
  const failures = o.failures.deliveries.length + o.failures.pushes.length;
  return layout(
    v,
    v.t('overview'),
    html`<h1>${v.t('overview')} <span class="muted">${o.today}</span></h1>
<div class="cards">
${card(num(o.deliveries.total), v.t('deliveriesToday'))}
${card(num(o.deliveries.rows), v.t('rowsToday'))}
${card(bytes(o.deliveries.bytes), v.t('bytesToday'))}
${card(num(failures), v.t('failuresToday'), failures ? 'bad' : '')}
${card(num(o.openAnomalies), v.t('openAnomalies'), o.openAnomalies ? 'warn' : '')}
${card(num(o.overdueFindings.length), v.t('overdueFindings'), o.overdueFindings.length ? 'bad' : '')}
${card(num(o.pendingLinks), v.t('pendingLinks'), o.pendingLinks ? 'warn' : '')}
${card(num(o.scopeReviews.length), v.t('scopeReviews'), o.scopeReviews.length ? 'warn' : '')}
</div>
${o.scopeReviews.length
  ? html`<h2>${v.t('scopeReviews')}</h2>${table(
      [v.t('link'), v.t('agency'), v.t('dataset'), v.t('purpose'), v.t('status')],
      o.scopeReviews.map((l) => [html`${linkTo(l.id)} ${scopeReviewBadge(v)}`, html`${l.agency} ${l.agencyName}`, l.dataset, l.purpose, statusBadge(v, l.status)]),
      v.t('none'),
    )}`
  : ''}
<h2>${v.t('queueDepths')}</h2>${queueTable(v, o.queues)}
<h2>${v.t('failuresToday')}</h2>
${table(
  [v.t('delivery'), v.t('link'), v.t('channel'), v.t('status'), v.t('error')],
  [
    ...o.failures.deliveries.map((f) => [html`<a href="/deliveries/${f.delivery}">#${f.delivery}</a>`, linkTo(f.link), 'extract', badge('failed', 'failed'), f.error]),
    ...o.failures.pushes.map((f) => [html`<a href="/deliveries/${f.delivery}">#${f.delivery}</a>`, linkTo(f.link), f.channel, badge(f.status, f.status), f.error]),
  ],
  v.t('none'),
)}
<h2>${v.t('anomalies')}</h2>${anomalyTable(v, o.anomalies)}
<h2>${v.t('overdueFindings')}</h2>${findingTable(v, o.overdueFindings)}
<h2>${v.t('upcomingDeadlines')}</h2>${calendarTable(v, o.deadlines)}`,
  );
}

// ---- agencies and links ----

export function agenciesPage(v: View, rows: Awaited<ReturnType<ConsoleData['agencies']>>): string {
  return layout(
    v,
    v.t('agencies'),
    html`<h1>${v.t('agencies')}</h1>${table(
      [v.t('code'), v.t('name'), v.t('nameEn'), v.t('government'), v.t('sponsor'), v.t('links'), v.t('status_active')],
      rows.map((a) => [html`<a href="/links?agency=${encodeURIComponent(a.code)}">${a.code}</a>`, a.name, a.nameEn, a.government ? v.t('yes') : v.t('no'), a.sponsor, numCell(a.links), numCell(a.active)]),
      v.t('none'),
    )}`,
  );
}

const STATUSES = ['pending', 'active', 'suspended', 'terminated', 'rejected'] as const;

export function linksPage(v: View, rows: (LinkView & { pendingChanges: number })[], f: { status?: string; agency?: string }, agencies: string[]): string {
  const option = (value: string, label: string, selected: boolean) => html`<option value="${value}" ${selected ? new Html('selected') : ''}>${label}</option>`;
  return layout(
    v,
    v.t('links'),
    html`<h1>${v.t('links')}</h1>
<form class="filters" method="get" action="/links">
<label>${v.t('status')}<select name="status">${option('', v.t('all'), !f.status)}${STATUSES.map((s) => option(s, v.t(`status_${s}`), f.status === s))}</select></label>
<label>${v.t('agency')}<select name="agency">${option('', v.t('all'), !f.agency)}${agencies.map((a) => option(a, a, f.agency === a))}</select></label>
<button type="submit">${v.t('filter')}</button></form>
${table(
  [v.t('link'), v.t('agency'), v.t('dataset'), v.t('purpose'), v.t('status'), v.t('revision'), v.t('channels'), v.t('period'), v.t('pendingChanges')],
  rows.map((l) => [linkTo(l.id), html`${l.agency} ${l.agencyName}`, l.dataset, l.purpose, html`${statusBadge(v, l.status)}${needsScopeReview(l) ? html` ${scopeReviewBadge(v)}` : ''}`, l.revision, l.channels.join(', '), `${l.from} – ${l.to}`, l.pendingChanges ? badge('pending', String(l.pendingChanges)) : '']),
  v.t('none'),
)}`,
  );
}

/** Revision items (the application form's) under the names the rest of the console uses. */
const ITEM_LABELS: Record<string, MessageKey> = {
  dataset: 'dataset',
  fields: 'fields',
  scope: 'scope',
  maxIdsPerDay: 'maxIdsPerDay',
  clientCerts: 'clientCerts',
  legalBasis: 'legalBasis',
  purpose: 'purpose',
  department: 'department',
  officer: 'officer',
  supervisor: 'supervisor',
  period: 'period',
  disposal: 'disposal',
  methods: 'channels',
  allowIps: 'allowIps',
  account: 'account',
  push: 'pushTarget',
  email: 'email',
  schedule: 'schedule',
  pgpFingerprint: 'pgpKey',
  rulesDocument: 'rulesDocument',
  stopOn: 'endsOn',
};

function diffTable(v: View, r: RevisionDiff): Html {
  if (r.changes.length === 0) return html`<p class="muted">${v.t('noDifference')}</p>`;
  return table(
    [v.t('item'), v.t('before'), v.t('after')],
    r.changes.map((c) => {
      const shown = v.lang === 'en' && c.en ? c.en : c;
      return [ITEM_LABELS[c.item] ? v.t(ITEM_LABELS[c.item]) : c.item, shown.before ?? '—', shown.after ?? '—'];
    }),
    v.t('none'),
  );
}

function findingTable(v: View, rows: { id: number; linkId: number; text: string; deadline: string; status: string; remediatedOn: string | null }[]): Html {
  return table(
    [v.t('id'), v.t('link'), v.t('text'), v.t('deadline'), v.t('status'), v.t('remediated')],
    rows.map((f) => [f.id, linkTo(f.linkId), f.text, f.deadline, badge(f.status, f.status), f.remediatedOn]),
    v.t('none'),
  );
}

function deliveryTable(v: View, rows: DeliveryView[]): Html {
  return table(
    [v.t('delivery'), v.t('link'), v.t('revision'), v.t('status'), v.t('mode'), v.t('trigger'), numHead(v.t('rows')), v.t('bytes'), v.t('createdAt'), v.t('channels')],
    rows.map((d) => [
      html`<a href="/deliveries/${d.id}">#${d.id}</a>`,
      linkTo(d.link),
      d.revision,
      badge(d.status, d.status),
      d.mode,
      d.trigger,
      numCell(d.rows),
      bytes(d.bytes),
      taipeiTime(d.createdAt),
      Object.entries(d.channels).map(([c, o]) => html`${badge(String((o as { status?: string }).status), `${c}: ${String((o as { status?: string }).status)}`)} `),
    ]),
    v.t('none'),
  );
}

export function linkPage(v: View, p: LinkPage, flash: { ok: boolean; text: string } | null): string {
  const l = p.link;
  const admin = can(v, 'admin');
  const actions: Html[] = [];
  if (admin && l.status === 'pending') {
    actions.push(html`<a class="button" href="/links/${l.id}/approve">${v.t('approve')}</a>`, html`<a class="button danger" href="/links/${l.id}/reject">${v.t('reject')}</a>`);
  }
  if (admin && l.status === 'active') actions.push(html`<a class="button danger" href="/links/${l.id}/suspend">${v.t('suspend')}</a>`);
  const push = l.push ? pushTarget(l.push) : null;
  const review = needsScopeReview(l);
  return layout(
    v,
    `${v.t('link')} #${l.id}`,
    html`<h1>${v.t('link')} #${l.id} · ${l.agency} ${l.agencyName} ${statusBadge(v, l.status)}</h1>
${actions.length ? html`<div class="actions">${actions}</div>` : ''}
${review ? html`<div class="flash bad scope-review" role="status">${scopeReviewBadge(v)} ${v.t('scopeReviewNote').replace('{id}', String(l.id))}</div>` : ''}
${kv([
  [v.t('status'), html`${statusBadge(v, l.status)} ${l.statusReason ?? ''}`],
  [v.t('currentRevision'), l.revision],
  [v.t('dataset'), l.dataset],
  [v.t('fields'), l.fields.join(', ')],
  [v.t('scope'), html`<span class="scope">${v.lang === 'en' ? p.scopeWords.en : p.scopeWords.zh}</span>${review ? html` ${scopeReviewBadge(v)}` : ''}`],
  [v.t('purpose'), html`<span class="purpose">${l.purpose}</span>`],
  [v.t('legalBasis'), l.legalBasis],
  [v.t('department'), l.department],
  [v.t('officer'), l.officer],
  [v.t('supervisor'), l.supervisor],
  [v.t('period'), `${l.from} – ${l.to}`],
  [v.t('disposal'), l.disposal],
  [v.t('channels'), l.channels.join(', ')],
  // R3.5: the cap binds the look-up channels only; on a file-only link it would suggest a limit that means nothing.
  ...(l.channels.includes('online-query') ? ([[v.t('maxIdsPerDay'), html`<span class="ids-per-day">${num(l.maxIdsPerDay)}</span> ${v.t('idsPerDay')}`]] as [string, Value][]) : []),
  [v.t('allowIps'), l.allowIps.join(', ')],
  [v.t('account'), l.account],
  [v.t('pushTarget'), push],
  [v.t('email'), l.email.join(', ')],
  [v.t('schedule'), l.schedule],
  [v.t('pgpKey'), html`<span class="mono">${l.pgpFingerprint}</span>`],
  [v.t('approvedAt'), taipeiTime(l.approvedAt)],
  [v.t('approvedBy'), l.approvedBy],
  [v.t('endsOn'), l.endsOn ?? l.stopOn],
])}
<h2>${v.t('changeRequests')}</h2>
${table(
  [v.t('id'), v.t('kind'), v.t('change'), v.t('status'), v.t('filed'), v.t('decided'), ''],
  p.changes.map((c) => [
    c.id,
    c.kind,
    html`<span class="mono">${JSON.stringify(c.change)}</span>`,
    badge(c.status, c.status),
    html`${taipeiTime(c.filedAt)} ${c.filedBy ?? ''}`,
    c.decidedAt ? html`${taipeiTime(c.decidedAt)} ${c.decidedBy ?? ''} ${c.revision ? `→ ${v.t('revision')} ${c.revision}` : ''} ${c.reason ?? ''}` : '',
    admin && c.status === 'pending' ? html`<a class="button" href="/changes/${c.id}/approve">${v.t('approve')}</a> <a class="button danger" href="/changes/${c.id}/reject">${v.t('reject')}</a>` : '',
  ]),
  v.t('none'),
)}
<h2>${v.t('revisionHistory')}</h2>
${p.revisions.map((r) => html`<h3>${v.t('revision')} ${r.number} <span class="muted">${taipeiTime(r.createdAt)}${r.changeRequestId ? ` · ${v.t('changeRequests')} #${r.changeRequestId}` : ''}</span></h3>${diffTable(v, r)}`)}
<h2>${v.t('deliveriesOfLink')}</h2>${deliveryTable(v, p.deliveries)}
<p><a href="/deliveries?link=${l.id}">${v.t('all_deliveries')}</a></p>
<h2>${v.t('findings')}</h2>${findingTable(v, p.findings)}
<h2>${v.t('anomalies')}</h2>${anomalyTable(v, p.anomalies)}
<h2>${v.t('notices')}</h2>${noticeTable(v, p.notices.map((n) => ({ ...n, agency: l.agency })))}`,
    flash,
  );
}

/** A page that asks before anything dangerous happens; the form posts back with confirm=yes. */
/**
 * R-F9: an approval records NIA's reply letter (number and date); a link's also needs the agency's
 * stamped form, which a browser form cannot carry here: it is stored beforehand and named on the link.
 */
function replyLetterFields(v: View, link: boolean): Html {
  const zh = v.lang !== 'en';
  return html`<label for="letterNo">${zh ? '移民署函復文號' : "NIA's reply letter no."}</label><input id="letterNo" name="letterNo" required maxlength="200">
<label for="letterDate">${zh ? '函復日期' : 'Date of the letter'}</label><input id="letterDate" name="letterDate" type="date" required>
${link ? html`<p class="muted">${zh ? '機關用印之申請書須先存檔：nia-link link stamped-form 連結案號 檔案' : "The agency's stamped form must be on file first: nia-link link stamped-form LINK FILE"}</p>` : ''}`;
}

export function confirmPage(v: View, o: { title: string; question: string; subject: Html; action: string; back: string; reason?: boolean; danger?: boolean }): string {
  return layout(
    v,
    v.t('confirmTitle'),
    html`<h1>${o.title}</h1><div class="confirm"><p><strong>${o.question}</strong></p>${o.subject}
<form method="post" action="${o.action}">${csrf(v)}<input type="hidden" name="confirm" value="yes">
${o.reason ? html`<label for="reason">${v.t('reason')}</label><textarea id="reason" name="reason" required maxlength="2000"></textarea>` : ''}
${/\/approve$/.test(o.action) ? replyLetterFields(v, o.action.startsWith('/links/')) : ''}
<div class="actions"><button type="submit" class="${o.danger ? 'danger' : ''}">${v.t('confirm')}</button><a class="button secondary" href="${o.back}">${v.t('cancel')}</a></div></form></div>`,
  );
}

// ---- batch requests and subject lists (R2.2, R3.4) ----

export function batchesPage(v: View, rows: BatchListItem[], linkId?: number): string {
  return layout(
    v,
    v.t('batches'),
    html`<h1>${v.t('batches')}${linkId ? html` · ${v.t('link')} ${linkTo(linkId)}` : ''}</h1>
<p>${v.t('batchNote')}</p>
<form class="filters" method="get" action="/batches"><label>${v.t('link')}<input name="link" value="${linkId ?? ''}" inputmode="numeric" size="6"></label><button type="submit">${v.t('filter')}</button></form>
${table(
  [v.t('id'), v.t('link'), v.t('receivedAt'), v.t('kind'), v.t('file'), v.t('account'), v.t('status'), v.t('code'), numHead(v.t('identifiers')), numHead(v.t('matched')), numHead(v.t('rows')), v.t('reference'), v.t('result')],
  rows.map((r) => [
    r.id,
    linkTo(r.link),
    taipeiTime(r.receivedAt),
    r.kind,
    html`<span class="mono">${r.name}</span>`,
    r.account,
    badge(r.state === 'refused' ? 'failed' : r.state === 'pending' || r.state === 'processing' ? 'pending' : 'active', r.state),
    r.code ?? '',
    numCell(r.ids),
    numCell(r.matched),
    numCell(r.rows),
    r.reference ?? '',
    r.file ? html`<span class="mono">${r.file}</span>` : '',
  ]),
  v.t('none'),
)}`,
  );
}

// ---- deliveries ----

export function deliveriesPage(v: View, rows: DeliveryView[], linkId?: number): string {
  return layout(
    v,
    v.t('deliveries'),
    html`<h1>${v.t('deliveries')}${linkId ? html` · ${v.t('link')} ${linkTo(linkId)}` : ''}</h1>
<form class="filters" method="get" action="/deliveries"><label>${v.t('link')}<input name="link" value="${linkId ?? ''}" inputmode="numeric" size="6"></label><button type="submit">${v.t('filter')}</button></form>
${deliveryTable(v, rows)}`,
  );
}

export function deliveryPage(v: View, p: DeliveryPage, flash: { ok: boolean; text: string } | null): string {
  const d = p.delivery;
  const file = d.path ? d.path.split('/').pop()! : null;
  return layout(
    v,
    `${v.t('delivery')} #${d.id}`,
    html`<h1>${v.t('delivery')} #${d.id} · ${v.t('link')} ${linkTo(d.link)} ${badge(d.status, d.status)}</h1>
${kv([
  [v.t('link'), linkTo(d.link)],
  [v.t('revision'), d.revision],
  [v.t('status'), badge(d.status, d.status)],
  [v.t('mode'), d.mode],
  [v.t('trigger'), d.trigger],
  [v.t('dataset'), d.dataset],
  [v.t('fields'), d.fields.join(', ')],
  [v.t('rows'), num(d.rows)],
  [v.t('bytes'), d.bytes !== null ? `${bytes(d.bytes)} (${num(d.bytes)})` : ''],
  [v.t('file'), html`<span class="mono">${file}</span>`],
  [v.t('sha256'), html`<span class="mono">${d.sha256}</span>`],
  [v.t('plainSha256'), html`<span class="mono">${d.plainSha256}</span>`],
  [v.t('createdAt'), taipeiTime(d.createdAt)],
  [v.t('builtAt'), taipeiTime(d.builtAt)],
  [v.t('expiresAt'), taipeiTime(d.expiresAt)],
  [v.t('error'), d.error],
])}
<h2>${v.t('pushOutcomes')}</h2>
${table(
  [v.t('channel'), v.t('status'), numHead(v.t('attempts')), v.t('time'), v.t('detail'), v.t('error')],
  Object.entries(d.channels).map(([c, raw]) => {
    const o = raw as Record<string, unknown>;
    const detail = [o.remotePath, o.messageId, Array.isArray(o.recipients) ? (o.recipients as string[]).join(', ') : null].filter(Boolean).join(' ');
    return [c, badge(String(o.status), String(o.status)), numCell(typeof o.attempts === 'number' ? o.attempts : null), taipeiTime(o.at as string), html`<span class="mono">${detail}</span>`, o.error as string | null];
  }),
  v.t('none'),
)}
${p.retryable.length && can(v, 'admin', 'operator') ? html`<form method="post" action="/deliveries/${d.id}/retry" class="actions">${csrf(v)}<button type="submit" id="retry">${v.t('retry')} (${p.retryable.join(', ')})</button></form>` : ''}
<h2>${v.t('downloads')}</h2>
${table(
  [v.t('time'), v.t('account'), v.t('ip'), v.t('file'), v.t('bytes'), v.t('result')],
  p.downloads.map((x) => [taipeiTime(x.at), x.account, x.ip, html`<span class="mono">${x.file}</span>`, numCell(x.bytes), badge(x.result, x.result)]),
  v.t('none'),
)}`,
    flash,
  );
}

// ---- usage log ----

export interface LogPageInput {
  filters: { link?: number; agency?: string; type?: string; actor?: string; from?: string; to?: string };
  rows: usageLog.UsageLogRow[];
  before: number | null;
  types: string[];
  agencies: string[];
  verify?: { ok: boolean; records: number; lastSeq: number | null; bad?: { seq: number; reason: string } };
  status: LogStatus;
}

export function logPage(v: View, p: LogPageInput): string {
  const f = p.filters;
  const option = (value: string, selected: boolean) => html`<option value="${value}" ${selected ? new Html('selected') : ''}>${value || v.t('all')}</option>`;
  const base = { link: f.link, agency: f.agency, type: f.type, actor: f.actor, from: f.from, to: f.to };
  return layout(
    v,
    v.t('usageLog'),
    html`<h1>${v.t('usageLog')}</h1>
${p.verify ? html`<div class="flash ${p.verify.ok ? 'ok' : 'bad'}" role="status">${p.verify.ok ? html`${v.t('chainOk')}: ${num(p.verify.records)} ${v.t('records')}` : html`${v.t('chainBad')} ${p.verify.bad?.seq}: ${p.verify.bad?.reason}`}</div>` : ''}
<p class="muted">${v.t('logHead')} ${p.status.headSeq ?? '—'} · ${v.t('newestCheckpoint')} ${p.status.checkpoint ? `${p.status.checkpoint.seq} (${taipeiTime(p.status.checkpoint.at)})` : v.t('none')} · ${v.t('lastVerified')} ${p.status.verified ? html`${taipeiTime(p.status.verified.at)} ${p.status.verified.actor ?? ''} ${badge(p.status.verified.ok ? 'ok' : 'failed', p.status.verified.ok ? 'ok' : 'FAILED')}` : v.t('none')}</p>
<form class="filters" method="get" action="/log">
<label>${v.t('link')}<input name="link" value="${f.link ?? ''}" inputmode="numeric" size="6"></label>
<label>${v.t('agency')}<select name="agency">${option('', !f.agency)}${p.agencies.map((a) => option(a, f.agency === a))}</select></label>
<label>${v.t('type')}<select name="type">${option('', !f.type)}${p.types.map((x) => option(x, f.type === x))}</select></label>
<label>${v.t('actor')}<input name="actor" value="${f.actor ?? ''}" size="12"></label>
<label>${v.t('from')}<input name="from" type="date" value="${f.from ?? ''}"></label>
<label>${v.t('to')}<input name="to" type="date" value="${f.to ?? ''}"></label>
<button type="submit">${v.t('filter')}</button>
<a class="button secondary" href="/log${qs({ ...base, verify: 1 })}">${v.t('verifyChain')}</a>
<a class="button secondary" href="/log/export.csv${qs(base)}">${v.t('exportCsv')}</a>
</form>
${table(
  [v.t('seq'), v.t('time'), v.t('type'), v.t('agency'), v.t('link'), v.t('revision'), v.t('actor'), v.t('ip'), v.t('channel'), v.t('object'), v.t('detail')],
  p.rows.map((r) => [numCell(r.seq), taipeiTime(r.at), r.type, r.agency, r.linkId ? linkTo(r.linkId) : '', r.revision, r.actor, r.ip, r.channel, monoCell(r.object), monoCell(r.detail === '{}' ? '' : r.detail)]),
  v.t('none'),
)}
<div class="pager"><a href="/log${qs(base)}">${v.t('newest')}</a>${p.before !== null ? html`<a href="/log${qs({ ...base, before: p.before })}" rel="next">${v.t('older')}</a>` : ''}</div>`,
  );
}

// ---- compliance and anomalies ----

function noticeTable(v: View, rows: { id: number; agency: string | null; linkId: number | null; kind: string; createdAt: string; recipients: string[]; textZh: string; textEn: string }[]): Html {
  return table(
    [v.t('id'), v.t('agency'), v.t('link'), v.t('kind'), v.t('date'), v.t('recipients'), v.t('text')],
    rows.map((n) => [n.id, n.agency, n.linkId ? linkTo(n.linkId) : '', n.kind, taipeiTime(n.createdAt), n.recipients.join(', '), html`<details><summary>${v.t('text')}</summary><pre>${v.lang === 'en' ? n.textEn : n.textZh}</pre></details>`]),
    v.t('none'),
  );
}

export function compliancePage(v: View, p: { calendar: CalendarEntry[]; attention: string[]; findings: Parameters<typeof findingTable>[1]; audits: Awaited<ReturnType<ConsoleData['audits']>>; notices: Awaited<ReturnType<ConsoleData['notices']>> }): string {
  return layout(
    v,
    v.t('compliance'),
    html`<h1>${v.t('compliance')}</h1>
<h2>${v.t('calendar')}</h2>${calendarTable(v, p.calendar)}
<h2>${v.t('attention')}</h2>${p.attention.length ? html`<ul>${p.attention.map((a) => html`<li>${a}</li>`)}</ul>` : html`<p class="muted">${v.t('none')}</p>`}
<h2>${v.t('findings')}</h2>${findingTable(v, p.findings)}
<h2>${v.t('audits')}</h2>
${table(
  [v.t('id'), v.t('agency'), v.t('link'), v.t('kind'), v.t('date'), v.t('auditor'), v.t('summary')],
  p.audits.map((a) => [a.id, a.agency, a.linkId ? linkTo(a.linkId) : '', a.kind, a.date, a.auditor, a.summary]),
  v.t('none'),
)}
<h2>${v.t('notices')}</h2>${noticeTable(v, p.notices)}`,
  );
}

export function anomaliesPage(v: View, rows: AnomalyRow[], f: { status?: string; rule?: string }, rules: readonly string[]): string {
  const option = (value: string, label: string, selected: boolean) => html`<option value="${value}" ${selected ? new Html('selected') : ''}>${label}</option>`;
  return layout(
    v,
    v.t('anomalies'),
    html`<h1>${v.t('anomalies')}</h1>
<form class="filters" method="get" action="/anomalies">
<label>${v.t('status')}<select name="status">${option('', v.t('all'), !f.status)}${['open', 'dismissed', 'finding'].map((s) => option(s, s, f.status === s))}</select></label>
<label>${v.t('rule')}<select name="rule">${option('', v.t('all'), !f.rule)}${rules.map((r) => option(r, r, f.rule === r))}</select></label>
<button type="submit">${v.t('filter')}</button></form>
${anomalyTable(v, rows)}`,
  );
}

// ---- operators ----

export function operatorsPage(v: View, rows: OperatorView[], now: string, flash: { ok: boolean; text: string } | null): string {
  return layout(
    v,
    v.t('operators'),
    html`<h1>${v.t('operators')}</h1>
${table(
  [v.t('username'), v.t('role'), v.t('status'), v.t('totp'), v.t('lastLogin'), ''],
  rows.map((o) => {
    const locked = o.lockedUntil !== null && o.lockedUntil > now;
    const state = o.disabled ? badge('failed', v.t('disabled')) : locked ? badge('pending', `${v.t('locked')} ${taipeiTime(o.lockedUntil)}`) : badge('ok', v.t('enabled'));
    const post = (action: string, label: string) => html`<form method="post" action="/operators/${o.username}/${action}">${csrf(v)}<button type="submit" class="secondary">${label}</button></form>`;
    const acts = [locked || o.failedLogins ? post('unlock', v.t('unlock')) : '', o.disabled ? post('enable', v.t('enable')) : o.username !== v.op?.username ? html`<a class="button danger" href="/operators/${o.username}/disable">${v.t('disable')}</a>` : ''];
    return [o.username, v.t(`role_${o.role}` as MessageKey), state, o.totp ? v.t('yes') : v.t('no'), taipeiTime(o.lastLoginAt), html`<div class="actions">${acts}</div>`];
  }),
  v.t('none'),
)}`,
    flash,
  );
}

// ---- errors ----

export function messagePage(v: View, title: string, message: string): string {
  return layout(v, title, html`<h1>${title}</h1><p>${message}</p><p><a href="/">${v.t('overview')}</a></p>`);
}
