import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from '../config';
import type { ControlDb } from '../db';
import type { Clock } from '../domain';
import type { Logger } from '../logger';
import { appendLog } from '../usagelog';
import type { Lang } from './i18n';
import { CONSOLE, type ConsoleSession, type OperatorRole } from './operators';

declare module 'fastify' {
  interface FastifyRequest {
    /** The logged-in operator, or null. */
    operator: ConsoleSession | null;
    lang: Lang;
    /** What the handler of a state-changing request adds to its usage-log record. */
    audit: AuditNote | null;
  }
  interface FastifyContextConfig {
    /** Who may use the route. Every route of a protected scope has it; registering one without it fails. */
    roles?: readonly OperatorRole[];
    /** Reachable without a login (only in the public scope). */
    public?: boolean;
  }
}

export interface AuditNote {
  linkId?: number | null;
  agency?: string | null;
  object?: string;
  detail?: Record<string, unknown>;
  /** The handler wrote its own record (logout). */
  logged?: boolean;
}

export const ALL_ROLES: readonly OperatorRole[] = ['admin', 'operator', 'auditor'];
export const ADMIN: readonly OperatorRole[] = ['admin'];
/** Queue work: retrying pushes, pausing queues. */
export const OPERATE: readonly OperatorRole[] = ['admin', 'operator'];
/** The usage log (who accessed what, from where) is for auditors and admins. */
export const AUDIT: readonly OperatorRole[] = ['admin', 'auditor'];

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
export const isUnsafe = (method: string) => UNSAFE.has(method);

// ---- cookies ----

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const k = part.slice(0, i).trim();
    if (k && !(k in out)) {
      try {
        out[k] = decodeURIComponent(part.slice(i + 1).trim());
      } catch {
        // a malformed cookie is no cookie
      }
    }
  }
  return out;
}

/** Secure cookies when the request came over TLS (or always/never, as configured). */
export function secureRequest(req: FastifyRequest, mode: Config['http']['secureCookies']): boolean {
  return mode === 'always' || (mode === 'auto' && req.protocol === 'https');
}

/** `__Host-` binds the cookie to this host and path `/`, but browsers take it only with Secure. */
export const sessionCookieName = (secure: boolean) => (secure ? '__Host-nia-session' : 'nia-session');

export function cookie(name: string, value: string, o: { maxAgeSec: number; secure: boolean; sameSite: 'Strict' | 'Lax' }): string {
  return `${name}=${encodeURIComponent(value)}; Path=/; Max-Age=${o.maxAgeSec}; HttpOnly; SameSite=${o.sameSite}${o.secure ? '; Secure' : ''}`;
}

export function sessionToken(req: FastifyRequest, mode: Config['http']['secureCookies']): string | undefined {
  return parseCookies(req.headers.cookie)[sessionCookieName(secureRequest(req, mode))];
}

// ---- the same-origin check of state-changing requests ----

/** The origin the browser sees for this request. */
export const ownOrigin = (req: FastifyRequest) => `${req.protocol}://${req.host}`;

/**
 * Where the request says it comes from: 'same', 'cross', or 'unknown' when the browser sent neither
 * Origin nor Referer (browsers send Origin with every POST/PUT/PATCH/DELETE; other clients may not).
 */
export function requestOrigin(req: FastifyRequest): 'same' | 'cross' | 'unknown' {
  const own = ownOrigin(req);
  const origin = req.headers.origin;
  if (origin !== undefined) return origin === own ? 'same' : 'cross';
  const referer = req.headers.referer;
  if (referer !== undefined) return referer === own || referer.startsWith(own + '/') ? 'same' : 'cross';
  return 'unknown';
}

function sameToken(given: unknown, expected: string): boolean {
  if (typeof given !== 'string' || given.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}

/** The CSRF token a request carries: the `_csrf` form field or the X-CSRF-Token header. */
export function csrfTokenOf(req: FastifyRequest): unknown {
  const header = req.headers['x-csrf-token'];
  if (typeof header === 'string') return header;
  const body = req.body as Record<string, unknown> | undefined;
  return body && typeof body === 'object' ? body._csrf : undefined;
}

// ---- scopes ----

export type ScopeKind = 'page' | 'api' | 'queues' | 'metrics';

export interface ScopeOptions {
  kind: ScopeKind;
  /** For routes registered by code that cannot declare roles (bull-board): who may use each. */
  rolesFor?: (route: RouteOptions) => readonly OperatorRole[];
  /** Accept `Authorization: Bearer <token>` instead of a session (metrics scrapers). */
  bearer?: (token: string) => boolean;
  /** Ask for the CSRF token only when the browser did not prove the origin (bull-board's own UI cannot send it). */
  originSuffices?: boolean;
}

export interface GuardDeps {
  cdb: ControlDb;
  clock: Clock;
  log: Logger;
  /** Page answers for refusals (pages scope only). */
  forbiddenPage?: (req: FastifyRequest) => string;
}

const wantsRedirect = (kind: ScopeKind, req: FastifyRequest) =>
  req.method === 'GET' && (kind === 'page' || (kind === 'queues' && !/\/api\//.test(req.url)));

/**
 * Protect every route of a scope (an encapsulated plugin): the hooks run for each of its routes, and
 * a route that does not say which roles may use it cannot be registered, so none is forgotten.
 * Anonymous requests are sent to the login page (pages) or get 401; a role that may not use a
 * route gets 403. State-changing requests must come from our own origin and carry the session's
 * CSRF token, and each one, allowed or refused, is written to the usage log with who and from where.
 */
export function protect(scope: FastifyInstance, deps: GuardDeps, opts: ScopeOptions): void {
  scope.addHook('onRoute', (route) => {
    const roles = route.config?.roles ?? opts.rolesFor?.(route);
    if (!roles) throw new Error(`route ${String(route.method)} ${route.url} says no roles: every console route must`);
    route.config = { ...route.config, roles };
  });

  scope.addHook('onRequest', async (req, reply) => {
    if (opts.bearer) {
      const auth = req.headers.authorization;
      if (auth?.startsWith('Bearer ') && opts.bearer(auth.slice(7).trim())) return;
    }
    const op = req.operator;
    if (!op) {
      if (wantsRedirect(opts.kind, req)) return reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 303);
      if (opts.kind === 'metrics') reply.header('WWW-Authenticate', 'Bearer realm="nia-link"');
      return reply.code(401).send({ error: 'login required' });
    }
    const roles = req.routeOptions.config.roles ?? [];
    if (!roles.includes(op.role)) {
      if (opts.kind === 'page' && deps.forbiddenPage) return reply.code(403).type('text/html; charset=utf-8').send(deps.forbiddenPage(req));
      return reply.code(403).send({ error: `the ${op.role} role may not use this` });
    }
  });

  scope.addHook('preValidation', async (req, reply) => {
    if (!isUnsafe(req.method) || !req.operator) return;
    const origin = requestOrigin(req);
    if (origin === 'cross') return reply.code(403).send({ error: 'cross-origin request refused' });
    if (opts.originSuffices && origin === 'same') return;
    if (!sameToken(csrfTokenOf(req), req.operator.csrfToken)) return reply.code(403).send({ error: 'missing or wrong CSRF token: reload the page and try again' });
  });

  scope.addHook('onResponse', async (req, reply) => {
    if (!isUnsafe(req.method) || !req.operator || req.audit?.logged) return;
    const note = req.audit ?? {};
    const status = reply.statusCode;
    try {
      await deps.cdb.write((tx) =>
        appendLog(
          tx,
          {
            type: status === 403 ? 'operator.denied' : 'operator.action',
            actor: req.operator!.username,
            ip: req.ip,
            channel: CONSOLE,
            linkId: note.linkId ?? null,
            agency: note.agency ?? null,
            object: note.object ?? `${req.method} ${req.routeOptions.url ?? req.url}`,
            detail: { request: `${req.method} ${req.routeOptions.url ?? ''}`, params: req.params ?? {}, status, ...note.detail },
          },
          deps.clock.now(),
        ),
      );
    } catch (err) {
      deps.log.error({ err: (err as Error).message, url: req.url }, 'http: usage-log record of an operator action not written');
    }
  });
}

// ---- login attempts per address ----

/**
 * Login attempts per source address in a fixed window, counted in Redis so every HTTP process
 * shares the count. If Redis does not answer, logins go on: the per-operator lockout, kept in the
 * database, still holds.
 */
export class LoginLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly settings: Config['http']['login'],
    private readonly log: Logger,
  ) {}

  /** Count one attempt; `allowed` false once the address is over the limit, `first` on its first refusal of the window. */
  async hit(ip: string): Promise<{ allowed: boolean; first: boolean; retryAfterSec: number }> {
    const key = `${this.prefix}:http:login:${ip}`;
    const windowMs = this.settings.ipWindowMinutes * 60_000;
    try {
      const [[, n], [, ttl]] = (await this.redis.multi().incr(key).pttl(key).exec()) as [[null, number], [null, number]];
      if (ttl < 0) await this.redis.pexpire(key, windowMs);
      const allowed = n <= this.settings.ipMaxAttempts;
      return { allowed, first: n === this.settings.ipMaxAttempts + 1, retryAfterSec: Math.ceil((ttl < 0 ? windowMs : ttl) / 1000) };
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'http: login limiter unavailable (redis); per-operator lockout still applies');
      return { allowed: true, first: false, retryAfterSec: 0 };
    }
  }
}
