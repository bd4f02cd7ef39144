import type pg from 'pg';
import { BUSY_TIMEOUT_MS } from '../busy';
import { type Db, type PostgresControlDb, writeRunner } from '../index';
import { openPgControlDb, type PgOpenOptions } from './connect';

/*
 * The control database on PostgreSQL behind the same runner as SQLite's (../index.ts):
 * - reads outside a write run on any pooled connection and see what has committed;
 * - a write is one transaction on one pooled connection. It first takes a transaction-scoped
 *   advisory lock that every write of every process and host takes, so writes run one at a time,
 *   as SQLite's BEGIN IMMEDIATE makes them: a service's read-check-write inside a write never
 *   races another's. The usage-log append (./usage-log.ts) takes its own lock after it. Within a
 *   process the runner gives writes turns before they take a connection, so writes waiting for
 *   the lock never hold the pool's connections that the lock holder's reads need;
 * - a write inside another's callback is a savepoint on the same connection.
 */

/** The application's advisory-lock key for writes ('nia-wri'). */
export const WRITE_LOCK = 0x6e69612d777269n;

const TAKE_WRITE_LOCK = `SET LOCAL lock_timeout = ${BUSY_TIMEOUT_MS}; SELECT pg_advisory_xact_lock(${WRITE_LOCK})`;

const clients = new WeakMap<object, pg.PoolClient>();

/** The connection of the PostgreSQL write transaction `tx` (the usage-log append's prepared statements run on it). */
export function pgClientOf(tx: Db): pg.PoolClient {
  const c = clients.get(tx as object);
  if (!c) throw new Error('not inside a PostgreSQL write transaction');
  return c;
}

export async function openPostgresControlDb(url: string, opts: PgOpenOptions = {}): Promise<PostgresControlDb> {
  const pgc = await openPgControlDb(url, opts);
  const { write, drained } = writeRunner({
    run: (body) =>
      pgc.transaction(async (client, tx) => {
        // Waiting for another process's write is bounded, as SQLite's busy timeout bounds it (one
        // round trip: both statements are constants of this module).
        await client.query(TAKE_WRITE_LOCK);
        clients.set(tx, client);
        return body(tx as unknown as Db);
      }),
    async savepoint(tx, name, body) {
      const client = pgClientOf(tx);
      await client.query(`SAVEPOINT ${name}`);
      try {
        const out = await body();
        await client.query(`RELEASE SAVEPOINT ${name}`);
        return out;
      } catch (err) {
        await client.query(`ROLLBACK TO SAVEPOINT ${name}`);
        await client.query(`RELEASE SAVEPOINT ${name}`);
        throw err;
      }
    },
  });
  return {
    dialect: 'postgres',
    db: pgc.db as unknown as Db,
    write,
    where: pgc.url,
    url,
    pg: pgc,
    ping: async () => void (await pgc.pool.query('SELECT 1')),
    size: async () => Number((await pgc.pool.query<{ n: string }>('SELECT pg_database_size(current_database())::text AS n')).rows[0].n),
    close: async () => {
      const pending = drained();
      if (pending) await pending; // writes already begun commit first
      await pgc.close();
    },
  };
}
