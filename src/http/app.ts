import Fastify, { type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { ControlDb } from '../db';

export interface HttpDeps {
  cdb: ControlDb;
  redis: Redis;
}

/** The HTTP role. `/healthz` is public and says only whether the database and Redis answer. */
export function buildHttpApp(deps: HttpDeps): FastifyInstance {
  const app = Fastify({ logger: false, trustProxy: false, bodyLimit: 1024 * 1024 });
  app.addHook('onSend', async (_req, reply) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('X-Frame-Options', 'DENY');
    reply.header('Referrer-Policy', 'no-referrer');
    reply.header('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
    reply.header('Cache-Control', 'no-store');
  });
  app.get('/healthz', async (_req, reply) => {
    let db = 'ok';
    let redis = 'ok';
    try {
      deps.cdb.sqlite.prepare('SELECT 1').get();
    } catch {
      db = 'down';
    }
    try {
      await Promise.race([deps.redis.ping(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 1000))]);
    } catch {
      redis = 'down';
    }
    const healthy = db === 'ok' && redis === 'ok';
    return reply.code(healthy ? 200 : 503).send({ status: healthy ? 'ok' : 'degraded', db, redis });
  });
  return app;
}
