import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import type { BaseSQLiteDatabase } from 'drizzle-orm/sqlite-core';
import { AsyncLocalStorage } from 'node:async_hooks';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors';
import { MIGRATIONS_DIR } from '../paths';
import { BUSY_TIMEOUT_MS, busyOr } from './busy';
import type { PgControlDb } from './pg/connect';
import * as schema from './schema';

export { schema };
/** The database or a transaction on it: repositories take either. */
export type Db = BaseSQLiteDatabase<'sync', Database.RunResult, typeof schema>;

/** The control database, on either dialect: what services see. */
interface ControlDbPort {
  /**
   * Reads outside a write transaction. They see what has committed, never what an open write of this
   * process has not (yet) committed; on SQLite they cannot write (a read-only connection).
   */
  readonly db: Db;
  /**
   * Run `fn` in a write transaction that takes the write lock first, so no two writes (of any
   * process) interleave. A write inside another's `fn` is a savepoint of it. Only the database
   * work of `fn` belongs inside: the lock is held until it returns.
   */
  write<T>(fn: (tx: Db) => Promise<T> | T): Promise<T>;
  /** Where it is, for people: the file, or the URL without its password. */
  readonly where: string;
  /** Resolves when the database answers a trivial statement. */
  ping(): Promise<void>;
  /** Bytes the database takes on disk. */
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface SqliteControlDb extends ControlDbPort {
  readonly dialect: 'sqlite';
  /** The read-only connection under `db` (the usage-log walk reads it directly). */
  readonly sqlite: Database.Database;
  readonly file: string;
}

export interface PostgresControlDb extends ControlDbPort {
  readonly dialect: 'postgres';
  readonly pg: PgControlDb;
  /** The URL with its password, for connections of this process's threads: never shown. */
  readonly url: string;
}

export type ControlDb = SqliteControlDb | PostgresControlDb;

export { BUSY_TIMEOUT_MS };

/** How a dialect opens a write transaction and a savepoint in one. */
export interface Transactions {
  /** Begin a transaction, run `body` with its handle and commit; roll back when `body` throws. */
  run<T>(body: (tx: Db) => Promise<T>): Promise<T>;
  /** Run `body` in a savepoint of the open transaction `tx`, rolled back alone when it throws. */
  savepoint<T>(tx: Db, name: string, body: () => Promise<T>): Promise<T>;
}

/** The write transaction open in this async context, and what runs once it has committed. */
interface OpenWrite {
  readonly on: Transactions;
  tx: Db | undefined;
  readonly hooks: (() => void)[];
  open: boolean;
  savepoints: number;
}
const current = new AsyncLocalStorage<OpenWrite>();

/**
 * Run `fn` once the write transaction `tx` has committed — to tell other processes and sessions
 * about what it changed, which they must not hear of before they can read it, nor at all when it
 * rolls back. Called on anything but an open write transaction, it throws: a notice sent outside a
 * transaction would go out whatever happened to the change.
 */
export function afterCommit(tx: Db, fn: () => void): void {
  const w = current.getStore();
  if (!w || !w.open || w.tx !== tx) throw new Error('afterCommit: not inside a write transaction');
  w.hooks.push(fn);
}

/**
 * `ControlDb.write` on a dialect's transactions. The writes of one process take turns: an async
 * `fn` awaits between its statements, and on SQLite another write must not run its statements
 * inside this one's transaction meanwhile; on PostgreSQL a write waiting for the lock would hold a
 * pooled connection that the reads of the write holding it may need. A write called inside
 * another's `fn` (the same async context, that write still open) is a savepoint of it; its notices
 * run when the outermost write commits, and go with the savepoint when it rolls back. Work begun
 * inside a write that runs after it has ended is not part of it: it gets a transaction of its own.
 */
export function writeRunner(on: Transactions): { write: ControlDb['write']; drained(): Promise<void> | undefined } {
  let turn: Promise<void> = Promise.resolve();
  let begun = 0;
  /**
   * What resolves once every write begun so far has ended (closing waits for them), or nothing when
   * none is: then a close happens at once (in a process's exit handler too).
   */
  const drained = () =>
    begun === 0
      ? undefined
      : (async () => {
          while (begun > 0) await turn;
        })();
  const write = async <T>(fn: (tx: Db) => Promise<T> | T): Promise<T> => {
    const outer = current.getStore();
    if (outer?.open && outer.on === on && outer.tx) {
      const tx = outer.tx;
      const mark = outer.hooks.length;
      try {
        return await on.savepoint(tx, `nested_${++outer.savepoints}`, async () => fn(tx));
      } catch (err) {
        outer.hooks.length = mark; // the savepoint rolled back: its notices go with it
        throw err;
      }
    }
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const before = turn;
    turn = before.then(() => mine);
    begun++;
    await before;
    const w: OpenWrite = { on, tx: undefined, hooks: [], open: true, savepoints: 0 };
    let out: T;
    try {
      out = await on.run(async (tx) => {
        w.tx = tx;
        try {
          return await current.run(w, async () => fn(tx));
        } finally {
          w.open = false;
        }
      });
    } catch (err) {
      // A wait for another process's write lock that timed out, on either dialect: nothing was written.
      throw busyOr(err);
    } finally {
      begun--;
      release();
    }
    // Committed: every hook runs, even when one before it throws; the first error is the caller's.
    let failure: unknown;
    for (const h of w.hooks) {
      try {
        h();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
    return out;
  };
  return { write, drained };
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
export function openControlDb(dataDir: string, opts: { create?: boolean } = {}): SqliteControlDb {
  const file = controlDbFile(dataDir);
  if (!opts.create && !existsSync(file)) {
    throw new UserError(`no nia-link installation in ${dataDir}: run \`nia-link init\` first (or pass --data-dir)`, 'not-initialised');
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return connect(file, false, (wdb) => migrate(wdb, { migrationsFolder: MIGRATIONS_DIR }));
}

/**
 * Another write connection to a SQLite control database that a process has already opened (and so
 * migrated), for a worker thread of that process that writes in synchronous transactions of its own
 * (the usage-log appender). The file must exist.
 */
export function connectWriter(file: string): { db: Db; sqlite: Database.Database } {
  const sqlite = writerConnection(file, true);
  return { db: drizzle(sqlite, { schema }), sqlite };
}

function writerConnection(file: string, mustExist: boolean): Database.Database {
  const sqlite = new Database(file, { fileMustExist: mustExist });
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('synchronous = NORMAL');
  return sqlite;
}

function connect(file: string, mustExist: boolean, prepare?: (wdb: Db) => void): SqliteControlDb {
  const sqlite = writerConnection(file, mustExist);
  const wdb = drizzle(sqlite, { schema });
  prepare?.(wdb);
  const reader = new Database(file, { readonly: true, fileMustExist: true });
  reader.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  const db = drizzle(reader, { schema });
  // The runner gives writes of this process turns on the one write connection.
  const { write, drained } = writeRunner({
    async run(body) {
      sqlite.exec('BEGIN IMMEDIATE');
      try {
        const out = await body(wdb);
        sqlite.exec('COMMIT');
        return out;
      } catch (err) {
        if (sqlite.inTransaction) sqlite.exec('ROLLBACK');
        throw err;
      }
    },
    async savepoint(_tx, name, body) {
      sqlite.exec(`SAVEPOINT ${name}`);
      try {
        const out = await body();
        sqlite.exec(`RELEASE ${name}`);
        return out;
      } catch (err) {
        sqlite.exec(`ROLLBACK TO ${name}`);
        sqlite.exec(`RELEASE ${name}`);
        throw err;
      }
    },
  });
  return {
    dialect: 'sqlite',
    db,
    sqlite: reader,
    file,
    where: file,
    write,
    ping: async () => void reader.prepare('SELECT 1').get(),
    size: async () => [file, `${file}-wal`].reduce((n, f) => n + (existsSync(f) ? statSync(f).size : 0), 0),
    close: async () => {
      const pending = drained();
      if (pending) await pending; // writes already begun commit first
      reader.close();
      sqlite.close();
    },
  };
}
