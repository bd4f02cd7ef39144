import { openControlDb } from '../db';
import { systemClock } from '../domain';
import { createLogger } from '../logger';
import { buildServices } from '../services';
import { WORKER_ENV, type WorkerStart } from './cluster';
import { type RunningSftp, startSftpServer } from './server';

/** One of several SFTP processes on one port (see startSftpRole): the same server, in a process of its own. */
async function main(): Promise<void> {
  const { config, redisUrl } = JSON.parse(process.env[WORKER_ENV] ?? 'null') as WorkerStart;
  const log = createLogger(config.logLevel);
  let server: RunningSftp | undefined;
  let stopping = false;
  const stop = () => {
    stopping = true;
    if (!server) return; // still starting: it stops as soon as it is up
    const s = server;
    server = undefined;
    s.close()
      .catch((err) => log.error({ err: (err as Error).message }, 'sftp worker: error while stopping'))
      .finally(() => process.exit(0));
  };
  // From the primary, or a terminal's Ctrl-C / a process-group TERM reaching every process. Listened
  // for before starting: a shutdown can come while a replacement worker is still starting.
  process.on('message', (m) => m === 'shutdown' && stop());
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const cdb = openControlDb(config.dataDir);
  process.once('exit', () => cdb.close());
  server = await startSftpServer({ config, cdb, services: buildServices(config, cdb, systemClock), redisUrl, clock: systemClock, log });
  process.send!({ ready: server.port });
  if (stopping) stop();
}

main().catch((err) => {
  process.send?.({ error: (err as Error).message });
  process.exit(1);
});
