import type { ScanResult, UsageLogService } from '../src/usagelog';

/** Recurring job (R7.1): run the anomaly rules over the usage-log records written since the last scan. */
export function detectAnomaliesProcessor(service: UsageLogService) {
  return async (): Promise<ScanResult> => service.scanAnomalies();
}
