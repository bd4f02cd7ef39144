import { addMonths, type IsoDate } from './dates';
import { ok, refuse, type Result } from './result';

/**
 * The regulation's deadlines, as pure functions of dates (Taipei calendar days). A deadline day is
 * still within the deadline; "more than" a period means from the day after it ends.
 */

export type FindingStatus = 'open' | 'overdue' | 'remediated';

/** R10.1: a finding not remediated by its deadline is overdue from the day after the deadline. */
export function findingStatus(f: { deadline: IsoDate; remediatedOn: IsoDate | null }, today: IsoDate): FindingStatus {
  if (f.remediatedOn !== null) return 'remediated';
  return today > f.deadline ? 'overdue' : 'open';
}

/** NIA may extend a deadline only before it passes, and only to a later day. */
export function checkDeadlineExtension(f: { deadline: IsoDate; remediatedOn: IsoDate | null }, newDeadline: IsoDate, today: IsoDate): Result<true> {
  if (f.remediatedOn !== null) return refuse('finding.remediated', 'the finding is remediated already');
  if (today > f.deadline) return refuse('finding.deadline-passed', `the deadline ${f.deadline} has passed; it can no longer be extended`);
  if (newDeadline <= f.deadline) return refuse('finding.extension-not-later', `the new deadline must be after ${f.deadline}`);
  return ok(true);
}

/**
 * R10.3: resumption needs the improvements completed within six months of the suspension's start
 * (suspended 2026-01-15 → completed on 2026-07-15 at the latest); later, only a new application works.
 */
export function checkResumption(s: { suspendedOn: IsoDate; remediatedOn: IsoDate | null }): Result<true> {
  if (s.remediatedOn === null) {
    return refuse('resume.not-remediated', 'the completion of the improvements is not recorded yet (finding remediate for each finding; link remediated for a suspension without one)');
  }
  const latest = addMonths(s.suspendedOn, 6);
  if (s.remediatedOn > latest) {
    return refuse(
      'resume.too-late',
      `improvements completed on ${s.remediatedOn}, more than six months after the suspension began on ${s.suspendedOn} (latest ${latest}): a new application is required (R10.3)`,
    );
  }
  return ok(true);
}

/**
 * R10.4: six months after a suspension began, whatever caused it, a link whose improvements were not
 * completed in time can no longer be resumed (suspended 2026-01-15 → ends from 2026-07-16 on).
 */
export function suspensionLapsed(s: { suspendedOn: IsoDate; remediatedOn: IsoDate | null }, today: IsoDate): boolean {
  const latest = addMonths(s.suspendedOn, 6);
  return today > latest && (s.remediatedOn === null || s.remediatedOn > latest);
}

/** R13.1: unused for more than one year (last use 2025-03-01 → flagged from 2026-03-02); both are Taipei days. */
export function inactive(lastUse: IsoDate, today: IsoDate): boolean {
  return today > addMonths(lastUse, 12);
}

/** R6.4: fewer than two self-audits in a finished calendar year, or none in the last six months. */
export function selfAuditFlags(auditDates: readonly IsoDate[], today: IsoDate, trackedSince: IsoDate): string[] {
  const flags: string[] = [];
  const year = Number(today.slice(0, 4));
  // Only whole calendar years the agency was linked for are judged.
  const firstFullYear = trackedSince.endsWith('-01-01') ? Number(trackedSince.slice(0, 4)) : Number(trackedSince.slice(0, 4)) + 1;
  for (let y = Math.max(firstFullYear, year - 5); y < year; y++) {
    const n = auditDates.filter((d) => d.startsWith(`${y}-`)).length;
    if (n < 2) flags.push(`${y}: ${n} self-audit${n === 1 ? '' : 's'}, at least two are required (R6.4)`);
  }
  const sixMonthsAgo = addMonths(today, -6);
  if (trackedSince < sixMonthsAgo && !auditDates.some((d) => d > sixMonthsAgo && d <= today)) {
    flags.push(`no self-audit since ${sixMonthsAgo} (R6.4)`);
  }
  return flags;
}

/** R12.1: the next necessity review is due a cycle after the last one (or after approval). */
export function reviewDue(lastReview: IsoDate, cycleMonths: number): IsoDate {
  return addMonths(lastReview, cycleMonths);
}

/** R-F5: the use period is over from the day after its last day. */
export function periodOver(to: IsoDate, today: IsoDate): boolean {
  return today > to;
}

