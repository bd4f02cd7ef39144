import Database from 'better-sqlite3';
import type pg from 'pg';
import { openControlDb, type PostgresControlDb } from '../index';
import { checkout } from './connect';
import { pgColumns, SINGLE_ROW, tablesInOrder } from './copy';

/*
 * A PostgreSQL control database written into a SQLite file (a backup of it): the inverse of
 * `db migrate`. Every table is read inside one REPEATABLE READ, READ ONLY transaction — one
 * snapshot, while the service keeps writing — through a cursor, a page at a time, and written as
 * stored (ids kept, JSON text byte for byte) into a new SQLite control database of the same schema
 * version, so the usage log keeps its digests and hashes. `db migrate` moves it back into an empty
 * PostgreSQL database.
 */

/** Rows fetched per round trip. */
const PAGE = 5000;

/** A value as SQLite stores it: booleans 0/1, bigint text as a number, bytea as a Buffer. */
function fromPg(type: string): (v: unknown) => unknown {
  if (type === 'bool') return (v) => (v === null ? null : v ? 1 : 0);
  if (type === 'int8') return (v) => (v === null ? null : BigInt(v as string));
  return (v) => v;
}

export interface SnapshotReport {
  file: string;
  tables: { table: string; rows: number }[];
}

/** Write the control database `cdb` into a new SQLite control database in `dir` (`nia-link.db`). */
export async function snapshotToSqlite(cdb: PostgresControlDb, dir: string): Promise<SnapshotReport> {
  const made = openControlDb(dir, { create: true }); // the schema, migrated
  const file = made.file;
  await made.close();
  const sqlite = new Database(file);
  sqlite.defaultSafeIntegers(true);
  const { client, release } = await checkout(cdb.pg.pool);
  const tables: SnapshotReport['tables'] = [];
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    sqlite.exec('BEGIN');
    try {
      for (const t of tablesInOrder(sqlite)) {
        const mine = sqlite.prepare('SELECT name FROM pragma_table_info(?)').pluck().all(t) as string[];
        const cols = (await pgColumns(client, t)).filter((c) => mine.includes(c.name));
        const rows = t === SINGLE_ROW ? await singleRow(client, sqlite, t, cols) : await table(client, sqlite, t, cols);
        tables.push({ table: t, rows });
      }
      sqlite.exec('COMMIT');
      await client.query('COMMIT');
    } catch (err) {
      if (sqlite.inTransaction) sqlite.exec('ROLLBACK');
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } finally {
    release();
    sqlite.close();
  }
  return { file, tables };
}

const q = (name: string) => `"${name.replace(/"/g, '""')}"`;

async function table(client: pg.ClientBase, sqlite: Database.Database, t: string, cols: { name: string; type: string }[]): Promise<number> {
  const names = cols.map((c) => q(c.name)).join(', ');
  const convert = cols.map((c) => fromPg(c.type));
  const order = cols.some((c) => c.name === 'seq') ? 'seq' : cols.some((c) => c.name === 'id') ? 'id' : names;
  const insert = sqlite.prepare(`INSERT INTO ${q(t)} (${names}) VALUES (${cols.map(() => '?').join(', ')})`);
  await client.query(`DECLARE snap NO SCROLL CURSOR FOR SELECT ${names} FROM ${q(t)} ORDER BY ${order === names ? names : q(order)}`);
  let rows = 0;
  try {
    for (;;) {
      const page = await client.query<unknown[]>({ text: `FETCH ${PAGE} FROM snap`, rowMode: 'array' });
      for (const r of page.rows) insert.run(r.map((v, i) => convert[i](v)));
      rows += page.rows.length;
      if (page.rows.length < PAGE) break;
    }
  } finally {
    await client.query('CLOSE snap');
  }
  return rows;
}

/** The one-row table the migrations made on both sides: its values, not a second row. */
async function singleRow(client: pg.ClientBase, sqlite: Database.Database, t: string, cols: { name: string; type: string }[]): Promise<number> {
  const r = await client.query(`SELECT * FROM ${q(t)} WHERE id = 1`);
  if (!r.rows[0]) return 0;
  const set = cols.filter((c) => c.name !== 'id');
  sqlite.prepare(`UPDATE ${q(t)} SET ${set.map((c) => `${q(c.name)} = ?`).join(', ')} WHERE id = 1`).run(set.map((c) => fromPg(c.type)(r.rows[0][c.name])));
  return 1;
}
