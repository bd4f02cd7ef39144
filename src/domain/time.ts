import { addDays, isValidDate, startOfTaipeiDay, taipeiDate, type IsoDate } from './dates';
import { ok, refuse, type Result } from './result';

/** What marks every page, form, manifest, notice and usage-log record of a drill installation. */
export const DRILL_MARK = '演練 DRILL';

/**
 * Which dates a user may give (R6.6, R10.4, R11.1). An action happens at the clock's time; a date
 * claimed for an event that happened earlier (improvements completed, a notice received, data
 * disposed of, an agency's confirmation) comes from a dated document, so it needs the document's
 * reference, cannot lie in the future or before the event it answers, and cannot reach further back
 * than a month of ordinary paperwork; older papers are a matter for NIA's own decision, not a date to
 * type in.
 */
export const CLAIM_MAX_DAYS_BACK = 30;

/** A date the user gives: how messages name it ("the completion date") and the input that carried it (`completedOn`). */
export interface DateInput {
  what: string;
  field: string;
}

export interface DateClaim extends DateInput {
  date: IsoDate;
  /** The reference of the document that dates the event (a letter number). */
  letterNo: string | null | undefined;
  /** The event it answers: the claimed date cannot precede it. */
  notBefore?: { date: IsoDate; what: string };
}

export function checkClaimedDate(c: DateClaim, today: IsoDate): Result<{ date: IsoDate; letterNo: string }> {
  const about = { field: c.field };
  if (!isValidDate(c.date)) return refuse('claim.date', `${c.what} '${c.date}' is not a date (YYYY-MM-DD)`, { ...about, invalid: true });
  const letterNo = c.letterNo?.trim() ?? '';
  if (!letterNo) return refuse('claim.letter-missing', `${c.what} needs the letter number of the document that dates it`, { field: 'letterNo', invalid: true });
  if (c.date > today) return refuse('claim.future', `${c.what} ${c.date} is in the future (today is ${today})`, about);
  if (c.notBefore && c.date < c.notBefore.date) return refuse('claim.before-event', `${c.what} ${c.date} is before ${c.notBefore.what} on ${c.notBefore.date}`, about);
  const earliest = addDays(today, -CLAIM_MAX_DAYS_BACK);
  if (c.date < earliest) return refuse('claim.too-old', `${c.what} ${c.date} is more than ${CLAIM_MAX_DAYS_BACK} days back (the earliest is ${earliest})`, about);
  return ok({ date: c.date, letterNo });
}

/** A date that schedules something (a deadline, an effective or stop date) may lie ahead, never behind. */
export function checkScheduledDate(input: DateInput, date: IsoDate, today: IsoDate): Result<IsoDate> {
  if (!isValidDate(date)) return refuse('schedule.date', `${input.what} '${date}' is not a date (YYYY-MM-DD)`, { field: input.field, invalid: true });
  if (date < today) return refuse('schedule.past', `${input.what} ${date} is in the past (today is ${today})`, { field: input.field });
  return ok(date);
}

/**
 * The instant a drill runs "as of" a Taipei day: that day, at the time of day it is now, so the
 * records of one command still follow each other.
 */
export function instantOnTaipeiDay(date: IsoDate, now: Date): Date {
  const sinceMidnight = now.getTime() - startOfTaipeiDay(taipeiDate(now)).getTime();
  return new Date(startOfTaipeiDay(date).getTime() + sinceMidnight);
}

/** A clock running from `start` at the pace of `base` (a drill's clock keeps moving, only shifted). */
export function shiftedClock(start: Date, base: { now(): Date }): { now(): Date } {
  const offset = start.getTime() - base.now().getTime();
  return { now: () => new Date(base.now().getTime() + offset) };
}
