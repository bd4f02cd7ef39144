import { z } from 'zod';
import type { DatasetCatalog } from '../domain';
import { isValidTaiwanId } from '../domain';

/**
 * The plaintext of a batch request or subject list (R2.2, R3.4): UTF-8 CSV, optional comment lines
 * `# key: value` first, then a header naming one of the dataset's match keys, then one identifier a
 * line. Identifiers are checked against the key's format; a malformed one is counted with its line
 * number and never looked up.
 */
export interface ParsedRequest {
  /** The match key the header names (a column of the dataset). */
  keyField: string;
  reference: string | null;
  /** Distinct well-formed identifiers, in the order first sent. */
  ids: string[];
  /** Identifier lines, blank ones aside (what the agency sent, duplicates and malformed included). */
  lines: number;
  duplicates: number;
  /** Malformed identifiers: how many, and the first MAX_INVALID_LISTED of them by line. */
  invalidCount: number;
  invalid: { line: number; reason: string }[];
}

export type ParseRefusal = { code: 'format.invalid' | 'ids.too-many'; message: string; lines?: number };

/** The identifier formats a catalog's match keys may have. */
const FORMATS: Record<string, { test: (s: string) => boolean; says: string }> = {
  // A national ID or UI number (統一證號): a letter, nine digits, the last a check digit.
  'taiwan-id': { test: isValidTaiwanId, says: 'not a national ID or UI number with a valid check digit (A123456789)' },
  // Machine-readable passports: upper-case letters and digits (ICAO 9303 allows up to 9; some states issue more).
  passport: { test: (s) => /^[A-Z0-9]{5,20}$/.test(s), says: 'not a passport number (5 to 20 upper-case letters and digits)' },
};

const referenceSchema = z.string().trim().min(1).max(200);
/** At most this many invalid lines are listed one by one; the rest are counted. */
export const MAX_INVALID_LISTED = 1000;

/**
 * Parse `bytes` for `catalog`. `maxIds` bounds the identifier lines; reading stops as soon as a
 * request passes it. Refused as `format.invalid` only when the text, the header or every identifier
 * is wrong.
 */
export function parseRequest(bytes: Uint8Array, catalog: DatasetCatalog, opts: { maxIds: number }): { ok: true; value: ParsedRequest } | { ok: false; refusal: ParseRefusal } {
  const bad = (message: string) => ({ ok: false as const, refusal: { code: 'format.invalid' as const, message } });
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return bad('the request is not UTF-8 text');
  }
  const keys = catalog.matchKeys ?? [];
  const lines = text.split('\n');
  let i = 0;
  const comments = new Map<string, string>();
  // Comment lines (and blank lines) before the header.
  for (; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (line.trim() === '') continue;
    if (!line.startsWith('#')) break;
    const m = /^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*:\s*(.*)$/.exec(line);
    if (m && !comments.has(m[1].toLowerCase())) comments.set(m[1].toLowerCase(), m[2].trim());
  }
  if (i >= lines.length) return bad(`no header line: the first line after the comments names the identifier (${keys.map((k) => k.field).join(' or ')})`);
  const header = lines[i].replace(/\r$/, '').trim().replace(/^"(.*)"$/, '$1');
  const key = keys.find((k) => k.field === header);
  if (!key) return bad(`line ${i + 1}: the header is '${header.slice(0, 64)}', not one of ${keys.map((k) => k.field).join(', ')} (dataset ${catalog.name})`);
  const format = FORMATS[key.format];
  const ref = comments.get('reference');
  const reference = ref === undefined ? null : referenceSchema.safeParse(ref).success ? ref.trim() : null;

  const seen = new Set<string>();
  const ids: string[] = [];
  const invalid: ParsedRequest['invalid'] = [];
  let count = 0;
  let duplicates = 0;
  let invalidCount = 0;
  for (i = i + 1; i < lines.length; i++) {
    const id = lines[i].replace(/\r$/, '').trim().replace(/^"(.*)"$/, '$1');
    if (id === '') continue;
    if (++count > opts.maxIds) return { ok: false, refusal: { code: 'ids.too-many', message: `more than ${opts.maxIds} identifiers in one request`, lines: count } };
    if (!format.test(id)) {
      invalidCount++;
      if (invalid.length < MAX_INVALID_LISTED) invalid.push({ line: i + 1, reason: format.says });
      continue;
    }
    if (seen.has(id)) {
      duplicates++;
      continue;
    }
    seen.add(id);
    ids.push(id);
  }
  if (ids.length === 0) return bad(count === 0 ? 'the request names no identifier' : `none of the ${count} identifiers is well-formed (first: line ${invalid[0]?.line})`);
  return { ok: true, value: { keyField: key.field, reference, ids, lines: count, duplicates, invalidCount, invalid } };
}
