import { spawn, type ChildProcess, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Config } from '../config';
import { UserError } from '../errors';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export interface ResolvedRedis {
  url: string;
  source: 'REDIS_URL' | 'embedded-file' | 'default' | 'embedded';
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

function readUrlFile(dataDir: string): string | null {
  try {
    const url = readFileSync(urlFile(dataDir), 'utf8').trim();
    return /^redis:\/\/127\.0\.0\.1:\d+$/.test(url) ? url : null;
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
  'no Redis answers: set REDIS_URL, start one with `docker compose up -d redis`, or install the OS package (apt-get install redis-server) so nia-link can start its own';

/**
 * Where the work queues live. REDIS_URL wins; then the embedded server a running service recorded in
 * the data directory; then 127.0.0.1:6379; then (for the service only) a redis-server child process
 * with its data under the data directory.
 */
export async function resolveRedis(config: Config, opts: { spawn: boolean; defaultUrl?: string }): Promise<ResolvedRedis> {
  const defaultUrl = opts.defaultUrl ?? DEFAULT_REDIS_URL;
  if (config.redisUrl) {
    if (await redisAnswers(config.redisUrl, 3000)) return { url: config.redisUrl, source: 'REDIS_URL' };
    throw new UserError(`REDIS_URL ${config.redisUrl.replace(/\/\/[^@]*@/, '//***@')} does not answer`, 'redis.unreachable');
  }
  const recorded = readUrlFile(config.dataDir);
  if (recorded && (await redisAnswers(recorded))) {
    // An embedded server of this data directory (left running by a service that did not shut down).
    if (!opts.spawn) return { url: recorded, source: 'embedded-file' };
    // The service adopts it, and stops it on shutdown like one it started.
    const stop = async () => {
      await shutdownByCommand(recorded);
      rmSync(urlFile(config.dataDir), { force: true });
    };
    return { url: recorded, source: 'embedded-file', stop };
  }
  if (await redisAnswers(defaultUrl)) return { url: defaultUrl, source: 'default' };
  if (!opts.spawn) throw new UserError(`${HOW_TO_GET_REDIS}; or start the service (nia-link start), which starts one`, 'redis.unreachable');
  if (!hasRedisServer()) throw new UserError(HOW_TO_GET_REDIS, 'redis.unreachable');
  return spawnEmbedded(config.dataDir);
}

async function spawnEmbedded(dataDir: string): Promise<ResolvedRedis> {
  const dir = path.join(dataDir, 'redis');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const port = await freePort();
  const child: ChildProcess = spawn(
    'redis-server',
    ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--appendonly', 'yes', '--save', '', '--maxmemory-policy', 'noeviction', '--protected-mode', 'yes', '--logfile', path.join(dir, 'redis.log')],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
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
  const tmp = `${urlFile(dataDir)}.tmp`;
  writeFileSync(tmp, url + '\n', { mode: 0o600 });
  renameSync(tmp, urlFile(dataDir));
  return {
    url,
    source: 'embedded',
    stop: async () => {
      if (existsSync(urlFile(dataDir)) && readUrlFile(dataDir) === url) rmSync(urlFile(dataDir), { force: true });
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
