import type Database from 'better-sqlite3';
import { sql } from 'drizzle-orm';
import { isPg, rawAll, rawRun } from '../dialect';
import { connectionOf, type Db } from '../index';

export type InstallationMode = 'production' | 'drill';

/**
 * The mode is written once and never changes (a trigger refuses updates), so a connection that has
 * read it keeps it: every usage-log append asks. Until init has written it there is nothing to keep,
 * and an installation without a mode is production.
 */
const known = new WeakMap<Database.Database, InstallationMode>();
const statements = new WeakMap<Database.Database, Database.Statement>();

export async function modeOf(tx: Db): Promise<InstallationMode> {
  if (!isPg(tx)) return modeNow(tx);
  return (await recorded(tx)) ?? 'production';
}
/** `modeOf` without a turn of the event loop, for the SQLite appender thread's group commit. */
export function modeNow(tx: Db): InstallationMode {
  const conn = connectionOf(tx);
  const cached = known.get(conn);
  if (cached) return cached;
  let stmt = statements.get(conn);
  if (!stmt) statements.set(conn, (stmt = conn.prepare('SELECT mode FROM installation WHERE id = 1')));
  const row = stmt.get() as { mode: InstallationMode } | undefined;
  if (!row) return 'production';
  known.set(conn, row.mode);
  return row.mode;
}

/** The written mode, or undefined before init has written one. */
export async function recorded(tx: Db): Promise<InstallationMode | undefined> {
  const [row] = await rawAll<{ mode: InstallationMode }>(tx, sql`SELECT mode FROM installation WHERE id = 1`);
  return row?.mode;
}

export async function record(tx: Db, mode: InstallationMode, at: Date): Promise<void> {
  await rawRun(tx, sql`INSERT INTO installation (id, mode, created_at) VALUES (1, ${mode}, ${at.toISOString()})`);
}

/** Whether anything was ever recorded here (a used installation cannot become a drill). */
export async function used(tx: Db): Promise<boolean> {
  const [r] = await rawAll<{ used: number | boolean }>(tx, sql`SELECT (EXISTS (SELECT 1 FROM usage_log) OR EXISTS (SELECT 1 FROM log_archive) OR EXISTS (SELECT 1 FROM agency)) AS used`);
  return r.used === 1 || r.used === true;
}
