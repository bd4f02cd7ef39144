import type { Queue } from 'bullmq';

/**
 * What each queue's jobs carry, in one place: the producer (CLI, scheduler, SFTP role) and the
 * processor (worker) type the same payload, so a field one side sends cannot be ignored by the other
 * unnoticed. Payloads hold ids only; what they name is read fresh when the job runs.
 */
export interface JobTypes {
  extract: {
    data: {
      linkId: number;
      full?: boolean;
      trigger: 'manual' | 'schedule';
      /** Who asked for a manual extract (the operator); the usage log records the extract as theirs. */
      by?: string;
    };
    result: { deliveryId: number };
    // BullMQ types a job scheduler's id as a job name: `link:<id>` is the scheduler of a link's schedule.
    name: 'manual-extract' | 'scheduled-extract' | `link:${number}`;
  };
  deliver: {
    data: { deliveryId: number; channel: 'sftp-push' | 'email' };
    result: void;
    name: 'sftp-push' | 'email';
  };
  maintenance: {
    data: Record<string, unknown>;
    result: unknown;
    name: 'compliance-sweep' | 'purge-outbox' | 'send-usage-records' | 'checkpoint-log' | 'detect-anomalies' | (string & {});
  };
  batch: {
    data: { uploadId: number };
    result: unknown;
    name: 'batch-request';
  };
}

export type QueueName = keyof JobTypes;
export type JobData<K extends QueueName> = JobTypes[K]['data'];
export type TypedQueue<K extends QueueName> = Queue<JobTypes[K]['data'], JobTypes[K]['result'], JobTypes[K]['name']>;
