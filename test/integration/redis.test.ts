import { Queue } from 'bullmq';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { connection, queuePrefix, redisAnswers, resolveRedis } from '../../src/queue';
import { tmpDir } from '../helpers/world';

const TEST_URL = process.env.NIA_TEST_REDIS_URL!;
const NOBODY = 'redis://127.0.0.1:1'; // nothing listens on port 1

describe('Redis resolution (DESIGN: REDIS_URL → 127.0.0.1:6379 → embedded redis-server)', () => {
  let dir: string;
  beforeEach(() => (dir = tmpDir()));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('uses REDIS_URL when it answers, and refuses with a clear message when it does not', async () => {
    expect(await resolveRedis(loadConfig({ dataDir: dir }, { REDIS_URL: TEST_URL }), { spawn: false })).toMatchObject({ url: TEST_URL, source: 'REDIS_URL' });
    await expect(resolveRedis(loadConfig({ dataDir: dir }, { REDIS_URL: NOBODY }), { spawn: true })).rejects.toThrow(/does not answer/);
  });

  it('uses the default address when it answers', async () => {
    expect(await resolveRedis(loadConfig({ dataDir: dir }, {}), { spawn: false, defaultUrl: TEST_URL })).toMatchObject({ source: 'default' });
  });

  it('a CLI command with no Redis anywhere says how to get one', async () => {
    await expect(resolveRedis(loadConfig({ dataDir: dir }, {}), { spawn: false, defaultUrl: NOBODY })).rejects.toThrow(/docker compose up -d redis/);
  });

  it('the service starts an embedded redis-server under the data dir, records its URL for CLI commands, and stops it', async () => {
    const cfg = loadConfig({ dataDir: dir }, {});
    const r = await resolveRedis(cfg, { spawn: true, defaultUrl: NOBODY });
    try {
      expect(r.source).toBe('embedded');
      expect(await redisAnswers(r.url)).toBe(true);
      expect(readFileSync(path.join(dir, 'redis.url'), 'utf8').trim()).toBe(r.url);
      expect(existsSync(path.join(dir, 'redis'))).toBe(true);
      // A CLI command (no spawning) finds the same server through the data dir.
      expect(await resolveRedis(cfg, { spawn: false, defaultUrl: NOBODY })).toMatchObject({ url: r.url, source: 'embedded-file' });
    } finally {
      await r.stop!();
    }
    expect(await redisAnswers(r.url)).toBe(false);
    expect(existsSync(path.join(dir, 'redis.url'))).toBe(false);
  });

  it('two installations sharing one Redis never see each other\'s jobs (instance prefix)', async () => {
    const a = loadConfig({ dataDir: path.join(dir, 'a') }, {});
    const b = loadConfig({ dataDir: path.join(dir, 'b') }, {});
    expect(a.instanceId).not.toBe(b.instanceId);
    const qa = new Queue('extract', { connection: connection(TEST_URL), prefix: queuePrefix(a) });
    const qb = new Queue('extract', { connection: connection(TEST_URL), prefix: queuePrefix(b) });
    try {
      await qa.add('x', { link: 1 });
      expect(await qa.getJobCounts('waiting')).toEqual({ waiting: 1 });
      expect(await qb.getJobCounts('waiting')).toEqual({ waiting: 0 });
    } finally {
      await qa.obliterate({ force: true });
      await qa.close();
      await qb.close();
    }
  });
});
