import type { Config } from '../config';

/**
 * "Link N changed" on Redis pub/sub, so that every SFTP process re-checks the sessions of that link at
 * once (a suspension, termination, account or allow-list change closes them within seconds, whichever
 * process made the change). Best effort: SFTP processes also re-check on a timer, so a lost message
 * only delays the closing.
 */
export function linkEventsChannel(config: Pick<Config, 'instanceId'>): string {
  return `nia:${config.instanceId}:events:link-changed`;
}

const PUBLISH_TIMEOUT_MS = 1500;

export interface LinkEventPublisher {
  publish(linkId: number): void;
  /** Resolves when every publish so far has been sent or given up. */
  settled(): Promise<void>;
}

/**
 * Publishes over a short-lived connection: link changes are rare, and a CLI command must not keep a
 * connection open (or wait long) because of them. Redis and the queue module load only on first use.
 */
export function linkEventPublisher(config: Config, warn: (msg: string) => void = () => undefined): LinkEventPublisher {
  let pending: Promise<void> = Promise.resolve();
  const send = async (linkId: number): Promise<void> => {
    const [{ Redis }, { resolveRedis }] = await Promise.all([import('ioredis'), import('./redis')]);
    const { url } = await resolveRedis(config, { spawn: false });
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: PUBLISH_TIMEOUT_MS });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      await redis.publish(linkEventsChannel(config), String(linkId));
    } finally {
      redis.disconnect();
    }
  };
  return {
    publish(linkId) {
      const attempt = Promise.race([
        send(linkId),
        new Promise<void>((_, reject) => setTimeout(() => reject(new Error('timed out')), PUBLISH_TIMEOUT_MS).unref()),
      ]).catch((err: Error) => warn(`link ${linkId} change not announced on Redis (${err.message}); SFTP sessions are re-checked periodically anyway`));
      pending = pending.then(() => attempt);
    },
    settled: () => pending,
  };
}
