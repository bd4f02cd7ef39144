import { addMonths, type IsoDate } from '../domain';

/** R14.2: a sponsoring authority audits each non-government body it sponsors at least once a cycle. */
export const SPONSOR_AUDIT_CYCLE_MONTHS = 12;

/**
 * R14.2: the day a body's next sponsor audit is due: a cycle after the last one, or after the body's
 * first link in force was approved when its sponsor has never audited it. Overdue from the day after.
 */
export function sponsorAuditDue(lastAudit: IsoDate | null, trackedSince: IsoDate, cycleMonths = SPONSOR_AUDIT_CYCLE_MONTHS): IsoDate {
  const from = lastAudit !== null && lastAudit > trackedSince ? lastAudit : trackedSince;
  return addMonths(from, cycleMonths);
}

/**
 * R7.2: a finding whose deadline passed without the agency's written explanation and improvement
 * measures, as of `today`: no response recorded on or before its deadline.
 */
export function responseMissing(deadline: IsoDate, responsesOn: readonly IsoDate[], today: IsoDate): boolean {
  return deadline < today && !responsesOn.some((d) => d <= deadline);
}
