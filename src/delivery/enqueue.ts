import type { TypedQueue } from '../queue/jobs';
import type { PushJob, PushService } from './service';

/**
 * Queue push jobs on `deliver` with ids derived from the delivery and channel, so a repeated call
 * (a retried extract job) adds nothing; a retry asked for by an operator gets fresh ids.
 */
export async function enqueuePushJobs(queue: TypedQueue<'deliver'>, pushes: PushService, jobs: PushJob[], retry: boolean): Promise<void> {
  if (jobs.length === 0) return;
  await pushes.markQueued(jobs, retry);
  const suffix = retry ? `-retry-${Date.now()}` : '';
  await queue.addBulk(jobs.map((j) => ({ name: j.channel, data: j, opts: { jobId: `push-${j.deliveryId}-${j.channel}${suffix}` } })));
}
