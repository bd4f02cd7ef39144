/**
 * How long any connection (control database, source, worker threads) waits for another process's
 * write lock before it fails. A module of its own, so worker threads can use it without loading the
 * ORM.
 */
export const BUSY_TIMEOUT_MS = 10_000;
