/**
 * Runs in a worker thread: checkpoints a database's WAL every `everyMs` (PASSIVE: it copies what it
 * can without waiting for readers or blocking writers), so the connections that write with
 * `wal_autocheckpoint = 0` never do it on a thread that answers requests.
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { BUSY_TIMEOUT_MS } from './busy';

export interface CheckpointThreadInput {
  file: string;
  everyMs: number;
}

const input = workerData as CheckpointThreadInput;
const db = new Database(input.file, { fileMustExist: true });
db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    parentPort!.postMessage({ error: (err as Error).message });
  }
}, input.everyMs);
parentPort!.on('message', () => {
  clearInterval(timer);
  db.close();
  parentPort!.close();
});
