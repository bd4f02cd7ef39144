import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config';
import { ensureKeys } from '../../src/crypto';
import { buildHttpApp, OperatorService } from '../../src/http';
import { openQueue, QUEUES } from '../../src/queue';
import { buildServices, type Services } from '../../src/services';
import { appendLog } from '../../src/usagelog';
import { person, writeEntryExitSource } from './source';
import { application, approvedLink, cleanupKeys, makeAgencyKeys, openTestWorld, type AgencyKeys, type AnyWorld } from './world';

export const PASSWORD = 'correct horse battery staple';
export const OPERATORS = { admin: 'ada', operator: 'oscar', auditor: 'audrey' } as const;
export const EVIL_PURPOSE = '<script>alert("xss")</script> 稽核 & <b>bold</b>';

export interface ConsoleWorld {
  w: AnyWorld;
  keys: AgencyKeys;
  config: Config;
  services: Services;
  app: FastifyInstance;
  /** An active link with a delivery whose sftp-push failed, a download and a pending change request. */
  delivered: { linkId: number; deliveryId: number; changeId: number };
  /** A pending application whose purpose is markup. */
  evilLinkId: number;
  close(): Promise<void>;
}

export const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });

/**
 * A control database (of this test pass's dialect) with what the console shows: an agency, an active link with a built delivery
 * (real extract, real OpenPGP), a push to a closed port that failed, an SFTP download record, a
 * pending change, a pending application with markup in its purpose, and one operator per role.
 */
export async function consoleWorld(env: Record<string, string> = {}, file: Record<string, unknown> = {}): Promise<ConsoleWorld> {
  const keys = makeAgencyKeys();
  const w = await openTestWorld();
  writeFileSync(path.join(w.dataDir, 'config.json'), JSON.stringify(file));
  const redisUrl = process.env.NIA_TEST_REDIS_URL!;
  const config = { ...loadConfig({ dataDir: w.dataDir }, { REDIS_URL: redisUrl, NIA_LINK_LOG_LEVEL: 'silent', NIA_LINK_PUSH_CONNECT_TIMEOUT_MS: '1000', ...env }), database: w.database };
  await ensureKeys(config.keysDir, new Date());
  writeEntryExitSource(w.dataDir, [person(1), person(2), person(3)], '2026-01-01T00:00:00.000Z');
  const services = buildServices(config, w.cdb, w.clock);

  const closed = await freePort();
  const linkId = await approvedLink(w, keys, {
    methods: ['sftp-pull', 'sftp-push'],
    push: { host: '127.0.0.1', port: closed, user: 'nia', dir: '/inbox', fingerprint: 'SHA256:' + 'A'.repeat(43) },
  });
  const d = await services.extracts.run({ key: 'console-test-1', linkId, full: true, trigger: 'manual' }, { finalAttempt: true });
  await services.pushes.run({ deliveryId: d.id, channel: 'sftp-push' }, { attempt: 1, finalAttempt: true }).catch(() => undefined);
  await w.cdb.write((tx) =>
    appendLog(tx, { type: 'file.downloaded', agency: 'A001', linkId, revision: 1, actor: 'a001', ip: '127.0.0.1', channel: 'sftp-pull', object: d.path!.split('/').pop()!, detail: { delivery: d.id, file: 'data', bytes: d.bytes, size: d.bytes, from: 0, to: d.bytes, result: 'complete' } }, w.clock.now()),
  );
  const change = await services.registry.fileChange(linkId, 'officer', { value: '林小華' }, 'agency:A001');
  const evil = await w.registry.apply(application(keys, { purpose: EVIL_PURPOSE, account: 'a001x' }), 'agency:A001');

  const operators = new OperatorService(w.cdb, w.clock, config.http);
  for (const [role, username] of Object.entries(OPERATORS)) await operators.add({ username, role, password: PASSWORD }, 'test');

  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const queues = { extract: openQueue(QUEUES.extract, config, redisUrl), deliver: openQueue(QUEUES.deliver, config, redisUrl), maintenance: openQueue(QUEUES.maintenance, config, redisUrl) };
  const { createLogger } = await import('../../src/logger');
  const app = await buildHttpApp({ config, cdb: w.cdb, redis, services, queues, clock: w.clock, log: createLogger('silent') });
  await app.ready();
  return {
    w,
    keys,
    config,
    services,
    app,
    delivered: { linkId, deliveryId: d.id, changeId: change.id },
    evilLinkId: evil.id,
    async close() {
      await app.close();
      await services.linkEvents.settled();
      for (const q of Object.values(queues)) {
        await q.obliterate({ force: true }).catch(() => undefined);
        await q.close();
      }
      await redis.quit().catch(() => redis.disconnect());
      await w.close();
      cleanupKeys(keys);
    },
  };
}
