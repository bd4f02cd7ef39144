/**
 * Runs in a worker thread: reads only the approved columns of one extract from the SQLite source and
 * turns them into CSV (header first) inside SQLite, one batch per request from the parent. Reading and CSV run on
 * one core while the parent signs and encrypts on the other.
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import type { FieldSpec } from '../domain';
import { csvLine } from './csv';
import { CSV_SPECIAL_GLOB, csvSelectSql, registerTransformFunctions } from './csv-sql';
import type { ExtractRange } from './source';

export interface CsvThreadInput {
  file: string;
  dataset: string;
  fields: FieldSpec[];
  hmacSecret: string;
  range: ExtractRange;
  batchRows: number;
}
export type CsvThreadMessage = { type: 'chunk'; data: Uint8Array; rows: number } | { type: 'end'; rows: number; sha256: string } | { type: 'error'; message: string };

const input = workerData as CsvThreadInput;
const port = parentPort!;
const db = new Database(input.file, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 10000');
registerTransformFunctions(db, input.hmacSecret);
const stmt = db.prepare(csvSelectSql(input.dataset, input.fields, input.range));
const hash = createHash('sha256');
const encoder = new TextEncoder();
let last = 0;
let rows = 0;
let ended = false;
let headerSent = false;
// One snapshot for the whole extract, even while the source is being written.
db.exec('BEGIN');

// The parent asks for one chunk at a time (and terminates the thread if it gives up early).
port.on('message', () => {
  if (ended) return;
  try {
    if (!headerSent) {
      headerSent = true;
      const data = encoder.encode(csvLine(input.fields.map((f) => f.name)));
      hash.update(data);
      port.postMessage({ type: 'chunk', data, rows: 0 } satisfies CsvThreadMessage, [data.buffer as ArrayBuffer]);
      return;
    }
    const base = { after: last, until: input.range.until, limit: input.batchRows, special: CSV_SPECIAL_GLOB };
    const params = input.range.since === null ? base : { ...base, since: input.range.since };
    const r = stmt.get(params) as { n: number; last: number | null; text: string | null };
    if (!r.n) {
      ended = true;
      port.postMessage({ type: 'end', rows, sha256: hash.digest('hex') } satisfies CsvThreadMessage);
      return finish();
    }
    last = r.last!;
    rows += r.n;
    const data = encoder.encode(r.text ?? '');
    hash.update(data);
    port.postMessage({ type: 'chunk', data, rows: r.n } satisfies CsvThreadMessage, [data.buffer as ArrayBuffer]);
  } catch (err) {
    ended = true;
    port.postMessage({ type: 'error', message: (err as Error).message } satisfies CsvThreadMessage);
    finish();
  }
});

function finish(): void {
  try {
    if (db.open) {
      db.exec('COMMIT');
      db.close();
    }
  } finally {
    port.close();
  }
}
