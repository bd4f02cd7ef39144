import type { Job } from 'bullmq';
import type { Config } from '../src/config';
import type { Services } from '../src/services';
import { checkpointLogProcessor } from './checkpoint-log';
import { complianceSweepProcessor } from './compliance-sweep';
import { detectAnomaliesProcessor } from './detect-anomalies';
import { purgeOutboxProcessor } from './purge-outbox';
import { sendUsageRecordsProcessor } from './send-usage-records';
import type { UsageRecordsService } from '../src/usagelog';

/** The recurring jobs of the `maintenance` queue: scheduler key, cron (Asia/Taipei), job name. */
export const MAINTENANCE_SCHEDULES = [
  { key: 'compliance-sweep', pattern: '30 0 * * *', name: 'compliance-sweep' },
  { key: 'outbox-purge', pattern: '15 3 * * *', name: 'purge-outbox' },
  // R6.5: each agency receives the previous month's records of its own use on the first of a month.
  { key: 'usage-records', pattern: '0 1 1 * *', name: 'send-usage-records' },
] as const;

/** The recurring jobs whose interval is configured: scheduler key, every (ms), job name. */
export const maintenanceIntervals = (config: Config) => [
  { key: 'log-checkpoint', every: config.usageLog.checkpointEveryMinutes * 60_000, name: 'checkpoint-log' },
  { key: 'anomaly-scan', every: config.anomaly.everyMinutes * 60_000, name: 'detect-anomalies' },
];

/** One worker serves the queue; the job's name says which processor runs. */
export function maintenanceProcessor(services: Services, usage?: { records: UsageRecordsService; onSent: (deliveryId: number) => Promise<void> }) {
  const byName: Record<string, (job: Job) => Promise<unknown>> = {
    ...(usage ? { 'send-usage-records': sendUsageRecordsProcessor(usage.records, usage.onSent) } : {}),
    'compliance-sweep': complianceSweepProcessor(services.compliance),
    'purge-outbox': purgeOutboxProcessor(services.extracts),
    'checkpoint-log': checkpointLogProcessor(services.usageLog),
    'detect-anomalies': detectAnomaliesProcessor(services.usageLog),
  };
  return async (job: Job): Promise<unknown> => {
    const run = byName[job.name];
    if (!run) throw new Error(`no processor for maintenance job '${job.name}'`);
    return run(job);
  };
}
