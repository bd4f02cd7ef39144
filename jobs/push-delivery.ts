import { type Job, UnrecoverableError } from 'bullmq';
import { type PushJob, type PushService } from '../src/delivery';
import { PermanentError } from '../src/errors';

/** Queue `deliver`: one push channel of one delivery. Refusals (host key, auth, channel removed) are not retried. */
export function pushDeliveryProcessor(service: PushService) {
  return async (job: Job<PushJob>): Promise<void> => {
    const attempt = job.attemptsMade + 1;
    try {
      await service.run(job.data, { attempt, finalAttempt: attempt >= (job.opts.attempts ?? 1) });
    } catch (err) {
      if (err instanceof PermanentError) throw new UnrecoverableError(err.message);
      throw err;
    }
  };
}
