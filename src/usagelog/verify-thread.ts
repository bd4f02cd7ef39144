/**
 * Runs in a worker thread: checks one seq range of the usage log (walk.ts) on its own read-only
 * connection, so verifying millions of records uses every core.
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { BUSY_TIMEOUT_MS } from '../db/busy';
import { checkRange, type RangeResult } from './walk';

export interface VerifyThreadInput {
  file: string;
  from: number;
  to: number;
  watch: number[];
}

const input = workerData as VerifyThreadInput;
let result: RangeResult | { error: string };
try {
  const db = new Database(input.file, { readonly: true, fileMustExist: true });
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  try {
    result = checkRange(db, input.from, input.to, null, new Set(input.watch));
  } finally {
    db.close();
  }
} catch (err) {
  result = { error: (err as Error).message };
}
parentPort!.postMessage(result);
