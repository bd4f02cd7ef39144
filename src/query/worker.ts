import { runClusterWorker } from '../cluster';
import { openControlDb } from '../db';
import { systemClock } from '../domain';
import { createLogger } from '../logger';
import { buildServices } from '../services';
import { QUERY_WORKER_ENV, type QueryWorkerStart, serveQueries } from './role';

/** One of several query processes on one port (see startQueryRole): the same server, in a process of its own. */
runClusterWorker<QueryWorkerStart>({
  name: 'query',
  envVar: QUERY_WORKER_ENV,
  log: (s) => createLogger(s.config.logLevel),
  start: async ({ config }, log) => {
    const cdb = openControlDb(config.dataDir);
    // Checkpoints write the database file and wait for the disk: the primary's checkpointer runs them.
    cdb.sqlite.pragma('wal_autocheckpoint = 0');
    process.once('exit', () => cdb.close());
    return serveQueries({ config, cdb, services: buildServices(config, cdb, systemClock), clock: systemClock, log });
  },
});
