import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { from as copyFrom } from 'pg-copy-streams';
import { csvField } from '../extract/csv';
import { type SeedOptions, seedGenerator } from './sqlite';
import { PgSource } from '../extract/source-pg';
import { ident } from '../extract/sql-ident';
import { createGenerator } from './synthetic';

/** Rows per chunk written to COPY: enough to keep the connection busy, small enough for steady progress. */
const CHUNK_ROWS = 5_000;

/** A value as COPY … FROM (FORMAT csv) reads it back exactly: NULL is the bare empty field, an empty string is quoted. */
function copyField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return s === '' || s === '\\.' ? `"${s}"` : csvField(s);
}

/**
 * Fill `<dataset>` in a PostgreSQL source (the URL's default schema) with the rows seedSource
 * writes to the embedded source: the same columns (record_id, the catalog's fields as text,
 * updated_at as ISO 8601 text; text compared byte by byte, COLLATE "C", as SQLite compares it) and
 * the same values. The rows stream in with COPY FROM into `<dataset>__seeding`; one transaction then
 * replaces the old table, so a reader sees the old rows or the new ones, never part of them.
 */
export async function seedPgSource(opts: Omit<SeedOptions, 'file'> & { url: string }): Promise<{ rows: number; ms: number }> {
  const started = performance.now();
  const { dataset, rows, catalog } = opts;
  const gen = seedGenerator(opts);
  const table = ident(dataset);
  const building = ident(`${dataset}__seeding`);
  const columnList = ['record_id', ...gen.columns, 'updated_at'].map(ident).join(', ');
  const updatedAt = copyField(opts.now.toISOString());

  const source = new PgSource(opts.url);
  try {
    const c = await source.client();
    // hmac fields are computed in the database; a role that may not create the extension leaves it
    // to the database owner, and an extract that needs it says so.
    await c.query('CREATE EXTENSION IF NOT EXISTS pgcrypto').catch(() => undefined);
    await c.query(`DROP TABLE IF EXISTS ${building}`);
    await c.query(`CREATE TABLE ${building} (record_id bigint NOT NULL, ${gen.columns.map((col) => `${ident(col)} text COLLATE "C"`).join(', ')}, updated_at text COLLATE "C" NOT NULL)`);
    try {
      const sink = c.query(copyFrom(`COPY ${building} (${columnList}) FROM STDIN WITH (FORMAT csv)`));
      const finished = once(sink, 'finish');
      finished.catch(() => undefined);
      const values: unknown[] = new Array(gen.columns.length);
      for (let from = 0; from < rows; from += CHUNK_ROWS) {
        const to = Math.min(rows, from + CHUNK_ROWS);
        let text = '';
        for (let i = from; i < to; i++) {
          gen.fill(i, values, 0);
          text += `${i + 1}`;
          for (const v of values) text += ',' + copyField(v);
          text += `,${updatedAt}\n`;
        }
        if (!sink.write(text)) await Promise.race([once(sink, 'drain'), finished]);
        opts.onProgress?.(to, rows);
      }
      sink.end();
      await finished;

      await c.query('BEGIN');
      try {
        await c.query(`DROP TABLE IF EXISTS ${table}`);
        await c.query(`ALTER TABLE ${building} RENAME TO ${table}`);
        // Built after the load (faster than row by row) and after the old table is gone (index names are per schema).
        await c.query(`ALTER TABLE ${table} ADD PRIMARY KEY (record_id)`);
        await c.query(`CREATE INDEX ${ident(`${dataset}_updated_at`)} ON ${table} (updated_at)`);
        // Online queries look records up by the catalog's lookup identifier.
        await c.query(`CREATE INDEX ${ident(`${dataset}_${catalog.lookup}`)} ON ${table} (${ident(catalog.lookup)})`);
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
      await c.query(`ANALYZE ${table}`);
    } catch (err) {
      await c.query(`DROP TABLE IF EXISTS ${building}`).catch(() => undefined);
      throw err;
    }
  } finally {
    await source.close();
  }
  return { rows, ms: performance.now() - started };
}
