import type { Config } from '../config';

export * from './redis';

/** Queue names: one concept each. */
export const QUEUES = {
  extract: 'extract',
  deliver: 'deliver',
  compliance: 'compliance',
} as const;

/** Every key of this installation starts with this, so installations sharing a Redis never meet. */
export function queuePrefix(config: Pick<Config, 'instanceId'>): string {
  return `nia:${config.instanceId}`;
}
