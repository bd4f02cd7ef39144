/**
 * Runs in a worker thread: turns the approved columns of one record-id range at a time into CSV
 * inside SQLite (the nl_csv_lines extension). Several of these read in parallel while the parent signs and encrypts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { FieldSpec } from '../domain';
import { csvSelectSql, prepareCsvConnection, windowParams } from './csv-sql';
import { openSourceDb, type ExtractRange } from './source';
import { prepareScopeConnection } from './scope-sql';

export interface CsvThreadInput {
  file: string;
  dataset: string;
  fields: FieldSpec[];
  hmacSecret: string;
  range: ExtractRange;
}
export type CsvThreadRequest = { index: number; lo: number; hi: number };
export type CsvThreadMessage = { type: 'chunk'; index: number; data: Uint8Array; rows: number } | { type: 'error'; index: number; message: string };

const input = workerData as CsvThreadInput;
const port = parentPort!;
const db = openSourceDb(input.file);
prepareCsvConnection(db, input.hmacSecret);
prepareScopeConnection(db, input.range.scope);
const stmt = db.prepare(csvSelectSql(input.dataset, input.fields, input.range));
const base = windowParams(input.range);

// Requests arrive in order and are answered in order; the parent terminates the thread when done.
port.on('message', (req: CsvThreadRequest) => {
  try {
    const r = stmt.get({ ...base, lo: req.lo, hi: req.hi }) as { n: number; data: Buffer | null };
    // A Buffer of its own memory is handed over as it is; one that shares a pool is copied first.
    const data = r.data === null ? new Uint8Array(0) : r.data.byteOffset === 0 && r.data.byteLength === r.data.buffer.byteLength ? r.data : new Uint8Array(r.data);
    port.postMessage({ type: 'chunk', index: req.index, data, rows: r.n } satisfies CsvThreadMessage, [data.buffer as ArrayBuffer]);
  } catch (err) {
    port.postMessage({ type: 'error', index: req.index, message: (err as Error).message } satisfies CsvThreadMessage);
  }
});
