import type { Config } from '../config';
import { type Source, SqliteSource, sourceDbPath } from './source';
import { PgSource } from './source-pg';

/** The configured extract source: `source.url` names a PostgreSQL server; unset, the embedded `<data-dir>/source.db`. */
export function openExtractSource(config: Pick<Config, 'dataDir' | 'source'>): Source {
  return config.source.url ? new PgSource(config.source.url) : new SqliteSource(sourceDbPath(config.dataDir));
}
