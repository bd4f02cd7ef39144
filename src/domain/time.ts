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

export interface DateClaim {
  /** The option that carried the date, for the message (`--completed-on`). */
  flag: string;
  date: IsoDate;
  /** The reference of the document that dates the event (a letter number). */
  letterNo: string | null | undefined;
  /** The event it answers: the claimed date cannot precede it. */
  notBefore?: { date: IsoDate; what: string };
}

export function checkClaimedDate(c: DateClaim, today: IsoDate): Result<{ date: IsoDate; letterNo: string }> {
  if (!isValidDate(c.date)) return refuse('claim.date', `${c.flag} '${c.date}' is not a date (YYYY-MM-DD)`);
  const letterNo = c.letterNo?.trim() ?? '';
  if (!letterNo) return refuse('claim.letter-missing', `${c.flag} needs --letter-no: the reference of the document that dates it`);
  if (c.date > today) return refuse('claim.future', `${c.flag} ${c.date} is in the future (today is ${today})`);
  if (c.notBefore && c.date < c.notBefore.date) return refuse('claim.before-event', `${c.flag} ${c.date} is before ${c.notBefore.what} on ${c.notBefore.date}`);
  const earliest = addDays(today, -CLAIM_MAX_DAYS_BACK);
  if (c.date < earliest) return refuse('claim.too-old', `${c.flag} ${c.date} is more than ${CLAIM_MAX_DAYS_BACK} days back (the earliest is ${earliest})`);
  return ok({ date: c.date, letterNo });
}

/** A date that schedules something (a deadline, an effective or stop date) may lie ahead, never behind. */
export function checkScheduledDate(flag: string, date: IsoDate, today: IsoDate): Result<IsoDate> {
  if (!isValidDate(date)) return refuse('schedule.date', `${flag} '${date}' is not a date (YYYY-MM-DD)`);
  if (date < today) return refuse('schedule.past', `${flag} ${date} is in the past (today is ${today})`);
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
