import type { ComplianceService, SweepResult } from '../src/compliance';

/** Daily job: apply the regulation's deadlines (suspensions, ends, inactivity flags). */
export function complianceSweepProcessor(service: ComplianceService) {
  return async (): Promise<SweepResult> => service.sweep('scheduler');
}
