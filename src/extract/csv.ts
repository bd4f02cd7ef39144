/** RFC 4180: a field with a comma, quote, CR or LF is quoted, quotes doubled; lines end with CRLF. */
const NEEDS_QUOTES = /[",\r\n]/;

export function csvField(s: string): string {
  return NEEDS_QUOTES.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(values: readonly string[]): string {
  let out = '';
  for (let i = 0; i < values.length; i++) {
    if (i) out += ',';
    out += csvField(values[i]);
  }
  return out + '\r\n';
}
