/**
 * Calendar dates of the regulation are days in Asia/Taipei (UTC+8, no daylight saving).
 * A date is the string YYYY-MM-DD; a deadline day is still within the deadline.
 */
const TAIPEI_OFFSET_MS = 8 * 3600 * 1000;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

export type IsoDate = string;

export function isValidDate(s: string): boolean {
  const m = DATE_RE.exec(s);
  if (!m) return false;
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
  return d.getUTCFullYear() === +m[1] && d.getUTCMonth() === +m[2] - 1 && d.getUTCDate() === +m[3];
}

/** The Taipei calendar day that contains the instant `now`. */
export function taipeiDate(now: Date): IsoDate {
  return new Date(now.getTime() + TAIPEI_OFFSET_MS).toISOString().slice(0, 10);
}

/** The first instant of a Taipei calendar day. */
export function startOfTaipeiDay(date: IsoDate): Date {
  return new Date(Date.parse(`${date}T00:00:00Z`) - TAIPEI_OFFSET_MS);
}

/** Add calendar months, clamping to the last day of a shorter month (Jan 31 + 1 month = Feb 28/29). */
export function addMonths(date: IsoDate, months: number): IsoDate {
  const [y, m, d] = date.split('-').map(Number);
  const total = y * 12 + (m - 1) + months;
  const ny = Math.floor(total / 12);
  const nm = total % 12;
  const last = new Date(Date.UTC(ny, nm + 1, 0)).getUTCDate();
  return new Date(Date.UTC(ny, nm, Math.min(d, last))).toISOString().slice(0, 10);
}

export function addDays(date: IsoDate, days: number): IsoDate {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * 86400000).toISOString().slice(0, 10);
}

/**
 * R-F5: when a delivered file built at `builtAt` is removed: after the retention days, and never after
 * the link's use period (ending on `periodTo`, a Taipei day).
 */
export function fileExpiresAt(builtAt: Date, retentionDays: number, periodTo: IsoDate): string {
  const byRetention = builtAt.getTime() + retentionDays * 86400e3;
  return new Date(Math.min(byRetention, startOfTaipeiDay(addDays(periodTo, 1)).getTime())).toISOString();
}

/** Gregorian date → ROC (Minguo) calendar: 2026-01-05 → { year: 115, month: 1, day: 5 }. */
export function rocDate(date: IsoDate): { year: number; month: number; day: number } {
  const [y, m, d] = date.split('-').map(Number);
  return { year: y - 1911, month: m, day: d };
}

/** How the form writes a date: 2026-03-01 → 中華民國 115 年 3 月 1 日. */
export function rocDateText(date: IsoDate): string {
  const r = rocDate(date);
  return `中華民國 ${r.year} 年 ${r.month} 月 ${r.day} 日`;
}
