import type { FastifyInstance } from 'fastify';
import { appendLog } from '../../usagelog';
import { ASSETS } from '../assets';
import { cookie, requestOrigin, secureRequest, sessionCookieName } from '../auth';
import { type ConsoleContext, viewOf } from '../context';
import { loginPage } from '../views';
import { CONSOLE } from '../operators';

const PUBLIC = { public: true } as const;

/** An origin no request can have: `next` is resolved against it, and anything that leaves it is refused. */
const OWN = 'http://console.invalid';

/**
 * The way back after login: only a path of this site that one of the console's pages serves.
 * Browsers drop tabs and newlines from a URL and read a backslash as a slash, so `/<TAB>/evil.example`
 * or `/<backslash>evil.example` would take the operator off-site: such forms are refused before and
 * after percent-decoding, and the result is rebuilt from the resolved URL rather than passed through.
 * `routes`: the first path segments of the console's pages ('' for `/`).
 */
export function safeNext(next: unknown, routes: ReadonlySet<string>): string {
  if (typeof next !== 'string' || next.length === 0 || next.length > 512) return '/';
  let decoded: string;
  try {
    decoded = decodeURIComponent(next);
  } catch {
    return '/';
  }
  for (const form of [next, decoded]) {
    if (/[\\\s\p{Cc}\p{Cf}]/u.test(form)) return '/';
  }
  const pathOf = (s: string) => s.split(/[?#]/, 1)[0];
  for (const p of [pathOf(next), pathOf(decoded)]) {
    if (!p.startsWith('/') || p.includes('//')) return '/';
  }
  let url: URL;
  try {
    url = new URL(next, OWN);
  } catch {
    return '/';
  }
  if (url.origin !== OWN) return '/';
  const first = url.pathname.split('/')[1] ?? '';
  if (!routes.has(first)) return '/';
  return url.pathname + url.search;
}

/** First segments of the pages an operator may be sent back to: the protected GET routes. */
function pageSegments(app: FastifyInstance): Set<string> {
  const out = new Set<string>();
  for (const r of app.inventory) {
    if (r.method !== 'GET' || r.public) continue;
    const first = r.url.split('/')[1] ?? '';
    if (!/^[:*]/.test(first)) out.add(first);
  }
  return out;
}

/**
 * What anyone may reach: /healthz (says only whether the database and Redis answer), the login
 * page, and the stylesheet. Nothing else is registered here.
 */
export async function publicRoutes(app: FastifyInstance, ctx: ConsoleContext): Promise<void> {
  const { cdb, redis, operators, limiter, config, clock } = ctx;
  // Built on first use: by then every plugin has registered its routes.
  let segments: Set<string> | undefined;
  const back = (next: unknown) => safeNext(next, (segments ??= pageSegments(app)));

  app.get('/healthz', { config: PUBLIC }, async (_req, reply) => {
    let db = 'ok';
    let rd = 'ok';
    try {
      await cdb.ping();
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
    const next = back(req.query.next);
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
    const next = back(req.body.next);
    const page = (status: number, error: string) => reply.code(status).type('text/html; charset=utf-8').send(loginPage(v, { next, error, username: req.body.username }));
    // A login form posted from another site would log the victim into the attacker's account.
    if (requestOrigin(req) === 'cross') return page(403, v.t('loginFailed'));
    const limit = await limiter.hit(req.ip);
    if (!limit.allowed) {
      if (limit.first) await cdb.write((tx) => appendLog(tx, { type: 'auth.failed', ip: req.ip, channel: CONSOLE, detail: { reason: 'rate-limited', attempts: config.http.login.ipMaxAttempts, windowMinutes: config.http.login.ipWindowMinutes } }, clock.now()));
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
