import path from 'node:path';
import { freePort, type RunningServer, startCluster } from '../cluster';
import type { Config } from '../config';
import { queryIdSecret } from '../crypto';
import type { ControlDb } from '../db';
import { startCheckpointer } from '../db/checkpoint';
import { type Clock, systemClock } from '../domain';
import type { Logger } from '../logger';
import type { Services } from '../services';
import { LogAppender } from '../usagelog';
import { startQueryServer } from './server';
import { QueryService } from './service';

/** What a query worker process needs: the config as it was resolved, with its share of the limits. */
export interface QueryWorkerStart {
  config: Config;
}
export const QUERY_WORKER_ENV = 'NIA_LINK_QUERY_WORKER';

/** How often the role checkpoints the control database's WAL, which its log appenders never do. */
const CHECKPOINT_MS = 1000;

/**
 * The query server in this process. It reads links on this process's control database connection and
 * appends its usage-log records from a thread of its own (LogAppender), which never checkpoints.
 */
export async function serveQueries(d: { config: Config; cdb: ControlDb; services: Services; clock: Clock; log: Logger }): Promise<RunningServer> {
  const appender = new LogAppender(d.cdb.file);
  const service = new QueryService({ cdb: d.cdb, appender, registry: d.services.registry, catalogs: d.services.registry.catalogs, clock: d.clock, config: d.config, idSecret: queryIdSecret(d.config.keysDir) });
  const q = await startQueryServer({ config: d.config, service, datasets: [...d.services.registry.catalogs.keys()], log: d.log }).catch(async (err) => {
    await appender.close();
    throw err;
  });
  return {
    port: q.port,
    close: async () => {
      await q.close();
      await appender.close();
      service.close();
    },
  };
}

/** The query server in this process, with the WAL checkpoints its appender leaves to the role. */
export async function startQueryInProcess(d: { config: Config; cdb: ControlDb; services: Services; clock: Clock; log: Logger }): Promise<RunningServer> {
  const checkpointer = startCheckpointer(d.cdb.file, CHECKPOINT_MS, d.log);
  try {
    const q = await serveQueries(d);
    return {
      port: q.port,
      close: async () => {
        await q.close();
        await checkpointer.stop();
      },
    };
  } catch (err) {
    await checkpointer.stop();
    throw err;
  }
}

/**
 * The query role. With `query.processes` > 1 it runs that many worker processes accepting on one port
 * (startCluster), so look-ups use every core. Each process allows its share of a link's rate
 * (`ratePerMinute / processes`), so all of them together never allow more than the configured rate.
 * Each worker appends its usage-log records itself (each answer still waits for its record's commit);
 * WAL checkpoints, which wait for the disk, run in a thread of this process. With 1, or with a clock
 * other than the system's (tests), it serves in this process.
 */
export async function startQueryRole(d: { config: Config; cdb: ControlDb; services: Services; clock: Clock; log: Logger }): Promise<RunningServer & { processes: number }> {
  const n = d.config.query.processes;
  if (n <= 1 || d.clock !== systemClock) return { ...(await startQueryInProcess(d)), processes: 1 };

  const q = d.config.query;
  const port = q.port === 0 ? await freePort(q.host) : q.port;
  const start: QueryWorkerStart = { config: { ...d.config, query: { ...q, port, processes: 1, ratePerMinute: Math.max(1, Math.floor(q.ratePerMinute / n)) } } };
  const checkpointer = startCheckpointer(d.cdb.file, CHECKPOINT_MS, d.log);
  const running = await startCluster({ name: 'query', exec: path.join(__dirname, 'worker.js'), envVar: QUERY_WORKER_ENV, start, processes: n, log: d.log }).catch(async (err) => {
    await checkpointer.stop();
    throw err;
  });
  return {
    port: running.port,
    processes: n,
    close: async () => {
      await running.close();
      await checkpointer.stop();
    },
  };
}
