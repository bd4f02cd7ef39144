import { Redis } from 'ioredis';
import path from 'node:path';
import { type RunningServer, startCluster } from '../cluster';
import type { Config } from '../config';
import { queryIdSecret } from '../crypto';
import type { ControlDb } from '../db';
import { startCheckpointer } from '../db/checkpoint';
import { type Clock, systemClock } from '../domain';
import type { Logger } from '../logger';
import type { FrontEndServices } from '../services';
import { queuePrefix } from '../queue/names';
import { RedisDailyCap } from './cap';
import { LogAppender, type RecordSink, serveClusterAppends, TxLogAppender } from '../usagelog';
import { startQueryServer } from './server';
import { QueryService } from './service';

/** What a query worker process needs: the config as it was resolved, with its share of the limits. */
export interface QueryWorkerStart {
  config: Config;
  redisUrl: string;
}
export const QUERY_WORKER_ENV = 'NIA_LINK_QUERY_WORKER';

/** How often the role checkpoints the control database's WAL, which its log appenders never do. */
const CHECKPOINT_MS = 1000;

interface RoleDeps {
  config: Config;
  redisUrl: string;
  cdb: ControlDb;
  services: FrontEndServices;
  clock: Clock;
  log: Logger;
}

/**
 * The query server in this process. It reads links on this process's control database connection;
 * its usage-log records go to `sink` (which the caller owns and closes after the server).
 */
export async function serveQueries(d: RoleDeps & { sink: RecordSink }): Promise<RunningServer> {
  // One retry, then the request is refused: a look-up never waits on a Redis that is down.
  const redis = new Redis(d.redisUrl, { maxRetriesPerRequest: 1, enableAutoPipelining: true });
  redis.on('error', (err) => d.log.warn({ err: err.message }, 'query: redis error'));
  const cap = new RedisDailyCap(redis, queuePrefix(d.config));
  const service = new QueryService({ cdb: d.cdb, appender: d.sink, registry: d.services.registry, catalogs: d.services.registry.catalogs, clock: d.clock, config: d.config, idSecret: queryIdSecret(d.config.keysDir), cap, log: d.log });
  let q: Awaited<ReturnType<typeof startQueryServer>>;
  try {
    q = await startQueryServer({ config: d.config, service, datasets: [...d.services.registry.catalogs.keys()], log: d.log });
  } catch (err) {
    redis.disconnect();
    await service.close();
    throw err;
  }
  return {
    port: q.port,
    close: async () => {
      await q.close();
      // The refusals counted since the last interval go to the sink before the caller closes it.
      await service.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/**
 * The query role. Its usage-log records are committed by one LogAppender thread in this process, and a
 * checkpoint thread copies the WAL into the database file (a checkpoint waits for the disk; nothing
 * that answers requests runs one). With `query.processes` > 1 it runs that many worker processes
 * accepting on one port (startCluster), so look-ups use more cores; their records come here over IPC
 * (ClusterLogAppender → serveClusterAppends), so the workers never contend for the write lock, and
 * each answer still waits for its record's commit. Each process allows its share of a link's rate
 * (`ratePerMinute / processes`), so all of them together never allow more than the configured rate,
 * and its share of the connection limits. Each counts its own aggregated refusals (QueryRefusals).
 * With 1, or with a clock other than the system's (tests), it serves in this process.
 */
export async function startQueryRole(d: RoleDeps): Promise<RunningServer & { processes: number }> {
  // On PostgreSQL the server waits for its locks and its disk: records are committed from here.
  const sqlite = d.cdb.dialect === 'sqlite' ? d.cdb : undefined;
  const checkpointer = sqlite ? startCheckpointer(sqlite.file, CHECKPOINT_MS, d.log) : undefined;
  const appender = sqlite ? new LogAppender(sqlite.file, d.log) : new TxLogAppender(d.cdb);
  const stopLog = async () => {
    await appender.close();
    await checkpointer?.stop();
  };
  try {
    await appender.ready(); // nothing is answered before records can be committed
    const server = await serveRole(d, appender);
    return {
      ...server,
      close: async () => {
        try {
          await server.close();
        } finally {
          await stopLog();
        }
      },
    };
  } catch (err) {
    await stopLog();
    throw err;
  }
}

async function serveRole(d: RoleDeps, appender: LogAppender | TxLogAppender): Promise<RunningServer & { processes: number }> {
  const n = d.config.query.processes;
  if (n <= 1 || d.clock !== systemClock) return { ...(await serveQueries({ ...d, sink: appender })), processes: 1 };
  const q = d.config.query;
  // The primary hands connections to the workers in turn, so each enforces its share of the limits.
  const share = (total: number) => Math.max(1, Math.ceil(total / n));
  const start = (port: number): QueryWorkerStart => ({
    config: { ...d.config, query: { ...q, port, processes: 1, ratePerMinute: Math.max(1, Math.floor(q.ratePerMinute / n)), maxConnections: share(q.maxConnections), maxConnectionsPerIp: share(q.maxConnectionsPerIp) } },
    redisUrl: d.redisUrl,
  });
  const running = await startCluster({ name: 'query', exec: path.join(__dirname, 'worker.js'), envVar: QUERY_WORKER_ENV, listen: q, start, processes: n, log: d.log, onFork: (w) => serveClusterAppends(w, appender) });
  return { ...running, processes: n };
}
