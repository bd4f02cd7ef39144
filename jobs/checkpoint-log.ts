import type { UsageLogService } from '../src/usagelog';

/** Recurring job: sign the usage log's head (seq, hash, time) when it moved, after checking the records since the last checkpoint. */
export function checkpointLogProcessor(service: UsageLogService) {
  return async (): Promise<{ seq: number; created: boolean } | null> => {
    const r = await service.checkpoint();
    return r && { seq: r.checkpoint.seq, created: r.created };
  };
}
