import type { Config } from '../config';

// Queue names and the key prefix, apart from the queues themselves: the front ends (SFTP, online
// query) name keys and queues without loading BullMQ until they first queue something.

/** Queue names: one concept each. */
export const QUEUES = {
  extract: 'extract',
  deliver: 'deliver',
  maintenance: 'maintenance',
  /** R2.2: one job per upload to /inbox (a batch request or a subject list), job id `upload-<id>`. */
  batch: 'batch',
} as const;

/** Every key of this installation starts with this, so installations sharing a Redis never meet. */
export function queuePrefix(config: Pick<Config, 'instanceId'>): string {
  return `nia:${config.instanceId}`;
}
