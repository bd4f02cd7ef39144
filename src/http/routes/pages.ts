import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { LinkStatus } from '../../domain';
import { csvLine } from '../../extract';
import { UserError } from '../../errors';
import { appendLog, RULES } from '../../usagelog';
import { spreadsheetSafe } from '../../usagelog/csv-safe';
import { ADMIN, ALL_ROLES, AUDIT, OPERATE, cookie, protect, secureRequest, sessionCookieName } from '../auth';
import { type ConsoleContext, viewOf } from '../context';
import { html } from '../html';
import type { MessageKey } from '../i18n';
import { CONSOLE } from '../operators';
import * as views from '../views';
import { ID_PARAMS, LOG_QUERY, logQuery, type LogQueryString } from './schemas';

const send = (reply: FastifyReply, page: string) => reply.type('text/html; charset=utf-8').send(page);

/** After a POST, the page says what happened: a fixed message per key, never text from the URL. */
const DONE: Record<string, MessageKey> = { retried: 'retryQueued', done: 'done' };
function flash(req: FastifyRequest): { ok: boolean; text: string } | null {
  const done = (req.query as { done?: string }).done;
  return done && DONE[done] ? { ok: true, text: viewOf(req).t(DONE[done]) } : null;
}

const CONFIRM_BODY = {
  type: 'object',
  properties: { confirm: { const: 'yes' }, reason: { type: 'string', minLength: 1, maxLength: 2000 }, _csrf: { type: 'string' } },
  required: ['confirm'],
} as const;
const REASON_BODY = { ...CONFIRM_BODY, required: ['confirm', 'reason'] } as const;
const DONE_QUERY = { type: 'object', properties: { done: { type: 'string', maxLength: 20 }, lang: { type: 'string' } } } as const;

/**
 * The server-rendered console. Every route names the roles that may use it; the scope's hooks
 * refuse everyone else, check the origin and CSRF token of every form, and log every action.
 */
export async function pageRoutes(app: FastifyInstance, ctx: ConsoleContext): Promise<void> {
  const { data, actions, operators, config, cdb, clock } = ctx;
  protect(app, { ...ctx, forbiddenPage: (req) => views.messagePage(viewOf(req), viewOf(req).t('refused'), viewOf(req).t('forbidden')) }, { kind: 'page' });
  type Id = { Params: { id: number } };

  app.get('/', { config: { roles: ALL_ROLES } }, async (req, reply) => send(reply, views.overviewPage(viewOf(req), await data.overview())));

  app.get('/agencies', { config: { roles: ALL_ROLES } }, async (req, reply) => send(reply, views.agenciesPage(viewOf(req), await data.agencies())));

  app.get<{ Querystring: { status?: LinkStatus; agency?: string } }>(
    '/links',
    { config: { roles: ALL_ROLES }, schema: { querystring: { type: 'object', properties: { status: { enum: ['', 'pending', 'active', 'suspended', 'terminated', 'rejected'] }, agency: { type: 'string', maxLength: 20 }, lang: { type: 'string' } } } } },
    async (req, reply) => {
      const f = { status: req.query.status || undefined, agency: req.query.agency || undefined };
      return send(reply, views.linksPage(viewOf(req), await data.links(f), f, (await data.agencies()).map((a) => a.code)));
    },
  );

  app.get<Id>('/links/:id', { config: { roles: ALL_ROLES }, schema: { params: ID_PARAMS, querystring: DONE_QUERY } }, async (req, reply) => send(reply, views.linkPage(viewOf(req), await data.link(req.params.id), flash(req))));

  // ---- decisions (admin), each behind a confirmation page ----

  const subject = async (req: FastifyRequest, linkId: number) => {
    const l = (await data.link(linkId)).link;
    const v = viewOf(req);
    return html`<p>${v.t('link')} #${l.id} · ${l.agency} ${l.agencyName} · ${l.dataset}</p><p>${v.t('purpose')}: ${l.purpose}</p>`;
  };
  const decisions: { path: string; question: MessageKey; title: MessageKey; reason: boolean; danger: boolean; linkOf: (id: number) => Promise<number> | number; run: (req: FastifyRequest, id: number, reason: string) => Promise<number> | number }[] = [
    { path: '/links/:id/approve', title: 'approve', question: 'confirmApproveLink', reason: false, danger: false, linkOf: (id) => id, run: async (req, id) => (await actions.approveLink(req, id), id) },
    { path: '/links/:id/reject', title: 'reject', question: 'confirmRejectLink', reason: true, danger: true, linkOf: (id) => id, run: async (req, id, reason) => (await actions.rejectLink(req, id, reason), id) },
    { path: '/links/:id/suspend', title: 'suspend', question: 'confirmSuspendLink', reason: true, danger: true, linkOf: (id) => id, run: async (req, id, reason) => (await actions.suspendLink(req, id, reason), id) },
    { path: '/changes/:id/approve', title: 'approve', question: 'confirmApproveChange', reason: false, danger: false, linkOf: (id) => actions.linkOfChange(id), run: (req, id) => actions.approveChange(req, id) },
    { path: '/changes/:id/reject', title: 'reject', question: 'confirmRejectChange', reason: true, danger: true, linkOf: (id) => actions.linkOfChange(id), run: (req, id, reason) => actions.rejectChange(req, id, reason) },
  ];
  for (const d of decisions) {
    app.get<Id>(d.path, { config: { roles: ADMIN }, schema: { params: ID_PARAMS } }, async (req, reply) => {
      const v = viewOf(req);
      const linkId = await d.linkOf(req.params.id);
      const action = d.path.replace(':id', String(req.params.id));
      return send(reply, views.confirmPage(v, { title: `${v.t(d.title)} · ${action.startsWith('/changes') ? `${v.t('changeRequests')} #${req.params.id}` : `${v.t('link')} #${linkId}`}`, question: v.t(d.question), subject: await subject(req, linkId), action, back: `/links/${linkId}`, reason: d.reason, danger: d.danger }));
    });
    app.post<Id & { Body: { reason?: string } }>(d.path, { config: { roles: ADMIN }, schema: { params: ID_PARAMS, body: d.reason ? REASON_BODY : CONFIRM_BODY } }, async (req, reply) => {
      const linkId = await d.run(req, req.params.id, req.body.reason ?? '');
      return reply.redirect(`/links/${linkId}?done=done`, 303);
    });
  }

  // ---- batch requests and subject lists ----

  app.get<{ Querystring: { link?: number } }>('/batches', { config: { roles: ALL_ROLES }, schema: { querystring: { type: 'object', properties: { link: { type: 'integer', minimum: 1 }, lang: { type: 'string' } } } } }, async (req, reply) =>
    send(reply, views.batchesPage(viewOf(req), await data.batches(req.query.link), req.query.link)),
  );

  // ---- deliveries ----

  app.get<{ Querystring: { link?: number } }>('/deliveries', { config: { roles: ALL_ROLES }, schema: { querystring: { type: 'object', properties: { link: { type: 'integer', minimum: 1 }, lang: { type: 'string' } } } } }, async (req, reply) =>
    send(reply, views.deliveriesPage(viewOf(req), await data.deliveries(req.query.link), req.query.link)),
  );

  app.get<Id>('/deliveries/:id', { config: { roles: ALL_ROLES }, schema: { params: ID_PARAMS, querystring: DONE_QUERY } }, async (req, reply) => send(reply, views.deliveryPage(viewOf(req), await data.delivery(req.params.id), flash(req))));

  app.post<Id>('/deliveries/:id/retry', { config: { roles: OPERATE }, schema: { params: ID_PARAMS } }, async (req, reply) => {
    await actions.retryDelivery(req, req.params.id);
    return reply.redirect(`/deliveries/${req.params.id}?done=retried`, 303);
  });

  // ---- usage log (admins and auditors) ----

  app.get<{ Querystring: LogQueryString & { verify?: number } }>('/log', { config: { roles: AUDIT }, schema: { querystring: { ...LOG_QUERY, properties: { ...LOG_QUERY.properties, verify: { type: 'integer' } } } } }, async (req, reply) => {
    const q = logQuery(req.query);
    const page = await data.log(q);
    const verify = req.query.verify ? await data.verifyLog() : undefined;
    if (verify) await cdb.write((tx) => appendLog(tx, { type: 'usage-log.verified', actor: req.operator!.username, ip: req.ip, channel: CONSOLE, detail: { ok: verify.ok, records: verify.records, ...(verify.bad ? { bad: verify.bad } : {}) } }, clock.now()));
    return send(reply, views.logPage(viewOf(req), { filters: q, rows: page.rows, before: page.before, types: await data.logTypes(), agencies: (await data.agencies()).map((a) => a.code), verify, status: await data.logStatus() }));
  });

  const EXPORT_MAX = 100_000;
  app.get<{ Querystring: LogQueryString }>('/log/export.csv', { config: { roles: AUDIT }, schema: { querystring: LOG_QUERY } }, async (req, reply) => {
    const q = logQuery(req.query);
    const page = await data.log({ ...q, before: undefined, limit: EXPORT_MAX });
    const cols = ['seq', 'at', 'type', 'agency', 'link_id', 'revision', 'actor', 'ip', 'channel', 'object', 'detail', 'hash'];
    let out = csvLine(cols);
    for (const r of [...page.rows].reverse()) out += csvLine([r.seq, r.at, r.type, r.agency, r.linkId, r.revision, r.actor, r.ip, r.channel, r.object, r.detail, r.hash].map(spreadsheetSafe));
    await cdb.write((tx) => appendLog(tx, { type: 'usage-log.exported', actor: req.operator!.username, ip: req.ip, channel: CONSOLE, detail: { filters: q, records: page.rows.length, truncated: page.before !== null } }, clock.now()));
    if (page.before !== null) reply.header('X-Truncated', `first ${EXPORT_MAX} records only: narrow the dates`);
    return reply.type('text/csv; charset=utf-8').header('Content-Disposition', `attachment; filename="usage-log-${data.today}.csv"`).send(out);
  });

  // ---- compliance and anomalies ----

  app.get('/compliance', { config: { roles: ALL_ROLES } }, async (req, reply) =>
    send(reply, views.compliancePage(viewOf(req), { calendar: await data.calendar(60), attention: await ctx.services.compliance.status(), findings: await data.findings(), audits: await data.audits(), notices: await data.notices() })),
  );

  app.get<{ Querystring: { status?: 'open' | 'dismissed' | 'finding'; rule?: string } }>(
    '/anomalies',
    { config: { roles: ALL_ROLES }, schema: { querystring: { type: 'object', properties: { status: { enum: ['', 'open', 'dismissed', 'finding'] }, rule: { type: 'string', maxLength: 40 }, lang: { type: 'string' } } } } },
    async (req, reply) => {
      const f = { status: req.query.status || undefined, rule: req.query.rule || undefined };
      return send(reply, views.anomaliesPage(viewOf(req), await data.anomalies(f), f, RULES));
    },
  );

  // ---- operators (admin) ----

  type Name = { Params: { username: string } };
  const NAME_PARAMS = { type: 'object', properties: { username: { type: 'string', pattern: '^[a-z][a-z0-9._-]{1,39}$' } }, required: ['username'] } as const;
  app.get('/operators', { config: { roles: ADMIN }, schema: { querystring: DONE_QUERY } }, async (req, reply) => send(reply, views.operatorsPage(viewOf(req), await operators.list(), clock.now().toISOString(), flash(req))));
  for (const act of ['unlock', 'enable', 'disable'] as const) {
    app.post<Name>(`/operators/:username/${act}`, { config: { roles: ADMIN }, schema: { params: NAME_PARAMS, ...(act === 'disable' ? { body: CONFIRM_BODY } : {}) } }, async (req, reply) => {
      req.audit = { object: `operator:${req.params.username}`, detail: { action: `operator.${act}` } };
      if (act === 'disable' && req.params.username === req.operator!.username) throw new UserError('you cannot disable yourself', 'operator.self');
      await operators[act](req.params.username, req.operator!.username);
      return reply.redirect('/operators?done=done', 303);
    });
  }
  app.get<Name>('/operators/:username/disable', { config: { roles: ADMIN }, schema: { params: NAME_PARAMS } }, async (req, reply) => {
    const v = viewOf(req);
    const o = await operators.show(req.params.username);
    return send(reply, views.confirmPage(v, { title: `${v.t('disable')} · ${o.username}`, question: v.t('confirmDisableOperator'), subject: html`<p>${o.username} (${v.t(`role_${o.role}` as MessageKey)})</p>`, action: `/operators/${o.username}/disable`, back: '/operators', danger: true }));
  });

  // ---- logout ----

  app.post('/logout', { config: { roles: ALL_ROLES } }, async (req, reply) => {
    await operators.logout(req.operator!, req.ip);
    req.audit = { logged: true };
    const secure = secureRequest(req, config.http.secureCookies);
    reply.header('set-cookie', cookie(sessionCookieName(secure), '', { maxAgeSec: 0, secure, sameSite: 'Strict' }));
    return reply.redirect('/login', 303);
  });
}
