import cluster, { type Worker } from 'node:cluster';
import path from 'node:path';
import type { Config } from '../config';
import { systemClock } from '../domain';
import { type RunningSftp, type SftpDeps, startSftpServer } from './server';

/** What a worker process needs to start the same server: the config as it was resolved, and Redis. */
export interface WorkerStart {
  config: Config;
  redisUrl: string;
}
export const WORKER_ENV = 'NIA_LINK_SFTP_WORKER';

const RESTART_DELAY_MS = 1000;
const STOP_TIMEOUT_MS = 10_000;

/**
 * The sftp role. With `sftp.processes` > 1 it runs that many worker processes accepting on one port
 * (Node's cluster: this process accepts and hands each connection to a worker in turn), so downloads
 * use every core; a worker that dies is replaced. The per-process limits are shared out among them.
 * With 1, or with a clock other than the system's, it serves in this process.
 */
export async function startSftpRole(d: SftpDeps): Promise<RunningSftp & { processes: number }> {
  const n = d.config.sftp.processes;
  // Workers run on the system clock: a service given another clock (tests) serves in this process.
  if (n <= 1 || d.clock !== systemClock) return { ...(await startSftpServer(d)), processes: 1 };

  const s = d.config.sftp;
  const share = (total: number) => Math.max(1, Math.ceil(total / n));
  const start: WorkerStart = {
    config: { ...d.config, sftp: { ...s, processes: 1, maxConnections: share(s.maxConnections), maxConnectionsPerIp: share(s.maxConnectionsPerIp) } },
    redisUrl: d.redisUrl,
  };
  cluster.setupPrimary({ exec: path.join(__dirname, 'worker.js'), args: [] });
  const workers = new Set<Worker>();
  let closing = false;

  const fork = () =>
    new Promise<number>((resolve, reject) => {
      const w = cluster.fork({ [WORKER_ENV]: JSON.stringify(start) });
      workers.add(w);
      w.on('message', (m: { ready?: number; error?: string }) => {
        if (m.ready !== undefined) resolve(m.ready);
        if (m.error) reject(new Error(m.error));
      });
      w.once('exit', (code, signal) => {
        workers.delete(w);
        reject(new Error(`sftp worker exited (${signal ?? code}) before it was ready`));
        if (closing) return;
        d.log.error({ code, signal }, 'sftp: worker died; starting another');
        setTimeout(() => !closing && fork().catch((err) => d.log.error({ err: err.message }, 'sftp: worker did not start')), RESTART_DELAY_MS).unref();
      });
    });

  const stop = async () => {
    closing = true;
    await Promise.all(
      [...workers].map(
        (w) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => w.kill('SIGKILL'), STOP_TIMEOUT_MS);
            w.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            w.send('shutdown');
          }),
      ),
    );
  };

  try {
    const ports = await Promise.all(Array.from({ length: n }, fork));
    return { port: ports[0], processes: n, close: stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
