import path from 'node:path';
import { freePort, type RunningServer, startCluster } from '../cluster';
import type { Config } from '../config';
import { queryIdSecret } from '../crypto';
import type { ControlDb } from '../db';
import { type Clock, systemClock } from '../domain';
import type { Logger } from '../logger';
import type { Services } from '../services';
import { startQueryServer } from './server';
import { QueryService } from './service';

/** What a query worker process needs: the config as it was resolved, with its share of the limits. */
export interface QueryWorkerStart {
  config: Config;
}
export const QUERY_WORKER_ENV = 'NIA_LINK_QUERY_WORKER';

/** How often the primary checkpoints the control database's WAL for its query workers. */
const CHECKPOINT_MS = 1000;

/** The query server in this process, on this process's control database connection. */
export async function startQueryInProcess(d: { config: Config; cdb: ControlDb; services: Services; clock: Clock; log: Logger }): Promise<RunningServer> {
  const service = new QueryService({ cdb: d.cdb, registry: d.services.registry, catalogs: d.services.registry.catalogs, clock: d.clock, config: d.config, idSecret: queryIdSecret(d.config.keysDir) });
  const q = await startQueryServer({ config: d.config, service, datasets: [...d.services.registry.catalogs.keys()], log: d.log });
  return {
    port: q.port,
    close: async () => {
      await q.close();
      service.close();
    },
  };
}

/**
 * The query role. With `query.processes` > 1 it runs that many worker processes accepting on one port
 * (startCluster), so look-ups use every core. Each process allows its share of a link's rate
 * (`ratePerMinute / processes`), so all of them together never allow more than the configured rate.
 * The workers append their usage-log records themselves (each answer still waits for its record's
 * commit) but leave WAL checkpoints, which wait for the disk, to this process. With 1, or with a clock
 * other than the system's (tests), it serves in this process.
 */
export async function startQueryRole(d: { config: Config; cdb: ControlDb; services: Services; clock: Clock; log: Logger }): Promise<RunningServer & { processes: number }> {
  const n = d.config.query.processes;
  if (n <= 1 || d.clock !== systemClock) return { ...(await startQueryInProcess(d)), processes: 1 };

  const q = d.config.query;
  const port = q.port === 0 ? await freePort(q.host) : q.port;
  const start: QueryWorkerStart = { config: { ...d.config, query: { ...q, port, processes: 1, ratePerMinute: Math.max(1, Math.floor(q.ratePerMinute / n)) } } };
  const running = await startCluster({ name: 'query', exec: path.join(__dirname, 'worker.js'), envVar: QUERY_WORKER_ENV, start, processes: n, log: d.log });
  const timer = setInterval(() => {
    try {
      d.cdb.sqlite.pragma('wal_checkpoint(PASSIVE)');
    } catch (err) {
      d.log.warn({ err: (err as Error).message }, 'query: WAL checkpoint failed');
    }
  }, CHECKPOINT_MS);
  timer.unref();
  return {
    port: running.port,
    processes: n,
    close: async () => {
      clearInterval(timer);
      await running.close();
    },
  };
}
