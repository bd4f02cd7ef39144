import type { Worker } from 'node:cluster';
import { createServer, type Socket } from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import { startCluster } from '../cluster';
import type { Config } from '../config';
import { normaliseIp, systemClock } from '../domain';
import { queuePrefix } from '../queue/names';
import { linkEventsChannel } from '../queue/link-events';
import { AccountService } from '../registry/accounts';
import { Defender } from './defender';
import { Gate } from './gate';
import { RefusalLog } from './refusals';
import { HANDOFF, type RunningSftp, type SftpDeps, startSftpServer } from './server';

/** What a worker process needs to start the same server: the config as it was resolved, and Redis. */
export interface WorkerStart {
  config: Config;
  redisUrl: string;
}
export const WORKER_ENV = 'NIA_LINK_SFTP_WORKER';

/**
 * The sftp role. With `sftp.processes` > 1 it runs that many worker processes (startCluster), so
 * downloads use every core; a worker that dies is replaced. This process then accepts the
 * connections itself, runs the gate on them (sftp/gate.ts) and hands those that passed to the workers
 * in turn. (With Node's own round robin every connection, refused or not, crossed to a worker first:
 * the handing on cost three times what the refusal did.) The per-process limits are shared out among
 * the workers. With 1, or with a clock other than the system's, it serves in this process.
 */
export async function startSftpRole(d: SftpDeps): Promise<RunningSftp & { processes: number }> {
  const n = d.config.sftp.processes;
  // Workers run on the system clock: a service given another clock (tests) serves in this process.
  if (n <= 1 || d.clock !== systemClock) return { ...(await startSftpServer(d)), processes: 1 };

  const s = d.config.sftp;
  const share = (total: number) => Math.max(1, Math.ceil(total / n));
  const start = (port: number): WorkerStart => ({
    config: {
      ...d.config,
      sftp: {
        ...s,
        port,
        processes: 1,
        maxConnections: share(s.maxConnections),
        maxConnectionsPerIp: share(s.maxConnectionsPerIp),
        maxHandlesPerAccount: share(s.maxHandlesPerAccount),
      },
    },
    redisUrl: d.redisUrl,
  });
  const ready: Worker[] = [];
  const track = (w: Worker) => {
    w.on('message', (m: { ready?: number }) => m?.ready !== undefined && ready.push(w));
    w.once('exit', () => ready.includes(w) && ready.splice(ready.indexOf(w), 1));
  };
  const cluster = await startCluster({ name: 'sftp', exec: path.join(__dirname, 'worker.js'), envVar: WORKER_ENV, listen: s, start, processes: n, log: d.log, onFork: track });
  try {
    const front = await startFront(d, cluster.port, ready);
    return {
      port: cluster.port,
      processes: n,
      async close() {
        await front.close();
        await cluster.close();
      },
    };
  } catch (err) {
    await cluster.close();
    throw err;
  }
}

/** The primary's listener: the gate, then the connection to the next worker. */
async function startFront(d: SftpDeps, port: number, workers: Worker[]): Promise<{ close(): Promise<void> }> {
  const { config, cdb, clock, log } = d;
  const s = config.sftp;
  const accounts = new AccountService(cdb, d.services.registry, clock);
  const redis = new Redis(d.redisUrl, { maxRetriesPerRequest: 1 });
  redis.on('error', (err) => log.warn({ err: err.message }, 'sftp: redis error'));
  const defender = new Defender(redis, queuePrefix(config), s.defender);
  const refusals = new RefusalLog(cdb, clock, { intervalSec: s.refusedLogIntervalSec, maxIps: s.refusedLogMaxIps }, (err) => log.error({ err: err.message }, 'sftp: refused connections not logged'));
  const gate = new Gate({ cdb, accounts, clock, defender, settings: s, log });
  let turn = 0;
  let closing = false;

  const refuse = (socket: Socket, ip: string, reason: string) => {
    refusals.note(ip, reason);
    socket.destroy();
  };
  const handOn = (socket: Socket, ip: string) => {
    if (socket.destroyed || closing) return void socket.destroy();
    const live = workers.filter((w) => w.isConnected());
    if (live.length === 0) return refuse(socket, ip, 'capacity');
    const w = live[turn++ % live.length];
    w.send(HANDOFF, socket, (err: Error | null) => err && socket.destroy());
  };
  const admit = async (socket: Socket): Promise<void> => {
    const ip = normaliseIp(socket.remoteAddress ?? '');
    if (closing) return void socket.destroy();
    // Before the gate is asked: a reset while it reads the database must not go unheard.
    socket.on('error', () => undefined);
    let refusal: string | null;
    try {
      refusal = await gate.check(ip);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'sftp: gate failed; connection refused');
      refusal = 'error';
    }
    if (refusal) return refuse(socket, ip, refusal);
    void gate.banned(ip).then((banned) => (banned ? refuse(socket, ip, 'banned') : handOn(socket, ip)));
  };
  const server = createServer({ pauseOnConnect: true }, (socket) => void admit(socket));

  const timer = setInterval(() => gate.tick(), s.recheckSec * 1000);
  timer.unref();
  const subscriber = new Redis(d.redisUrl, { maxRetriesPerRequest: null });
  subscriber.on('error', (err) => log.warn({ err: err.message }, 'sftp: redis subscriber error'));
  subscriber.on('message', () => gate.invalidate());
  const stop = async () => {
    closing = true;
    clearInterval(timer);
    await new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    await refusals.stop();
    await subscriber.quit().catch(() => subscriber.disconnect());
    await redis.quit().catch(() => redis.disconnect());
  };
  try {
    await subscriber.subscribe(linkEventsChannel(config));
    refusals.start();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, s.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  server.on('error', (err) => log.error({ err: err.message }, 'sftp: listener error'));
  return { close: stop };
}
