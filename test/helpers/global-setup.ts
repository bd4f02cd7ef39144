import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { redisAnswers } from '../../src/queue/redis';

/** A private redis-server for the whole suite, on a free port: tests never touch anyone's Redis. */
export default async function globalSetup(): Promise<void> {
  const port: number = await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nia-link-test-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore', detached: false });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (await redisAnswers(url, 300)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!(await redisAnswers(url, 1000))) throw new Error('test redis-server did not start (is redis-server installed?)');
  process.env.NIA_TEST_REDIS_URL = url;
  writeFileSync(path.join(dir, 'pid'), String(child.pid));
  (globalThis as any).__NIA_TEST_REDIS__ = child;
}
