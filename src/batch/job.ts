import type { Job } from 'bullmq';
import type { JobData } from '../queue/jobs';
import { SupersededAttempt } from '../errors';
import type { BatchOutcome, BatchService } from './service';

/**
 * Queue `batch`: one upload per job (job id `upload-<id>`, so an upload is queued once however often
 * it is re-sent to the queue). A refusal is an outcome, not a failure; an error no retry fixed gives
 * the agency an error file on the last attempt. An answer goes on to the link's push channels.
 */
export function batchProcessor(service: BatchService, onAnswered: (deliveryId: number) => Promise<void>) {
  return async (job: Job<JobData<'batch'>>): Promise<BatchOutcome> => {
    const finalAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    let outcome: BatchOutcome;
    try {
      outcome = await service.process(job.data.uploadId);
    } catch (err) {
      // Another attempt of this job owns the upload now (this worker stalled past its lock): leave it be.
      if (!finalAttempt || err instanceof SupersededAttempt) throw err;
      outcome = await service.fail(job.data.uploadId, (err as Error).message);
    }
    // Push job ids derive from the delivery: a job run again does not push twice.
    if (outcome.state === 'answered' && outcome.delivery !== null) await onAnswered(outcome.delivery);
    return outcome;
  };
}
