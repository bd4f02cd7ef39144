import { runClusterWorker } from '../cluster';
import { openControl } from '../db/open';
import { systemClock } from '../domain';
import { createLogger } from '../logger';
import { buildFrontEndServices } from '../services';
import { ClusterLogAppender } from '../usagelog';
import { QUERY_WORKER_ENV, type QueryWorkerStart, serveQueries } from './role';

/** One of several query processes on one port (see startQueryRole): the same server, in a process of its own. */
runClusterWorker<QueryWorkerStart>({
  name: 'query',
  envVar: QUERY_WORKER_ENV,
  log: (s) => createLogger(s.config.logLevel),
  start: async ({ config, redisUrl }, log) => {
    const cdb = await openControl(config);
    process.once('exit', () => void cdb.close()); // closes at once unless a write is still under way
    // Records are committed by the primary's appender; this process only reads the control database.
    const sink = new ClusterLogAppender();
    const server = await serveQueries({ config, redisUrl, cdb, services: buildFrontEndServices(config, cdb, systemClock), clock: systemClock, log, sink });
    return {
      port: server.port,
      close: async () => {
        await server.close();
        await sink.close();
      },
    };
  },
});
