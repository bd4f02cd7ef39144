import { spawn, type ChildProcess, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Config } from '../config';
import { replaceFile } from '../crypto/secret-file';
import { UserError } from '../errors';

/** Where a Redis usually is. Never used unless REDIS_URL names it: only a hint when nothing else is found. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** A Redis URL as it may be printed or logged: without its password. */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

export interface ResolvedRedis {
  /** Holds the password of an embedded server: pass it on, never print it (redactRedisUrl). */
  url: string;
  source: 'REDIS_URL' | 'embedded-file' | 'embedded';
  /** Stops an embedded server this process started or adopted; absent for a server we do not own. */
  stop?: () => Promise<void>;
}

export async function redisAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

const urlFile = (dataDir: string) => path.join(dataDir, 'redis.url');
const EMBEDDED_URL = /^redis:\/\/:[0-9a-f]{64}@127\.0\.0\.1:\d{1,5}$/;

/**
 * The URL a running service recorded for its embedded server. Believed only if it is ours alone (a
 * regular file of this user, 0600) and names a password-protected server on loopback.
 */
/** Is the process that started the recorded embedded server still running? */
function ownerAlive(dataDir: string): boolean {
  try {
    const pid = Number(readFileSync(urlFile(dataDir), 'utf8').split('\n')[1]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, owned by someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readUrlFile(dataDir: string): string | null {
  try {
    const st = lstatSync(urlFile(dataDir));
    if (!st.isFile() || (st.mode & 0o077) !== 0 || (process.getuid && st.uid !== process.getuid())) return null;
    const url = readFileSync(urlFile(dataDir), 'utf8').split('\n')[0].trim();
    return EMBEDDED_URL.test(url) ? url : null;
  } catch {
    return null;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

async function shutdownByCommand(url: string): Promise<void> {
  const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.call('SHUTDOWN');
  } catch {
    /* the server closes the connection as it exits */
  } finally {
    c.disconnect();
  }
}

const HOW_TO_GET_REDIS =
  'no Redis to use: set REDIS_URL (redis://:PASSWORD@HOST:PORT; `docker compose up -d redis` runs one for the compose file\'s service), or install the OS package (apt-get install redis-server) so nia-link can start its own';

/**
 * Where the work queues live: REDIS_URL; else the embedded server a running service recorded in the
 * data directory; else (for the service only) a redis-server child process with a password, its data
 * under the data directory. A server that merely answers on 127.0.0.1:6379 is never used: anyone on
 * the machine can start one there, and whoever runs it holds the bans, login limits and queues.
 * `defaultUrl` (that address by default) only shapes the message when nothing is found.
 */
export async function resolveRedis(config: Config, opts: { spawn: boolean; defaultUrl?: string }): Promise<ResolvedRedis> {
  const defaultUrl = opts.defaultUrl ?? DEFAULT_REDIS_URL;
  if (config.redisUrl) {
    if (await redisAnswers(config.redisUrl, 3000)) return { url: config.redisUrl, source: 'REDIS_URL' };
    throw new UserError(`REDIS_URL ${redactRedisUrl(config.redisUrl)} does not answer`, 'redis.unreachable');
  }
  const recorded = readUrlFile(config.dataDir);
  if (recorded && (await redisAnswers(recorded))) {
    // An embedded server of this data directory: of a service running now (another role on this host),
    // which keeps it and stops it, or left running by one that did not shut down, which we adopt.
    if (!opts.spawn || ownerAlive(config.dataDir)) return { url: recorded, source: 'embedded-file' };
    // The service adopts it, and stops it on shutdown like one it started.
    replaceFile(urlFile(config.dataDir), `${recorded}\n${process.pid}\n`, 0o600);
    const stop = async () => {
      await shutdownByCommand(recorded);
      rmSync(urlFile(config.dataDir), { force: true });
    };
    return { url: recorded, source: 'embedded-file', stop };
  }
  if (!opts.spawn) {
    const hint = (await redisAnswers(defaultUrl)) ? `; a Redis answers on ${redactRedisUrl(defaultUrl)}, but nia-link uses one there only if REDIS_URL names it` : '';
    throw new UserError(`${HOW_TO_GET_REDIS}; or start the service (nia-link start), which starts one${hint}`, 'redis.unreachable');
  }
  if (!hasRedisServer()) throw new UserError(HOW_TO_GET_REDIS, 'redis.unreachable');
  return spawnEmbedded(config.dataDir);
}

/** A value in redis.conf: quoted, so a data directory with spaces or quotes stays one argument. */
const confValue = (v: string) => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/**
 * The embedded server: loopback only, and a password generated for this run. The password is in its
 * configuration file and in the URL file for CLI commands, both 0600; never on the command line, which
 * every local user can read in /proc.
 */
async function spawnEmbedded(dataDir: string): Promise<ResolvedRedis> {
  const dir = path.join(dataDir, 'redis');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const port = await freePort();
  const password = randomBytes(32).toString('hex');
  const conf = path.join(dir, 'redis.conf');
  replaceFile(
    conf,
    [
      'bind 127.0.0.1',
      `port ${port}`,
      `dir ${confValue(dir)}`,
      'appendonly yes',
      'save ""',
      'maxmemory-policy noeviction',
      'protected-mode yes',
      `logfile ${confValue(path.join(dir, 'redis.log'))}`,
      `requirepass ${password}`,
      '',
    ].join('\n'),
    0o600,
  );
  // In the service's process group: a signal to the group (a terminal's Ctrl-C, a service manager's
  // stop or kill) reaches this server too, so it never outlives a service killed with its group. The
  // service's shutdown does not wait on it (closeQueues).
  const child: ChildProcess = spawn('redis-server', [conf], { stdio: 'ignore' });
  const url = `redis://:${password}@127.0.0.1:${port}`;
  let exited = false;
  child.once('exit', () => (exited = true));
  for (let i = 0; i < 100 && !exited; i++) {
    if (await redisAnswers(url, 500)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (exited || !(await redisAnswers(url, 500))) {
    child.kill('SIGKILL');
    throw new UserError(`the embedded redis-server did not start (see ${path.join(dir, 'redis.log')})`, 'redis.spawn-failed');
  }
  // The second line names the process that stops this server: another service on the data directory
  // uses it without taking it over (and without stopping it when that service fails or ends).
  replaceFile(urlFile(dataDir), `${url}\n${process.pid}\n`, 0o600);
  return {
    url,
    source: 'embedded',
    stop: async () => {
      if (readUrlFile(dataDir) === url) rmSync(urlFile(dataDir), { force: true });
      if (exited) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        child.kill('SIGTERM');
      });
    },
  };
}
