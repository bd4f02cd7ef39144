import { Queue, Worker } from 'bullmq';
import { redisAnswers } from './redis';
import type { Config } from '../config';
import type { Logger } from '../logger';

export * from './redis';
export { syncSchedules, type ScheduleSync } from './schedules';
export type { JobData, JobTypes, QueueName, TypedQueue } from './jobs';
import type { JobData, JobTypes, QueueName, TypedQueue } from './jobs';

export { QUEUES, queuePrefix } from './names';
import { queuePrefix } from './names';

/** Marks a connection's options once its queues are being closed with Redis gone (closeQueues). */
const ENDING = Symbol('ending');
type Ours = { [ENDING]?: boolean };

/**
 * Options every BullMQ connection needs (workers block; they must not give up on a slow command).
 * A lost connection is re-established every 1 to 2 s, until closeQueues gives it up.
 */
export function connection(url: string) {
  const options: Ours & { url: string; maxRetriesPerRequest: null; enableReadyCheck: true; retryStrategy: (times: number) => number | null } = {
    url,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => (options[ENDING] ? null : Math.min(Math.max(Math.exp(times), 1000), 2000)),
  };
  return options;
}

/**
 * A queue with the installation's prefix and its retry policy (exponential backoff; failed jobs kept
 * for inspection). Its connection's errors go to `log` (a service's), or nowhere for a command,
 * whose own calls fail with them; BullMQ prints them, stack and all, to stderr when nobody listens.
 */
export function openQueue<K extends QueueName>(name: K, config: Config, url: string, log?: Pick<Logger, 'warn'>): TypedQueue<K> {
  const queue = new Queue<JobData<K>, JobTypes[K]['result'], JobTypes[K]['name']>(name, {
    connection: connection(url),
    prefix: queuePrefix(config),
    defaultJobOptions: {
      attempts: config.worker.attempts,
      backoff: { type: 'exponential', delay: config.worker.backoffMs },
      removeOnComplete: { count: 1000 },
      removeOnFail: { count: 5000 },
    },
  });
  queue.on('error', (err) => log?.warn({ queue: name, err: err.message }, 'queue: redis connection error'));
  return queue;
}

/**
 * Resolves true when `work` has ended, or false as soon as Redis answers nothing (checked every
 * `everyMs` while it runs): what waits on a Redis that is gone would wait for ever.
 */
async function whileRedisAnswers(work: Promise<unknown>, url: string, everyMs: number): Promise<boolean> {
  let done = false;
  void work.then(() => (done = true));
  while (!done) {
    await Promise.race([work, new Promise((r) => setTimeout(r, everyMs).unref())]);
    if (!done && !(await redisAnswers(url, everyMs))) return false;
  }
  return true;
}

/**
 * Close workers and queues. Workers first take no more jobs and let those running finish (drain);
 * then every connection is closed, with nothing left to wait for. Redis may be gone meanwhile (down,
 * or stopped by the same signal as the service: a terminal's Ctrl-C and a service manager signal the
 * whole process group): then nothing is waited on and the connections are dropped, so the rest of the
 * shutdown runs and the process can end. A job cut off so is found stalled and run again (its
 * delivery is fenced: it is not published twice).
 */
export async function closeQueues(items: readonly (Worker<any, any, any> | Queue<any, any, any>)[], url: string, checkEveryMs = 500): Promise<void> {
  // Redis is gone: nothing more is waited for. Connections BullMQ is re-establishing give up at their
  // next try (their timers would keep the process alive); the others are dropped now. Not awaited:
  // BullMQ resolves a disconnect only once the connection is back.
  const abandon = () => {
    for (const i of items) {
      (i.opts.connection as Ours)[ENDING] = true;
      if (i instanceof Worker) void i.close(true).catch(() => undefined);
      void i.disconnect().catch(() => undefined);
    }
  };
  if (!(await redisAnswers(url, checkEveryMs))) return abandon();
  const workers = items.filter((i) => i instanceof Worker);
  if (!(await whileRedisAnswers(Promise.allSettled(workers.map((w) => w.pause())), url, checkEveryMs))) return abandon();
  // Drained: a worker's close has nothing left to wait for (force), a queue's sends QUIT.
  const closing = Promise.allSettled(items.map((i) => (i instanceof Worker ? i.close(true) : i.close())));
  if (!(await whileRedisAnswers(closing, url, checkEveryMs))) abandon();
}
