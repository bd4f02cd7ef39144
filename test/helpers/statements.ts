import type Database from 'better-sqlite3';

type Method = 'run' | 'get' | 'all' | 'iterate';
const METHODS: readonly Method[] = ['run', 'get', 'all', 'iterate'];

/**
 * Every statement executed on one connection while `fn` runs (until its promise settles): the SQL
 * of each execution, in order.
 * It counts executions, not preparations: a statement prepared once per connection and run for each
 * row counts once per run, whether it was prepared before or during `fn`. (better-sqlite3's
 * statements share one prototype; its run/get/all/iterate are wrapped for the call and restored.)
 */
export async function executedStatements<T>(conn: Database.Database, fn: () => Promise<T> | T): Promise<{ result: T; sql: string[] }> {
  const probe = conn.prepare('SELECT 1');
  const proto = Object.getPrototypeOf(probe) as Record<Method, (...args: unknown[]) => unknown>;
  const saved = METHODS.map((m) => [m, proto[m]] as const);
  const sql: string[] = [];
  for (const [m, original] of saved) {
    proto[m] = function (this: Database.Statement, ...args: unknown[]) {
      if (this.database === conn) sql.push(this.source);
      return original.apply(this, args);
    };
  }
  try {
    return { result: await fn(), sql };
  } finally {
    for (const [m, original] of saved) proto[m] = original;
  }
}
