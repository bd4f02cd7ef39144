import cluster, { type Worker } from 'node:cluster';
import { createServer } from 'node:net';
import type { Config } from './config';
import type { Logger } from './logger';

/** A server a role runs: the port it listens on and how to stop it. */
export interface RunningServer {
  port: number;
  close: () => Promise<void>;
}

const RESTART_DELAY_MS = 1000;
const STOP_TIMEOUT_MS = 10_000;

/**
 * Several worker processes accepting on one port (Node's cluster: this process accepts and hands each
 * connection to a worker in turn), so a role uses every core. Each worker runs `exec`, which reads
 * `start(port)` from the environment variable `envVar` and calls runClusterWorker. A worker that dies is
 * replaced. Used by the sftp and query roles (`sftp.processes`, `query.processes`). `onFork` sees each
 * worker as it is made (the query role answers its workers' usage-log batches).
 */
export async function startCluster<S>(o: { name: string; exec: string; envVar: string; listen: { host: string; port: number }; start: (port: number) => S; processes: number; log: Logger; onFork?: (w: Worker) => void }): Promise<RunningServer> {
  const workers = new Set<Worker>();
  let closing = false;
  // Port 0 ("any free port") would be one listener shared by every cluster asking for port 0 on that
  // address (Node keys shared listeners by address and port): pick the port here instead.
  const start = JSON.stringify(withoutUnusedSecrets(o.start(o.listen.port === 0 ? await freePort(o.listen.host) : o.listen.port)));

  const fork = () =>
    new Promise<number>((resolve, reject) => {
      // Settings are process-wide and read by fork(): set them for this role right before each fork.
      cluster.setupPrimary({ exec: o.exec, args: [] });
      const w = cluster.fork({ ...WITHHELD_ENV, [o.envVar]: start });
      workers.add(w);
      // A message to a worker that has just died fails with EPIPE: that worker's exit is handled below.
      w.on('error', (err) => o.log.warn({ err: err.message }, `${o.name}: worker channel error`));
      o.onFork?.(w);
      w.on('message', (m: { ready?: number; error?: string; code?: string }) => {
        if (m.ready !== undefined) resolve(m.ready);
        if (m.error) reject(Object.assign(new Error(m.error), { code: m.code }));
      });
      w.once('exit', (code, signal) => {
        workers.delete(w);
        reject(new Error(`${o.name} worker exited (${signal ?? code}) before it was ready`));
        if (closing) return;
        // Exit code 0 is a worker that was told to stop: a terminal's Ctrl-C or a process-group TERM
        // reaches it before this process handles the same signal. Only a worker that died is replaced.
        if (code === 0) return o.log.info(`${o.name}: worker stopped`);
        o.log.error({ code, signal }, `${o.name}: worker died; starting another`);
        setTimeout(() => {
          if (!closing) fork().catch((err: Error) => o.log.error({ err: err.message }, `${o.name}: worker did not start`));
        }, RESTART_DELAY_MS).unref();
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
            if (w.isConnected()) w.send('shutdown'); // else it is already on its way out
          }),
      ),
    );
  };

  try {
    const ports = await Promise.all(Array.from({ length: o.processes }, fork));
    return { port: ports[0], close: stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Secrets a worker never uses, kept out of its environment (readable in /proc by the same user, copied
 * into core dumps and crash reports): a worker that is broken into holds only what it needs. Node
 * leaves out of the child's environment the variables given as undefined.
 */
const WITHHELD_ENV: Record<string, undefined> = { NIA_LINK_SMTP_PASSWORD: undefined, NIA_LINK_METRICS_TOKEN: undefined };

/** The start data without the SMTP password and the metrics token of its config (workers serve sftp or queries). */
function withoutUnusedSecrets<S>(start: S): S {
  const config = (start as { config?: Config } | null)?.config;
  if (!config?.smtp || !config.http) return start;
  return { ...start, config: { ...config, smtp: { ...config.smtp, password: undefined }, http: { ...config.http, metricsToken: undefined } } };
}

/** A port the system has free on `host` now. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** The worker side of startCluster: start the server from the start data, report ready, stop on shutdown. */
export function runClusterWorker<S>(o: { name: string; envVar: string; log: (s: S) => Logger; start: (s: S, log: Logger) => Promise<RunningServer> }): void {
  const main = async () => {
    const start = JSON.parse(process.env[o.envVar] ?? 'null') as S;
    const log = o.log(start);
    let server: RunningServer | undefined;
    let stopping = false;
    const stop = () => {
      stopping = true;
      if (!server) return; // still starting: it stops as soon as it is up
      const s = server;
      server = undefined;
      s.close()
        .catch((err) => log.error({ err: (err as Error).message }, `${o.name} worker: error while stopping`))
        .finally(() => process.exit(0));
    };
    // From the primary, or a terminal's Ctrl-C / a process-group TERM reaching every process. Listened
    // for before starting: a shutdown can come while a replacement worker is still starting.
    process.on('message', (m) => m === 'shutdown' && stop());
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    server = await o.start(start, log);
    process.send!({ ready: server.port });
    if (stopping) stop();
  };
  main().catch((err) => {
    process.send?.({ error: (err as Error).message, code: (err as { code?: string }).code });
    process.exit(1);
  });
}
