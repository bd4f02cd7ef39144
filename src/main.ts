import { type Job, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import path from 'node:path';
import type { Config } from './config';
import { mkdirSync } from 'node:fs';
import type { ControlDb } from './db';
import { openControl } from './db/open';
import { ensureKeys, hostKeys } from './crypto';
import { systemClock, type Clock } from './domain';
import { buildHttpApp, hasOperators } from './http';
import { createLogger, type Logger } from './logger';
import { closeQueues, connection, openQueue, QUEUES, queuePrefix, redactRedisUrl, resolveRedis, syncSchedules } from './queue';
import { buildServices, type Services } from './services';
import { buildExtractProcessor } from '../jobs/build-extract';
import { MAINTENANCE_SCHEDULES, maintenanceIntervals, maintenanceProcessor } from '../jobs/maintenance';
import { pushDeliveryProcessor } from '../jobs/push-delivery';
import { usageRecordsService } from '../jobs/send-usage-records';
import type { UsageRecordsService } from './usagelog';
import { enqueuePushJobs } from './delivery';
import { csvExtensionBuilt } from './extract';
import { UserError } from './errors';
import { BatchService, batchProcessor } from './batch';
import { queryIdSecret } from './crypto';
import { RedisDailyCap } from './query/cap';
import { openExtractSource } from './extract';

import type { Role } from './roles';
export { ROLES, type Role } from './roles';

export interface RunningService {
  stop(): Promise<void>;
  httpPort?: number;
  sftpPort?: number;
  queryPort?: number;
}

const SCHEDULE_SYNC_MS = 10_000;

function startWorkers(config: Config, url: string, services: Services, log: Logger, usageRecords: UsageRecordsService, env: { cdb: ControlDb; clock: Clock }): { workers: Worker[]; close: () => Promise<void> } {
  const opts = { connection: connection(url), prefix: queuePrefix(config) };
  const deliverQ = openQueue(QUEUES.deliver, config, url, log);
  const enqueuePushes = async (deliveryId: number) => enqueuePushJobs(deliverQ, services.pushes, await services.pushes.jobsFor(deliveryId), false);
  // One extract at a time per process: extracts are CPU-bound; scale out with more worker processes.
  const extract = new Worker(QUEUES.extract, buildExtractProcessor(services.extracts, enqueuePushes), { ...opts, concurrency: 1, lockDuration: config.worker.lockMs, stalledInterval: Math.max(1000, Math.floor(config.worker.lockMs / 2)) });
  // Pushes wait on the network, not the CPU: several at once.
  const deliver = new Worker(QUEUES.deliver, pushDeliveryProcessor(services.pushes), { ...opts, concurrency: 4 });
  const maintenance = new Worker(QUEUES.maintenance, maintenanceProcessor(services, { records: usageRecords, onSent: enqueuePushes }), { ...opts, concurrency: 1 });
  const batch = startBatchWorker(config, url, services, env, opts, enqueuePushes, log);
  const workers = [extract, deliver, maintenance, batch.worker];
  for (const w of workers) {
    w.on('failed', (job: Job | undefined, err: Error) => log.warn({ queue: w.name, job: job?.id, attempts: job?.attemptsMade, err: err.message }, 'job failed'));
    w.on('error', (err) => log.error({ queue: w.name, err: err.message }, 'worker error'));
  }
  // Close lets running jobs finish (drain) before the process goes.
  return {
    workers,
    close: async () => {
      batch.stopSweeps();
      await closeQueues(workers, url);
      await closeQueues([deliverQ, batch.queue], url);
      batch.disconnect();
    },
  };
}

/**
 * Queue `batch` (R2.2): uploads to /inbox, one at a time per process (decrypting and answering are
 * CPU-bound). The daily identifier cap is the online query's own count in Redis. Every sweepSec the
 * uploads still pending after staleSec are queued again: the SFTP role may have died between
 * committing an upload and queuing it (the job id makes a second enqueue of a queued upload a no-op).
 */
function startBatchWorker(config: Config, url: string, services: Services, env: { cdb: ControlDb; clock: Clock }, opts: { connection: ReturnType<typeof connection>; prefix: string }, onAnswered: (deliveryId: number) => Promise<void>, log: Logger) {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.on('error', (err) => log.warn({ err: err.message }, 'batch: redis connection error'));
  const service = new BatchService({
    cdb: env.cdb,
    registry: services.registry,
    clock: env.clock,
    outbox: services.outbox,
    keysDir: config.keysDir,
    openSource: () => openExtractSource(config),
    retentionDays: config.outbox.retentionDays,
    settings: config.batch,
    cap: new RedisDailyCap(redis, queuePrefix(config)),
    idSecret: queryIdSecret(config.keysDir),
  });
  const worker = new Worker(QUEUES.batch, batchProcessor(service, onAnswered), { ...opts, concurrency: 1, lockDuration: config.worker.lockMs, stalledInterval: Math.max(1000, Math.floor(config.worker.lockMs / 2)) });
  const queue = openQueue(QUEUES.batch, config, url, log);
  let sweeping = false;
  const timer = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    service
      .stale(config.batch.staleSec)
      .then((ids) => Promise.all(ids.map((id) => queue.add('batch-request', { uploadId: id }, { jobId: `upload-${id}` }))))
      .catch((err) => log.error({ err: (err as Error).message }, 'batch: sweep of pending uploads failed'))
      .finally(() => (sweeping = false));
  }, config.batch.sweepSec * 1000);
  timer.unref();
  return {
    worker,
    queue,
    stopSweeps: () => clearInterval(timer),
    /** Once the worker has closed: its jobs use this connection. */
    disconnect: () => redis.disconnect(),
  };
}


/**
 * The composition root: config → database → keys → Redis → the roles asked for. Each role prints one
 * line saying what it does where; the last line says `ready`.
 */
export async function startService(config: Config, roles: readonly Role[], say: (line: string) => void, clock: Clock = systemClock): Promise<RunningService> {
  const log = createLogger(config.logLevel);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const cdb = await openControl(config, { create: true, onIdleError: (message) => log.warn({ err: message }, 'control database: an idle connection failed; the pool replaces it') });
  const stops: (() => Promise<void> | void)[] = [() => cdb.close()];
  let stopped = false;
  const stopAll = async () => {
    if (stopped) return;
    stopped = true;
    for (const s of stops.reverse()) {
      try {
        await s();
      } catch (err) {
        log.error({ err }, 'error while stopping');
      }
    }
  };
  try {
    await ensureKeys(config.keysDir, clock.now());
    const services = buildServices(config, cdb, clock);
    const redisInfo = await resolveRedis(config, { spawn: true });
    if (redisInfo.stop) stops.push(redisInfo.stop);
    say(`redis: ${redactRedisUrl(redisInfo.url)} (${redisInfo.source === 'embedded' ? 'embedded, data in ' + path.join(config.dataDir, 'redis') : redisInfo.source}), key prefix ${queuePrefix(config)}`);

    if (roles.includes('worker')) {
      const { workers, close } = startWorkers(config, redisInfo.url, services, log, usageRecordsService(config, cdb, clock, services), { cdb, clock });
      stops.push(close);
      say(`worker: processing queues ${workers.map((w) => w.name).join(', ')}; files into the outbox ${services.outbox.root}`);
      if (!csvExtensionBuilt()) log.warn('the CSV extension (dist/native) is not built: extracts read rows one by one, several times slower; run `npm run build`');
    }
    if (roles.includes('scheduler')) {
      const extractQ = openQueue(QUEUES.extract, config, redisInfo.url, log);
      const maintenanceQ = openQueue(QUEUES.maintenance, config, redisInfo.url, log);
      for (const m of MAINTENANCE_SCHEDULES) await maintenanceQ.upsertJobScheduler(m.key, { pattern: m.pattern, tz: 'Asia/Taipei' }, { name: m.name });
      for (const m of maintenanceIntervals(config)) await maintenanceQ.upsertJobScheduler(m.key, { every: m.every }, { name: m.name });
      const sync = async () => {
        const links = (await services.registry.list()).map((l) => ({ id: l.id, schedule: l.schedule, active: l.status === 'active' }));
        const r = await syncSchedules(extractQ, links);
        if (r.added.length || r.updated.length || r.removed.length) log.info(r, 'job schedulers synchronised');
      };
      await sync();
      let running = false;
      const timer = setInterval(() => {
        if (running) return;
        running = true;
        sync()
          .catch((err) => log.error({ err: (err as Error).message }, 'schedule sync failed'))
          .finally(() => (running = false));
      }, SCHEDULE_SYNC_MS);
      stops.push(async () => {
        clearInterval(timer);
        await closeQueues([extractQ, maintenanceQ], redisInfo.url);
      });
      say(`scheduler: link delivery schedules (Asia/Taipei) synchronised every ${SCHEDULE_SYNC_MS / 1000} s; compliance sweep daily at 00:30, outbox purge at 03:15, each agency's usage records of the previous month on the 1st at 01:00; usage-log checkpoint every ${config.usageLog.checkpointEveryMinutes} min, anomaly scan every ${config.anomaly.everyMinutes} min`);
    }
    let httpPort: number | undefined;
    if (roles.includes('http')) {
      // Its own connection: /healthz reports whether Redis answers, logins are counted per address.
      // One retry: a login must not wait for ever on a Redis that is down.
      const redis = new Redis(redisInfo.url, { maxRetriesPerRequest: 1 });
      redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
      stops.push(() => void redis.disconnect());
      // bull-board and the queue depths read these; a retried push goes onto `deliver`.
      const queues = { extract: openQueue(QUEUES.extract, config, redisInfo.url, log), deliver: openQueue(QUEUES.deliver, config, redisInfo.url, log), maintenance: openQueue(QUEUES.maintenance, config, redisInfo.url, log) };
      stops.push(() => closeQueues(Object.values(queues), redisInfo.url));
      const app = await buildHttpApp({ config, cdb, redis, services, queues, clock, log });
      await listening('http', 'http.host / http.port', config.http.host, config.http.port, app.listen({ host: config.http.host, port: config.http.port }));
      const addr = app.server.address();
      httpPort = typeof addr === 'object' && addr ? addr.port : config.http.port;
      stops.push(() => app.close());
      say(`http: listening on http://${config.http.host}:${httpPort} (operator console: /login, /queues, /api, /metrics, /healthz)`);
      if (!(await hasOperators(cdb))) say('http: no console operator yet: nia-link operator add --username NAME --role admin');
    }
    let sftpPort: number | undefined;
    if (roles.includes('sftp')) {
      const { startSftpRole } = await import('./sftp');
      const sftp = await listening('sftp', 'sftp.host / sftp.port', config.sftp.host, config.sftp.port, startSftpRole({ config, cdb, services, redisUrl: redisInfo.url, clock, log }));
      sftpPort = sftp.port;
      stops.push(() => sftp.close());
      say(`sftp: listening on ${config.sftp.host}:${sftpPort}${sftp.processes > 1 ? ` in ${sftp.processes} processes` : ''} (read-only /outbox per account; host keys ${hostKeys(config.keysDir).map((k) => k.fingerprint).join(', ')})`);
    }
    let queryPort: number | undefined;
    if (roles.includes('query')) {
      const { startQueryRole } = await import('./query');
      const q = await listening('query', 'query.host / query.port', config.query.host, config.query.port, startQueryRole({ config, cdb, services, redisUrl: redisInfo.url, clock, log }));
      queryPort = q.port;
      stops.push(() => q.close());
      say(`query: listening on https://${config.query.host}:${queryPort}/query/v1${q.processes > 1 ? ` in ${q.processes} processes` : ''} (mutual TLS; server certificate ${config.keysDir}/query-server.crt)`);
    }
    say(`nia-link ready (data ${config.dataDir}, instance ${config.instanceId})`);
    return { stop: stopAll, httpPort, sftpPort, queryPort };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

const LISTEN_ERRORS: Record<string, string> = { EADDRINUSE: 'the address is already in use', EACCES: 'permission denied', EADDRNOTAVAIL: 'no such address on this machine' };

/** A port that is taken, privileged or not on this machine is the operator's to fix: one line naming the setting. */
async function listening<T>(role: string, setting: string, host: string, port: number, start: Promise<T>): Promise<T> {
  try {
    return await start;
  } catch (err) {
    const why = LISTEN_ERRORS[(err as { code?: string }).code ?? ''];
    if (why) throw new UserError(`${role}: cannot listen on ${host}:${port}: ${why} (set ${setting})`, 'listen.failed');
    throw err;
  }
}
