import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import path from 'node:path';
import pg from 'pg';
import { UserError } from '../../errors';
import { PROJECT_ROOT } from '../../paths';
import * as schema from './schema';

export { schema };

/** Where drizzle-kit writes the PostgreSQL migrations (drizzle.pg.config.ts). */
export const PG_MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'drizzle-pg');

export type PgDb = NodePgDatabase<typeof schema>;

/**
 * Taken (session-level) while migrations run, so that two hosts starting at once do not both apply
 * them: the second waits, then finds nothing left to do. A constant of this application ('nia-mig').
 */
const MIGRATION_LOCK = 0x6e69612d6d6967n;

export interface PgControlDb {
  readonly pool: pg.Pool;
  readonly db: PgDb;
  /** The URL without its password: what logs, errors and /healthz may show. */
  readonly url: string;
  /**
   * Run `fn` in a transaction on one pooled connection: `client` for prepared statements on hot
   * paths (the usage-log append), `tx` for drizzle on the same connection. Commits when `fn`
   * resolves, rolls back when it throws.
   */
  transaction<T>(fn: (client: pg.PoolClient, tx: PgDb) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * The URL with any password removed (user info and `password`/`sslpassword` query parameters), for
 * logs and errors. Something that does not parse is not shown at all: it may be a password.
 */
export function redactDatabaseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '(unparseable database URL)';
  }
  if (u.password) u.password = '';
  for (const key of [...u.searchParams.keys()]) {
    if (/pass/i.test(key)) u.searchParams.set(key, 'redacted');
  }
  return u.toString();
}

/** The connection options node-postgres takes from a URL (sslmode, sslrootcert, sslcert, sslkey … in its query). */
function poolConfig(url: string, opts: PgOpenOptions): pg.PoolConfig {
  return {
    connectionString: url,
    max: opts.max ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
    application_name: opts.applicationName ?? 'nia-link',
    // A peer that vanished (a host lost, a partition) is noticed by the kernel, not after hours.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // A transaction left open by a stalled process ends after a minute, releasing its locks.
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
  };
}

/** How long a transaction may sit idle (its process stalled) before the server ends it. */
export const IDLE_IN_TRANSACTION_MS = 60_000;

export interface PgOpenOptions {
  /** Connections in the pool (default 10). */
  max?: number;
  /** How long to wait for a connection before giving up (default 10 s). */
  connectTimeoutMs?: number;
  applicationName?: string;
  /** Apply pending migrations (init and start do; default true). */
  migrate?: boolean;
  /** An idle pooled connection failed (the server restarted): the pool replaces it by itself. */
  onIdleError?: (message: string) => void;
}

/** Why a connection failed, in one line without the URL (node-postgres never puts the password in one). */
export function pgErrorReason(err: unknown): string {
  const e = err as { code?: string; message?: string; errors?: { code?: string; message?: string }[] };
  const inner = e.errors?.[0];
  const code = e.code ?? inner?.code;
  const message = (e.message || inner?.message || String(err)).split('\n')[0];
  return code && !message.includes(code) ? `${message} (${code})` : message;
}

/**
 * Open the control database on PostgreSQL and apply pending migrations. A server that cannot be
 * reached (down, wrong host, database missing, password refused) is a one-line UserError naming the
 * URL without its password.
 */
export async function openPgControlDb(url: string, opts: PgOpenOptions = {}): Promise<PgControlDb> {
  const shown = redactDatabaseUrl(url);
  if (!/^postgres(ql)?:\/\//i.test(url)) {
    throw new UserError(`not a PostgreSQL URL: ${shown} (expected postgres://user@host:port/database)`, 'database-url');
  }
  const pool = new pg.Pool(poolConfig(url, opts));
  // Without a listener an idle connection's error (server restart) would end the process.
  pool.on('error', (err) => opts.onIdleError?.(pgErrorReason(err)));
  let first: pg.PoolClient;
  try {
    first = await pool.connect();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new UserError(`cannot reach the control database at ${shown}: ${pgErrorReason(err)}`, 'database-unreachable');
  }
  try {
    if (opts.migrate !== false) await migrateWith(first);
  } catch (err) {
    first.release(true);
    await pool.end().catch(() => undefined);
    throw err;
  }
  first.release();
  const db = drizzle(pool, { schema });
  return {
    pool,
    db,
    url: shown,
    transaction: (fn) => pgTransaction(pool, fn),
    close: () => pool.end(),
  };
}

/** Apply pending migrations on one connection, holding the migration lock. */
async function migrateWith(client: pg.PoolClient): Promise<void> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK.toString()]);
  try {
    await migrate(drizzle(client, { schema }), { migrationsFolder: PG_MIGRATIONS_DIR });
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK.toString()]);
  }
}

/**
 * A pooled connection checked out for statements of our own. While it is out the pool no longer
 * listens for its errors, and a connection the server drops emits one: without a listener it would
 * end the process. The statement in flight fails by itself; `release` discards a connection that
 * failed (or that the caller says is broken) instead of returning it to the pool.
 */
export async function checkout(pool: pg.Pool): Promise<{ client: pg.PoolClient; release(broken?: boolean): void }> {
  const client = await pool.connect();
  let failed = false;
  const onError = () => {
    failed = true;
  };
  client.on('error', onError);
  return {
    client,
    release: (broken = false) => {
      client.off('error', onError);
      client.release(failed || broken);
    },
  };
}

/** BEGIN … COMMIT on one pooled connection; ROLLBACK (and the error) when `fn` throws. */
export async function pgTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient, tx: PgDb) => Promise<T>): Promise<T> {
  const { client, release } = await checkout(pool);
  let broken = false;
  try {
    await client.query('BEGIN');
    try {
      const out = await fn(client, drizzle(client, { schema }));
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw err;
    }
  } finally {
    release(broken);
  }
}
