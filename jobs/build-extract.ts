import { type Job, UnrecoverableError } from 'bullmq';
import type { ExtractService } from '../src/extract';
import { PermanentError } from '../src/errors';
import type { JobData, JobTypes } from '../src/queue';

export type BuildExtractData = JobData<'extract'>;

/** Queue `extract`: build one delivery. Job data holds ids only; the link is read fresh when it runs. */
export function buildExtractProcessor(service: ExtractService, onBuilt: (deliveryId: number) => Promise<void> = async () => undefined) {
  return async (job: Job<BuildExtractData>): Promise<JobTypes['extract']['result']> => {
    const finalAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    try {
      const d = await service.run({ key: `extract:${job.id}`, linkId: job.data.linkId, full: !!job.data.full, trigger: job.data.trigger, by: job.data.by }, { finalAttempt });
      // Enqueued with ids derived from the delivery: a retried extract job does not push twice.
      await onBuilt(d.id);
      return { deliveryId: d.id };
    } catch (err) {
      if (err instanceof PermanentError) throw new UnrecoverableError(err.message);
      throw err;
    }
  };
}
