/**
 * How long any connection (control database, source, worker threads) waits for another process's
 * write lock before it fails. A module of its own, so worker threads can use it without loading the
 * ORM.
 */
export const BUSY_TIMEOUT_MS = 10_000;

/**
 * A write that gave up waiting for another process's write lock (SQLite's busy timeout, PostgreSQL's
 * lock_timeout): an outage of the moment, not a bug and not the user's mistake. Nothing of the
 * transaction that waited was written. Front ends say so in one line (the console answers 503).
 */
export class DatabaseBusy extends Error {
  readonly code = 'database.busy';
  constructor() {
    super(`the control database is busy: another process has held its write lock for more than ${BUSY_TIMEOUT_MS / 1000} s, so this change was not written; try again`);
    this.name = 'DatabaseBusy';
  }
}

/** `err` as DatabaseBusy when it is a lock wait that timed out (SQLITE_BUSY, PostgreSQL's 55P03); otherwise `err` itself. */
export function busyOr(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === '55P03' ? new DatabaseBusy() : err;
}
