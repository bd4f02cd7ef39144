import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import type { BaseSQLiteDatabase } from 'drizzle-orm/sqlite-core';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors';
import { MIGRATIONS_DIR } from '../paths';
import { BUSY_TIMEOUT_MS } from './busy';
import * as schema from './schema';

export { schema };
/** The database or a transaction on it: repositories take either. */
export type Db = BaseSQLiteDatabase<'sync', Database.RunResult, typeof schema>;

export interface ControlDb {
  readonly db: Db;
  readonly sqlite: Database.Database;
  readonly file: string;
  /** Run `fn` in a write transaction that takes the lock first, so two processes never interleave. */
  write<T>(fn: (tx: Db) => T): T;
  close(): void;
}

export { BUSY_TIMEOUT_MS };

/** What each open write transaction runs once it has committed (never when it rolls back). */
const committing = new WeakMap<object, (() => void)[]>();

/**
 * Run `fn` once the write transaction `tx` has committed — to tell other processes and sessions
 * about what it changed, which they must not hear of before they can read it, nor at all when it
 * rolls back. Called on anything but an open write transaction, it throws: a notice sent outside a
 * transaction would go out whatever happened to the change.
 */
export function afterCommit(tx: Db, fn: () => void): void {
  const hooks = committing.get(tx);
  if (!hooks) throw new Error('afterCommit: not inside a write transaction');
  hooks.push(fn);
}

/**
 * The better-sqlite3 connection under a database or transaction handle, for statements on hot paths
 * prepared once per connection (drizzle prepares a statement anew on every call). drizzle keeps the
 * connection on the session a transaction shares with its database.
 */
export function connectionOf(tx: Db): Database.Database {
  return (tx as unknown as { session: { client: Database.Database } }).session.client;
}

/** Something made once per connection from a handle on it (a prepared statement) and kept with it. */
export function perConnection<T>(make: (tx: Db) => T): (tx: Db) => T {
  const byConnection = new WeakMap<Database.Database, T>();
  return (tx) => {
    const conn = connectionOf(tx);
    let v = byConnection.get(conn);
    if (v === undefined) {
      v = make(tx);
      byConnection.set(conn, v);
    }
    return v;
  };
}

export function controlDbFile(dataDir: string): string {
  return path.join(dataDir, 'nia-link.db');
}

/**
 * Open the control database. `create` makes the file (init, start); otherwise a missing file means
 * the installation was never initialised, which the user fixes with `nia-link init`.
 */
export function openControlDb(dataDir: string, opts: { create?: boolean } = {}): ControlDb {
  const file = controlDbFile(dataDir);
  if (!opts.create && !existsSync(file)) {
    throw new UserError(`no nia-link installation in ${dataDir}: run \`nia-link init\` first (or pass --data-dir)`, 'not-initialised');
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const cdb = connect(file, false);
  migrate(cdb.db, { migrationsFolder: MIGRATIONS_DIR });
  return cdb;
}

/**
 * Another connection to a control database that a process has already opened (and so migrated):
 * for a worker thread of that process. The file must exist.
 */
export function connectControlDb(file: string): ControlDb {
  return connect(file, true);
}

function connect(file: string, mustExist: boolean): ControlDb {
  const sqlite = new Database(file, { fileMustExist: mustExist });
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('synchronous = NORMAL');
  const db = drizzle(sqlite, { schema });
  // The hooks of the outermost open write: a write nested in another (a savepoint) adds to them, so
  // they run when the outermost one commits, not when the savepoint is released.
  let outer: (() => void)[] | null = null;
  const write = <T>(fn: (tx: Db) => T): T => {
    const nested = outer !== null;
    const hooks = outer ?? [];
    outer = hooks;
    const mark = hooks.length;
    let out: T;
    try {
      out = db.transaction(
        (tx) => {
          committing.set(tx, hooks);
          try {
            return fn(tx);
          } finally {
            committing.delete(tx);
          }
        },
        nested ? undefined : { behavior: 'immediate' },
      );
    } catch (err) {
      hooks.length = mark; // a savepoint rolled back: its notices go with it
      throw err;
    } finally {
      if (!nested) outer = null;
    }
    if (nested) return out;
    // Committed: every hook runs, even when one before it throws; the first error is the caller's.
    let failure: unknown;
    for (const h of hooks) {
      try {
        h();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
    return out;
  };
  return {
    db,
    sqlite,
    file,
    write,
    close: () => sqlite.close(),
  };
}
