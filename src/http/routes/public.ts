import type { FastifyInstance } from 'fastify';
import { appendLog } from '../../usagelog';
import { ASSETS } from '../assets';
import { cookie, requestOrigin, secureRequest, sessionCookieName } from '../auth';
import { type ConsoleContext, viewOf } from '../context';
import { loginPage } from '../views';
import { CONSOLE } from '../operators';

const PUBLIC = { public: true } as const;

/** Only a path of this site: never `//host`, `/\host` or a scheme, which browsers would follow off-site. */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || /[\\\r\n]/.test(next) || next.startsWith('/login')) return '/';
  return next.slice(0, 512);
}

/**
 * What anyone may reach: /healthz (says only whether the database and Redis answer), the login
 * page, and the stylesheet. Nothing else is registered here.
 */
export async function publicRoutes(app: FastifyInstance, ctx: ConsoleContext): Promise<void> {
  const { cdb, redis, operators, limiter, config, clock } = ctx;

  app.get('/healthz', { config: PUBLIC }, async (_req, reply) => {
    let db = 'ok';
    let rd = 'ok';
    try {
      cdb.sqlite.prepare('SELECT 1').get();
    } catch {
      db = 'down';
    }
    try {
      await Promise.race([redis.ping(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 1000))]);
    } catch {
      rd = 'down';
    }
    const healthy = db === 'ok' && rd === 'ok';
    return reply.code(healthy ? 200 : 503).send({ status: healthy ? 'ok' : 'degraded', db, redis: rd });
  });

  app.get<{ Params: { name: string } }>('/static/:name', { config: PUBLIC, schema: { params: { type: 'object', properties: { name: { type: 'string', maxLength: 64 } }, required: ['name'] } } }, async (req, reply) => {
    const a = ASSETS[req.params.name];
    if (!a) return reply.callNotFound();
    return reply.type(a.type).header('Cache-Control', 'public, max-age=31536000, immutable').send(a.body);
  });

  app.get<{ Querystring: { next?: string } }>('/login', { config: PUBLIC, schema: { querystring: { type: 'object', properties: { next: { type: 'string', maxLength: 2048 }, lang: { type: 'string' } } } } }, async (req, reply) => {
    const next = safeNext(req.query.next);
    if (req.operator) return reply.redirect(next, 303);
    return reply.type('text/html; charset=utf-8').send(loginPage(viewOf(req), { next }));
  });

  const loginBody = {
    type: 'object',
    properties: {
      username: { type: 'string', maxLength: 64 },
      password: { type: 'string', maxLength: 1024 },
      code: { type: 'string', maxLength: 10 },
      next: { type: 'string', maxLength: 2048 },
    },
    required: ['username', 'password'],
  } as const;
  app.post<{ Body: { username: string; password: string; code?: string; next?: string } }>('/login', { config: PUBLIC, schema: { body: loginBody } }, async (req, reply) => {
    const v = viewOf(req);
    const next = safeNext(req.body.next);
    const page = (status: number, error: string) => reply.code(status).type('text/html; charset=utf-8').send(loginPage(v, { next, error, username: req.body.username }));
    // A login form posted from another site would log the victim into the attacker's account.
    if (requestOrigin(req) === 'cross') return page(403, v.t('loginFailed'));
    const limit = await limiter.hit(req.ip);
    if (!limit.allowed) {
      if (limit.first) cdb.write((tx) => appendLog(tx, { type: 'auth.failed', ip: req.ip, channel: CONSOLE, detail: { reason: 'rate-limited', attempts: config.http.login.ipMaxAttempts, windowMinutes: config.http.login.ipWindowMinutes } }, clock.now()));
      reply.header('Retry-After', String(limit.retryAfterSec));
      return page(429, v.t('tooManyAttempts'));
    }
    const r = await operators.login({ username: req.body.username, password: req.body.password, code: req.body.code || undefined, ip: req.ip, userAgent: req.headers['user-agent'] });
    if (!r.ok) return page(401, v.t('loginFailed'));
    const secure = secureRequest(req, config.http.secureCookies);
    reply.header('set-cookie', cookie(sessionCookieName(secure), r.token, { maxAgeSec: config.http.sessionMaxHours * 3600, secure, sameSite: 'Strict' }));
    return reply.redirect(next, 303);
  });
}
