import { runClusterWorker } from '../cluster';
import { openControl } from '../db/open';
import { systemClock } from '../domain';
import { createLogger } from '../logger';
import { buildFrontEndServices } from '../services';
import { WORKER_ENV, type WorkerStart } from './cluster';
import { startSftpServer } from './server';

/** One of several SFTP processes (see startSftpRole): the same server, in a process of its own, serving the connections the primary hands it. */
runClusterWorker<WorkerStart>({
  name: 'sftp',
  envVar: WORKER_ENV,
  log: (s) => createLogger(s.config.logLevel),
  start: async ({ config, redisUrl }, log) => {
    const cdb = await openControl(config);
    process.once('exit', () => void cdb.close()); // closes at once unless a write is still under way
    return startSftpServer({ config, cdb, services: buildFrontEndServices(config, cdb, systemClock), redisUrl, clock: systemClock, log, handedOn: true });
  },
});
