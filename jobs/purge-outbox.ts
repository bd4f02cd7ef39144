import type { ExtractService } from '../src/extract';

/** Daily job: delivered files past their retention, or of ended links, are removed (R-F5). */
export function purgeOutboxProcessor(service: ExtractService) {
  return async (): Promise<{ purged: number; partials: number }> => service.purge('scheduler');
}
