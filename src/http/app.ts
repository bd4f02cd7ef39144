import formbody from '@fastify/formbody';
import helmet from '@fastify/helmet';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import { modeOf } from '../db/repositories/installation';
import { queuePrefix } from '../queue';
import { DatabaseBusy } from '../db/busy';
import { type ErrorKind, isUserError, type UserError } from '../errors';
import { ConsoleActions } from './actions';
import { cookie, LoginLimiter, parseCookies, sessionToken } from './auth';
import { type ConsoleContext, type HttpDeps, viewOf } from './context';
import { ConsoleData } from './data';
import { isLang, pickLang } from './i18n';
import { OperatorService } from './operators';
import { apiRoutes } from './routes/api';
import { metricsRoutes } from './routes/metrics';
import { pageRoutes } from './routes/pages';
import { publicRoutes } from './routes/public';
import { queueRoutes } from './routes/queues';
import { messagePage } from './views';

/**
 * The HTTP status of each kind of user error: a missing or malformed input is the request's fault
 * (400); what it names is not there (404); it clashes with what is there (409); the rules or the
 * record's state refuse a well-formed request (422).
 */
export const STATUS_OF_KIND: Readonly<Record<ErrorKind, number>> = { invalid: 400, 'not-found': 404, conflict: 409, refused: 422 };

export type { HttpDeps } from './context';

/** One registered route, as the route-inventory test walks them. */
export interface RouteInfo {
  method: string;
  url: string;
  roles: readonly string[] | null;
  public: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route with who may use it (filled as routes are registered). */
    inventory: RouteInfo[];
    /** A drill installation (it never changes): every page says so. */
    drill: boolean;
  }
}

/** Answers of the JSON parts of the site; everything else is a page. */
const isJson = (req: FastifyRequest) => /^\/(api|metrics)(\/|$|\?)|^\/queues\/(read-only\/)?api\//.test(req.url);

/**
 * The HTTP role: the operator console. Encapsulated plugins, each with its own hooks:
 * public (/healthz, /login, the stylesheet), pages, /api, /queues (bull-board), /metrics. A route
 * outside the public plugin cannot be registered without the roles that may use it.
 */
export async function buildHttpApp(deps: HttpDeps): Promise<FastifyInstance> {
  const { config, log } = deps;
  // Only the listed proxies are believed: req.ip is then the right-most X-Forwarded-For entry they did
  // not add, never the left-most one the client wrote.
  const trustProxy = config.http.trustProxy.length > 0 ? [...config.http.trustProxy] : false;
  const app = Fastify({ logger: false, trustProxy, bodyLimit: 1024 * 1024, return503OnClosing: true });
  app.decorate('inventory', [] as RouteInfo[]);
  app.decorate('drill', (await modeOf(deps.cdb.db)) === 'drill');
  app.addHook('onRoute', (r) => {
    // Read when asked: a scope's own onRoute hook may set the roles after this one ran.
    for (const method of [r.method].flat()) {
      app.inventory.push({
        method,
        url: r.url,
        get roles() {
          return r.config?.roles ?? null;
        },
        get public() {
          return r.config?.public === true;
        },
      });
    }
  });

  const operators = new OperatorService(deps.cdb, deps.clock, config.http);
  const ctx: ConsoleContext = {
    ...deps,
    operators,
    data: new ConsoleData({ cdb: deps.cdb, services: deps.services, queues: Object.values(deps.queues), clock: deps.clock }),
    actions: new ConsoleActions({ cdb: deps.cdb, services: deps.services, deliverQueue: deps.queues.deliver }),
    limiter: new LoginLimiter(deps.redis, queuePrefix(config), config.http.login, log),
  };

  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        baseUri: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    // Not no-referrer: with it, browsers send `Origin: null` on our own form posts, and the origin check needs the real one.
    referrerPolicy: { policy: 'same-origin' },
    frameguard: { action: 'deny' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });
  await app.register(formbody, { bodyLimit: 64 * 1024 });

  app.decorateRequest('operator', null);
  app.decorateRequest('lang', 'zh-TW');
  app.decorateRequest('audit', null);
  app.addHook('onRequest', async (req, reply) => {
    const token = sessionToken(req, config.http.secureCookies);
    req.operator = token ? await operators.session(token) : null;
    const asked = (req.query as Record<string, unknown> | undefined)?.lang;
    req.lang = pickLang(asked, parseCookies(req.headers.cookie).lang, req.headers['accept-language']);
    if (isLang(asked)) reply.header('set-cookie', cookie('lang', asked, { maxAgeSec: 365 * 86400, secure: false, sameSite: 'Lax' }));
  });
  app.addHook('onSend', async (_req, reply) => {
    if (!reply.hasHeader('cache-control')) reply.header('Cache-Control', 'no-store');
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    let status = 500;
    let message: string;
    const userError = isUserError(err as unknown) ? (err as unknown as UserError) : null;
    if (userError) {
      status = STATUS_OF_KIND[userError.kind];
      message = userError.message;
    } else if ((err as unknown) instanceof DatabaseBusy) {
      status = 503;
      message = err.message;
    } else if (err.validation) {
      status = 400;
      message = err.message;
    } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      status = err.statusCode;
      message = err.message;
    } else {
      // The client learns nothing of the internals; the operational log has the rest.
      log.error({ err: err.message, stack: err.stack, method: req.method, url: req.routeOptions.url }, 'http: request failed');
      message = viewOf(req).t('internalError');
    }
    if (req.audit) req.audit = { ...req.audit, detail: { ...req.audit.detail, error: message } };
    if (isJson(req)) return reply.code(status).send(userError ? { error: message, code: userError.code, kind: userError.kind, ...(userError.field ? { field: userError.field } : {}) } : { error: message });
    const v = viewOf(req);
    return reply.code(status).type('text/html; charset=utf-8').send(messagePage(v, status === 404 ? v.t('notFound') : v.t('refused'), message));
  });
  app.setNotFoundHandler((req, reply) => {
    if (isJson(req)) return reply.code(404).send({ error: 'not found' });
    const v = viewOf(req);
    return reply.code(404).type('text/html; charset=utf-8').send(messagePage(v, v.t('notFound'), v.t('notFound')));
  });

  await app.register(async (scope) => publicRoutes(scope, ctx));
  await app.register(async (scope) => pageRoutes(scope, ctx));
  await app.register(async (scope) => apiRoutes(scope, ctx), { prefix: '/api' });
  await app.register(async (scope) => queueRoutes(scope, ctx));
  await app.register(async (scope) => metricsRoutes(scope, ctx));
  return app;
}
