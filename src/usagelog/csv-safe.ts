/**
 * A CSV cell an auditor may open in a spreadsheet: text starting with = + - @ (or a tab or CR, which
 * some spreadsheets skip before reading a formula) would run as a formula — `=HYPERLINK(…)` in an
 * account name or a query reference is enough to leak a sheet. A leading ' makes it text. Numbers
 * pass unchanged: a count is never a formula, and a spreadsheet should still sum it.
 */
export function spreadsheetSafe(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  const s = String(v);
  return /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
}
