import { Queue } from 'bullmq';
import type { Config } from '../config';

export * from './redis';
export { syncSchedules, type ScheduleSync } from './schedules';
export type { JobData, JobTypes, QueueName, TypedQueue } from './jobs';
import type { JobData, JobTypes, QueueName, TypedQueue } from './jobs';

export { QUEUES, queuePrefix } from './names';
import { queuePrefix } from './names';

/** Options every BullMQ connection needs (workers block; they must not give up on a slow command). */
export function connection(url: string) {
  return { url, maxRetriesPerRequest: null, enableReadyCheck: true };
}

/** A queue with the installation's prefix and its retry policy (exponential backoff; failed jobs kept for inspection). */
export function openQueue<K extends QueueName>(name: K, config: Config, url: string): TypedQueue<K> {
  return new Queue<JobData<K>, JobTypes[K]['result'], JobTypes[K]['name']>(name, {
    connection: connection(url),
    prefix: queuePrefix(config),
    defaultJobOptions: {
      attempts: config.worker.attempts,
      backoff: { type: 'exponential', delay: config.worker.backoffMs },
      removeOnComplete: { count: 1000 },
      removeOnFail: { count: 5000 },
    },
  });
}
