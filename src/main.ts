import { Redis } from 'ioredis';
import type { Config } from './config';
import { openControlDb } from './db';
import { ensureKeys } from './crypto';
import { systemClock, type Clock } from './domain';
import { buildHttpApp } from './http/app';
import { createLogger } from './logger';
import { redisOptions, resolveRedis } from './queue';
import { loadCatalogs, Registry } from './registry';

export const ROLES = ['http', 'worker', 'scheduler'] as const;
export type Role = (typeof ROLES)[number];

export interface RunningService {
  stop(): Promise<void>;
  httpPort?: number;
}

/**
 * The composition root: config → database → keys → Redis → the roles asked for. Each role prints one
 * line saying what it does where; the last line says `ready`.
 */
export async function startService(config: Config, roles: readonly Role[], say: (line: string) => void, clock: Clock = systemClock): Promise<RunningService> {
  const log = createLogger(config.logLevel);
  const cdb = openControlDb(config.dataDir, { create: true });
  const stops: (() => Promise<void> | void)[] = [() => cdb.close()];
  const stopAll = async () => {
    for (const s of stops.reverse()) {
      try {
        await s();
      } catch (err) {
        log.error({ err }, 'error while stopping');
      }
    }
  };
  try {
    await ensureKeys(config.keysDir, clock.now());
    const catalogs = loadCatalogs();
    const registry = new Registry(cdb, catalogs, clock);
    void registry;
    const redisInfo = await resolveRedis(config, { spawn: true });
    if (redisInfo.stop) stops.push(redisInfo.stop);
    say(`redis: ${redisInfo.url} (${redisInfo.source === 'embedded' ? 'embedded, data in ' + config.dataDir + '/redis' : redisInfo.source})`);
    const redis = new Redis(redisInfo.url, redisOptions());
    redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
    stops.push(() => void redis.disconnect());

    let httpPort: number | undefined;
    if (roles.includes('http')) {
      const app = buildHttpApp({ cdb, redis });
      await app.listen({ host: config.http.host, port: config.http.port });
      const addr = app.server.address();
      httpPort = typeof addr === 'object' && addr ? addr.port : config.http.port;
      stops.push(() => app.close());
      say(`http: listening on http://${config.http.host}:${httpPort} (/healthz)`);
    }
    if (roles.includes('worker')) say('worker: no processors in this build');
    if (roles.includes('scheduler')) say('scheduler: idle');
    say(`nia-link ready (data ${config.dataDir}, instance ${config.instanceId})`);
    return { stop: stopAll, httpPort };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
