import type Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { FieldSpec } from '../domain';
import { PROJECT_ROOT } from '../paths';
import type { ExtractRange } from './source';
import { ident } from './sql-ident';
import { valueFn } from './transforms';

/**
 * The SQLite extension `scripts/build-native.js` compiles from native/nl_csv.c: the aggregate
 * nl_csv_lines(seq, v1, …, vN) writes RFC 4180 lines in C. Named without its suffix: SQLite adds the
 * platform's own.
 */
export const CSV_EXTENSION = path.join(PROJECT_ROOT, 'dist', 'native', 'nl_csv');
/** The file itself, with this platform's suffix: what the build writes. */
export const CSV_EXTENSION_FILE = CSV_EXTENSION + (process.platform === 'darwin' ? '.dylib' : process.platform === 'win32' ? '.dll' : '.so');

export function csvExtensionBuilt(): boolean {
  return existsSync(CSV_EXTENSION_FILE);
}

/** Loads the CSV writer and the transforms SQL cannot express (the same JS functions the generic path uses). */
export function prepareCsvConnection(db: Database.Database, hmacSecret: string): void {
  db.loadExtension(CSV_EXTENSION); // entry point sqlite3_nlcsv_init, from the file name
  db.function('nl_mask', { deterministic: true }, valueFn('mask', hmacSecret));
  db.function('nl_hmac', { deterministic: true }, valueFn('hmac', hmacSecret));
}

/** One field's delivered value, transform applied (nl_csv_lines turns NULL into the empty field). */
export function fieldSql(f: FieldSpec): string {
  const c = ident(f.name);
  switch (f.transform) {
    case undefined:
      return c;
    case 'mask':
      return `nl_mask(${c})`;
    case 'hmac':
      return `nl_hmac(${c})`;
    case 'year':
      return `substr(CAST(${c} AS TEXT), 1, 4)`;
    case 'year-month':
      return `substr(CAST(${c} AS TEXT), 1, 7)`;
  }
}

/**
 * One batch of CSV lines (CRLF-terminated) of exactly the approved fields, for the records with
 * @lo <= record_id < @hi inside the change window, as a BLOB of UTF-8. The SELECT names only
 * approved columns (R3.2). nl_csv_lines fails the query unless record_id ascends, so the lines are
 * in record order or there is no file. A full extract reads the id range straight off the rowid
 * b-tree (NOT INDEXED: ascending, no sort, no subquery); an increment lets SQLite use the
 * updated_at index and sorts the few records it finds.
 */
export function csvSelectSql(dataset: string, fields: readonly FieldSpec[], range: ExtractRange): string {
  const t = ident(dataset);
  const where = `record_id >= @lo AND record_id < @hi AND ${windowSql(range)}`;
  if (range.since === null) return `SELECT count(*) AS n, nl_csv_lines(record_id, ${fields.map(fieldSql).join(', ')}) AS data FROM ${t} NOT INDEXED WHERE ${where}`;
  const cols = fields.map((f, i) => `${fieldSql(f)} AS c${i}`).join(', ');
  const args = fields.map((_, i) => `c${i}`).join(', ');
  return `SELECT count(*) AS n, nl_csv_lines(record_id, ${args}) AS data FROM (SELECT record_id, ${cols} FROM ${t} WHERE ${where} ORDER BY record_id)`;
}

/**
 * The change window and the scope: the one row filter of every extract. An increment also takes the
 * older records of persons added to a subject list since the previous delivery: they had none yet.
 */
export function windowSql(range: ExtractRange, dialect: 'sqlite' | 'pg' = 'sqlite'): string {
  const subjects = range.scope.subjects;
  const added = subjects?.added.length ? (dialect === 'pg' ? subjects.pgAddedSql : subjects.addedSql) : null;
  const since = added ? `(updated_at > @since OR ${added})` : 'updated_at > @since';
  return `${range.since === null ? 'updated_at <= @until' : `${since} AND updated_at <= @until`} AND ${dialect === 'pg' ? range.scope.pgSql : range.scope.sql}`;
}

/**
 * How many records the window holds and their record-id span: what the batches are cut from. A full
 * extract takes the table's id span as its size (two rowid look-ups, no count over every record).
 */
export function spanSql(dataset: string, range: ExtractRange): string {
  if (range.since === null) {
    // One min() or max() per SELECT: that is the form SQLite answers from the rowid b-tree's ends.
    const t = ident(dataset);
    return `SELECT hi - lo + 1 AS n, lo, hi FROM (SELECT (SELECT min(record_id) FROM ${t}) AS lo, (SELECT max(record_id) FROM ${t}) AS hi)`;
  }
  return `SELECT count(*) AS n, min(record_id) AS lo, max(record_id) AS hi FROM ${ident(dataset)} WHERE ${windowSql(range)}`;
}

/** The parameters of windowSql (the full extract's span takes none). */
export function windowParams(range: ExtractRange): Record<string, string> {
  return { ...(range.since === null ? { until: range.until } : { since: range.since, until: range.until }), ...range.scope.params };
}

/** The parameters spanSql's text uses. */
export function spanParams(range: ExtractRange): Record<string, string> {
  return range.since === null ? {} : windowParams(range);
}
