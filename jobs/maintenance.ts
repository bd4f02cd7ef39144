import type { Job } from 'bullmq';
import type { Services } from '../src/services';
import { complianceSweepProcessor } from './compliance-sweep';
import { purgeOutboxProcessor } from './purge-outbox';

/** The recurring jobs of the `maintenance` queue: scheduler key, cron (Asia/Taipei), job name. */
export const MAINTENANCE_SCHEDULES = [
  { key: 'compliance-sweep', pattern: '30 0 * * *', name: 'compliance-sweep' },
  { key: 'outbox-purge', pattern: '15 3 * * *', name: 'purge-outbox' },
] as const;

/** One worker serves the queue; the job's name says which processor runs. */
export function maintenanceProcessor(services: Services) {
  const byName: Record<string, (job: Job) => Promise<unknown>> = {
    'compliance-sweep': complianceSweepProcessor(services.compliance),
    'purge-outbox': purgeOutboxProcessor(services.extracts),
  };
  return async (job: Job): Promise<unknown> => {
    const run = byName[job.name];
    if (!run) throw new Error(`no processor for maintenance job '${job.name}'`);
    return run(job);
  };
}
