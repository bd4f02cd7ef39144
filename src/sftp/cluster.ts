import path from 'node:path';
import { startCluster } from '../cluster';
import type { Config } from '../config';
import { systemClock } from '../domain';
import { type RunningSftp, type SftpDeps, startSftpServer } from './server';

/** What a worker process needs to start the same server: the config as it was resolved, and Redis. */
export interface WorkerStart {
  config: Config;
  redisUrl: string;
}
export const WORKER_ENV = 'NIA_LINK_SFTP_WORKER';

/**
 * The sftp role. With `sftp.processes` > 1 it runs that many worker processes accepting on one port
 * (startCluster), so downloads use every core; a worker that dies is replaced. The per-process limits
 * are shared out among them. With 1, or with a clock other than the system's, it serves in this process.
 */
export async function startSftpRole(d: SftpDeps): Promise<RunningSftp & { processes: number }> {
  const n = d.config.sftp.processes;
  // Workers run on the system clock: a service given another clock (tests) serves in this process.
  if (n <= 1 || d.clock !== systemClock) return { ...(await startSftpServer(d)), processes: 1 };

  const s = d.config.sftp;
  const share = (total: number) => Math.max(1, Math.ceil(total / n));
  const start = (port: number): WorkerStart => ({
    config: { ...d.config, sftp: { ...s, port, processes: 1, maxConnections: share(s.maxConnections), maxConnectionsPerIp: share(s.maxConnectionsPerIp) } },
    redisUrl: d.redisUrl,
  });
  const running = await startCluster({ name: 'sftp', exec: path.join(__dirname, 'worker.js'), envVar: WORKER_ENV, listen: s, start, processes: n, log: d.log });
  return { ...running, processes: n };
}
