/**
 * Runs in a worker thread: appends the usage-log records a LogAppender sends, one write transaction
 * per batch, in the order the batches arrive, on a connection of its own. Waiting for the write lock
 * (another process appending) or for the disk blocks this thread only, never the one serving requests.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { BUSY_TIMEOUT_MS, connectWriter } from '../db';
import { appendLogBatch, type LogEntry } from './log';

export interface AppenderThreadInput {
  file: string;
}
export type AppenderRequest = { batch: number; records: { entry: LogEntry; at: number }[] } | { close: true };
export type AppenderReply = { ready: true } | { batch: number; error?: string };

const port = parentPort!;
const cdb = connectWriter((workerData as AppenderThreadInput).file);
// Another process appending holds the write lock for about a millisecond: wait for it in short naps
// here rather than in SQLite's busy handler, whose first naps are 1, 2, 5 and 10 ms.
cdb.sqlite.pragma('busy_timeout = 0');
const nap = new Int32Array(new SharedArrayBuffer(4));
const NAP_MS = 0.2;

function writeWaiting<T>(fn: () => T): T {
  const until = Date.now() + BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      return fn();
    } catch (err) {
      // BEGIN IMMEDIATE is where the lock is taken: a busy lock there means nothing ran.
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || cdb.sqlite.inTransaction || Date.now() >= until) throw err;
      Atomics.wait(nap, 0, 0, NAP_MS);
    }
  }
}

// Checkpoints copy the WAL into the database file and wait for the disk: the process's checkpointer
// runs them (startCheckpointer), so a commit here never turns into one.
cdb.sqlite.pragma('wal_autocheckpoint = 0');

port.postMessage({ ready: true } satisfies AppenderReply);

port.on('message', (m: AppenderRequest) => {
  if ('close' in m) {
    cdb.sqlite.close();
    port.close();
    return;
  }
  try {
    const records = m.records.map((r) => ({ entry: r.entry, now: new Date(r.at) }));
    writeWaiting(() => cdb.db.transaction((tx) => appendLogBatch(tx, records), { behavior: 'immediate' }));
    port.postMessage({ batch: m.batch } satisfies AppenderReply);
  } catch (err) {
    port.postMessage({ batch: m.batch, error: (err as Error).message } satisfies AppenderReply);
  }
});
