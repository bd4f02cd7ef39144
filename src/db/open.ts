import type { Config } from '../config';
import { type ControlDb, openControlDb } from './index';
import { openPostgresControlDb } from './pg/control';

/**
 * Open the configured control database: `database.url` names PostgreSQL (its migrations are
 * applied, so a new host needs no `init`); unset, the SQLite file in the data directory (`create`:
 * make it, as init and start do). A PostgreSQL server that cannot be reached is a one-line error
 * naming the URL without its password.
 */
export async function openControl(config: Pick<Config, 'dataDir' | 'database'>, opts: { create?: boolean; onIdleError?: (message: string) => void } = {}): Promise<ControlDb> {
  if (config.database.url) return openPostgresControlDb(config.database.url, { onIdleError: opts.onIdleError });
  return openControlDb(config.dataDir, { create: opts.create });
}
