import type { FastifyInstance } from 'fastify';
import type { LinkStatus } from '../../domain';
import { appendLog, RULES } from '../../usagelog';
import { ADMIN, ALL_ROLES, AUDIT, OPERATE, protect } from '../auth';
import type { ConsoleContext } from '../context';
import { CONSOLE } from '../operators';
import { ID_PARAMS, LOG_QUERY, logQuery, type LogQueryString } from './schemas';

const REASON = { type: 'object', properties: { reason: { type: 'string', minLength: 1, maxLength: 2000 } }, required: ['reason'] } as const;

/**
 * The same data as the pages, as JSON, with the same roles. State-changing calls need the session's
 * CSRF token in X-CSRF-Token (GET /api/session tells it).
 */
export async function apiRoutes(app: FastifyInstance, ctx: ConsoleContext): Promise<void> {
  const { data, actions, operators, cdb, clock } = ctx;
  protect(app, ctx, { kind: 'api' });
  type Id = { Params: { id: number } };

  app.get('/session', { config: { roles: ALL_ROLES } }, async (req) => {
    const s = req.operator!;
    return { username: s.username, role: s.role, csrfToken: s.csrfToken, expiresAt: s.expiresAt };
  });

  app.get('/overview', { config: { roles: ALL_ROLES } }, async () => data.overview());
  app.get('/agencies', { config: { roles: ALL_ROLES } }, async () => data.agencies());
  app.get<{ Querystring: { status?: LinkStatus; agency?: string } }>(
    '/links',
    { config: { roles: ALL_ROLES }, schema: { querystring: { type: 'object', properties: { status: { enum: ['pending', 'active', 'suspended', 'terminated', 'rejected'] }, agency: { type: 'string', maxLength: 20 } }, additionalProperties: false } } },
    async (req) => data.links(req.query),
  );
  app.get<Id>('/links/:id', { config: { roles: ALL_ROLES }, schema: { params: ID_PARAMS } }, async (req) => data.link(req.params.id));

  app.post<Id>('/links/:id/approve', { config: { roles: ADMIN }, schema: { params: ID_PARAMS } }, async (req) => {
    await actions.approveLink(req, req.params.id);
    return (await data.link(req.params.id)).link;
  });
  app.post<Id & { Body: { reason: string } }>('/links/:id/reject', { config: { roles: ADMIN }, schema: { params: ID_PARAMS, body: REASON } }, async (req) => {
    await actions.rejectLink(req, req.params.id, req.body.reason);
    return (await data.link(req.params.id)).link;
  });
  app.post<Id & { Body: { reason: string } }>('/links/:id/suspend', { config: { roles: ADMIN }, schema: { params: ID_PARAMS, body: REASON } }, async (req) => {
    await actions.suspendLink(req, req.params.id, req.body.reason);
    return (await data.link(req.params.id)).link;
  });
  app.post<Id>('/changes/:id/approve', { config: { roles: ADMIN }, schema: { params: ID_PARAMS } }, async (req) => data.link(await actions.approveChange(req, req.params.id)));
  app.post<Id & { Body: { reason: string } }>('/changes/:id/reject', { config: { roles: ADMIN }, schema: { params: ID_PARAMS, body: REASON } }, async (req) => data.link(await actions.rejectChange(req, req.params.id, req.body.reason)));

  app.get<{ Querystring: { link?: number; limit?: number } }>(
    '/deliveries',
    { config: { roles: ALL_ROLES }, schema: { querystring: { type: 'object', properties: { link: { type: 'integer', minimum: 1 }, limit: { type: 'integer', minimum: 1, maximum: 1000 } }, additionalProperties: false } } },
    async (req) => data.deliveries(req.query.link, req.query.limit ?? 200),
  );
  app.get<Id>('/deliveries/:id', { config: { roles: ALL_ROLES }, schema: { params: ID_PARAMS } }, async (req) => data.delivery(req.params.id));
  app.post<Id>('/deliveries/:id/retry', { config: { roles: OPERATE }, schema: { params: ID_PARAMS } }, async (req) => ({ delivery: req.params.id, queued: await actions.retryDelivery(req, req.params.id) }));

  app.get<{ Querystring: LogQueryString }>('/usage-log', { config: { roles: AUDIT }, schema: { querystring: LOG_QUERY } }, async (req) => {
    const page = await data.log(logQuery(req.query));
    return { records: page.rows.map((r) => ({ ...r, detail: JSON.parse(r.detail) as unknown })), before: page.before };
  });
  app.get('/usage-log/status', { config: { roles: AUDIT } }, async () => data.logStatus());
  app.get('/usage-log/verify', { config: { roles: AUDIT } }, async (req) => {
    const r = await data.verifyLog();
    await cdb.write((tx) => appendLog(tx, { type: 'usage-log.verified', actor: req.operator!.username, ip: req.ip, channel: CONSOLE, detail: { ok: r.ok, records: r.records, ...(r.bad ? { bad: r.bad } : {}) } }, clock.now()));
    return r;
  });

  app.get<{ Querystring: { link?: number } }>('/findings', { config: { roles: ALL_ROLES }, schema: { querystring: { type: 'object', properties: { link: { type: 'integer', minimum: 1 } }, additionalProperties: false } } }, async (req) => data.findings(req.query.link));
  app.get('/audits', { config: { roles: ALL_ROLES } }, async () => data.audits());
  app.get<{ Querystring: { link?: number } }>('/notices', { config: { roles: ALL_ROLES }, schema: { querystring: { type: 'object', properties: { link: { type: 'integer', minimum: 1 } }, additionalProperties: false } } }, async (req) => data.notices(req.query.link));
  app.get('/compliance', { config: { roles: ALL_ROLES } }, async () => ({ calendar: await data.calendar(60), attention: await ctx.services.compliance.status() }));
  app.get<{ Querystring: { status?: 'open' | 'dismissed' | 'finding'; rule?: string; link?: number } }>(
    '/anomalies',
    { config: { roles: ALL_ROLES }, schema: { querystring: { type: 'object', properties: { status: { enum: ['open', 'dismissed', 'finding'] }, rule: { enum: [...RULES] }, link: { type: 'integer', minimum: 1 } }, additionalProperties: false } } },
    async (req) => data.anomalies(req.query),
  );
  app.get('/queues', { config: { roles: ALL_ROLES } }, async () => data.queueDepths());
  app.get('/operators', { config: { roles: ADMIN } }, async () => operators.list());
}
