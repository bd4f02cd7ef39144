import type { TypedQueue } from '../queue';
import type { FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from '../config';
import type { ControlDb } from '../db';
import type { Clock } from '../domain';
import type { Logger } from '../logger';
import type { Services } from '../services';
import type { ConsoleActions } from './actions';
import type { LoginLimiter } from './auth';
import type { ConsoleData } from './data';
import { translator } from './i18n';
import type { OperatorService } from './operators';
import type { View } from './views';

/** What the HTTP role is built from (main.ts gives it). */
export interface HttpDeps {
  config: Config;
  cdb: ControlDb;
  /** The HTTP role's own connection: /healthz, login limits. */
  redis: Redis;
  services: Services;
  /** Every queue, for bull-board and the depths; pushes are retried on `deliver`. */
  queues: { extract: TypedQueue<'extract'>; deliver: TypedQueue<'deliver'>; maintenance: TypedQueue<'maintenance'> };
  clock: Clock;
  log: Logger;
}

/** What every plugin of the console shares. */
export interface ConsoleContext extends HttpDeps {
  data: ConsoleData;
  actions: ConsoleActions;
  operators: OperatorService;
  limiter: LoginLimiter;
}

export function viewOf(req: FastifyRequest): View {
  // The language switch of a page answering a form post leads to the overview, not back to the post.
  return { t: translator(req.lang), lang: req.lang, op: req.operator, path: req.method === 'GET' ? req.url : '/', drill: req.server.drill === true };
}
