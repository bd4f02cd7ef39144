import type Database from 'better-sqlite3';
import type { FieldSpec } from '../domain';
import type { ExtractRange } from './source';
import { ident } from './sql-ident';
import { csvField } from './csv';
import { valueFn } from './transforms';


/** The transforms SQL cannot express run as the same JS functions the generic path uses, quoted there. */
export function registerTransformFunctions(db: Database.Database, hmacSecret: string): void {
  const mask = valueFn('mask', hmacSecret);
  const hmac = valueFn('hmac', hmacSecret);
  db.function('nl_mask_csv', { deterministic: true }, (v: unknown) => csvField(mask(v)));
  db.function('nl_hmac_csv', { deterministic: true }, (v: unknown) => csvField(hmac(v)));
}

/** RFC 4180 quoting in SQL; `expr` is cheap to repeat (a column or a substr of one). One GLOB scan per value. */
export const CSV_SPECIAL_GLOB = '*[",\n\r]*';

function quoted(expr: string): string {
  return `CASE WHEN ${expr} IS NULL THEN '' WHEN ${expr} GLOB @special THEN '"' || replace(${expr}, '"', '""') || '"' ELSE ${expr} END`;
}

/** One field as CSV text, transform applied. */
function fieldSql(f: FieldSpec): string {
  const c = `CAST(${ident(f.name)} AS TEXT)`;
  switch (f.transform) {
    case undefined:
      return quoted(c);
    case 'mask':
      return `nl_mask_csv(${ident(f.name)})`;
    case 'hmac':
      return `nl_hmac_csv(${ident(f.name)})`;
    case 'year':
      return quoted(`substr(${c}, 1, 4)`);
    case 'year-month':
      return quoted(`substr(${c}, 1, 7)`);
  }
}

/**
 * One batch of CSV lines (CRLF-terminated) of exactly the approved fields, for the records with
 * @lo <= record_id < @hi inside the change window. The SELECT names only approved columns (R3.2).
 */
export function csvSelectSql(dataset: string, fields: readonly FieldSpec[], range: ExtractRange): string {
  const line = fields.map(fieldSql).join(" || ',' || ") + ' || char(13, 10)';
  return (
    `SELECT count(*) AS n, group_concat(line, '' ORDER BY record_id) AS text FROM (` +
    `SELECT record_id, ${line} AS line FROM ${ident(dataset)} WHERE record_id >= @lo AND record_id < @hi AND ${windowSql(range)})`
  );
}

function windowSql(range: ExtractRange): string {
  return range.since === null ? 'updated_at <= @until' : 'updated_at > @since AND updated_at <= @until';
}

/** How many records the window holds and their record-id span: what the batches are cut from. */
export function spanSql(dataset: string, range: ExtractRange): string {
  return `SELECT count(*) AS n, min(record_id) AS lo, max(record_id) AS hi FROM ${ident(dataset)} WHERE ${windowSql(range)}`;
}

export function windowParams(range: ExtractRange): Record<string, string> {
  return range.since === null ? { until: range.until } : { since: range.since, until: range.until };
}
