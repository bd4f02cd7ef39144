import type Database from 'better-sqlite3';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { UserError } from '../../errors';
import type { ChainBad } from '../../usagelog/walk';
import type { SqliteControlDb } from '../index';
import { checkout, openPgControlDb, redactDatabaseUrl } from './connect';
import { walkPgLog } from './walk';

/*
 * Moving an installation from its SQLite control database into an empty PostgreSQL database
 * (`nia-link db migrate --to postgres://…`):
 * - one consistent pass: every table is read inside one SQLite read transaction (a snapshot, even
 *   while the service writes) and written inside one PostgreSQL transaction (all or nothing);
 * - values are copied as stored (ids kept, JSON text byte for byte), so the usage log keeps its
 *   digests and hashes; the copy's chain is then walked on PostgreSQL and must end at the same head;
 * - a target that already holds an installation is refused: nothing is ever merged or overwritten.
 */

/** Tables that are the database's own bookkeeping, not the installation's. */
const SKIP = new Set(['__drizzle_migrations', 'sqlite_sequence', 'sqlite_stat1', 'sqlite_stat4']);
/** One row that the PostgreSQL migrations create; the copy sets its value instead of inserting it. */
export const SINGLE_ROW = 'registry_version';
/** Bytes of COPY text handed to the server at a time. */
const CHUNK_BYTES = 1 << 20;

export interface CopyReport {
  target: string;
  tables: { table: string; rows: number }[];
  /** The copy's chain walked on PostgreSQL; `sameAsSource`: verified, and it ends at the head the snapshot had. */
  usageLog: { records: number; head: string | null; verified: boolean; sameAsSource: boolean; bad?: ChainBad };
  ms: number;
}

interface PgColumn {
  name: string;
  type: string;
  identity: boolean;
}

const q = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** The installation's tables, parents before children (foreign keys), each once. */
export function tablesInOrder(sqlite: Database.Database): string[] {
  const names = (sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[]).filter((n) => !SKIP.has(n));
  const parents = new Map(names.map((n) => [n, (sqlite.prepare(`SELECT "table" FROM pragma_foreign_key_list(?)`).pluck().all(n) as string[]).filter((p) => p !== n)]));
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (n: string) => {
    if (seen.has(n)) return;
    seen.add(n);
    for (const p of parents.get(n) ?? []) if (names.includes(p)) visit(p);
    out.push(n);
  };
  names.forEach(visit);
  return out;
}

export async function pgColumns(client: pg.ClientBase, table: string): Promise<PgColumn[]> {
  const r = await client.query<{ name: string; type: string; identity: string }>(
    `SELECT column_name AS name, udt_name AS type, is_identity AS identity FROM information_schema.columns
     WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`,
    [table],
  );
  return r.rows.map((c) => ({ name: c.name, type: c.type, identity: c.identity === 'YES' }));
}

/**
 * One value in COPY's text format: \N for NULL, backslash escapes for the characters that frame rows
 * and columns, booleans as t/f (SQLite keeps 0/1), bytea as \\x hex, integers exactly.
 */
function copyText(type: string): (v: unknown) => string {
  const text = (v: string) => v.replace(/[\\\n\r\t]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t'));
  return (v) => {
    if (v === null || v === undefined) return '\\N';
    if (type === 'bool') return v === 1 || v === 1n || v === true || v === '1' ? 't' : 'f';
    if (Buffer.isBuffer(v)) return `\\\\x${v.toString('hex')}`;
    if (typeof v === 'bigint' || typeof v === 'number') return String(v);
    return text(String(v));
  };
}

/** SQLite keeps booleans as 0/1; PostgreSQL takes them typed (the one-row update). */
function converter(type: string): (v: unknown) => unknown {
  if (type === 'bool') return (v) => (v === null ? null : v === 1 || v === true || v === '1');
  return (v) => v;
}

/** Does the target already hold an installation? Only the rows the migrations create are allowed. */
async function assertEmpty(client: pg.ClientBase, tables: string[], shown: string): Promise<void> {
  for (const t of tables) {
    if (t === SINGLE_ROW) continue;
    const r = await client.query(`SELECT 1 FROM ${q(t)} LIMIT 1`);
    if (r.rowCount) throw new UserError(`the target database ${shown} is not empty (table ${t} has rows): db migrate copies only into an empty database`, 'database.not-empty');
  }
}

/**
 * Copy the installation in `cdb` into the PostgreSQL database at `url` (migrated first), then walk
 * the copied usage log. `progress` hears each table as it is done.
 */
export async function copyToPostgres(cdb: SqliteControlDb, url: string, progress: (table: string, rows: number) => void = () => undefined): Promise<CopyReport> {
  const started = Date.now();
  const shown = redactDatabaseUrl(url);
  const target = await openPgControlDb(url, { max: 2, applicationName: 'nia-link db migrate' });
  const sqlite = cdb.sqlite;
  const tables: CopyReport['tables'] = [];
  try {
    const order = tablesInOrder(sqlite);
    // Every table must exist on the other side with every column (the schemas are kept equal).
    const columns = new Map<string, PgColumn[]>();
    const { client, release } = await checkout(target.pool);
    try {
      for (const t of order) {
        const cols = await pgColumns(client, t);
        const mine = (sqlite.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(t) as string[]);
        const missing = mine.filter((c) => !cols.some((p) => p.name === c));
        if (cols.length === 0 || missing.length) throw new UserError(`table ${t}: the PostgreSQL schema lacks ${cols.length === 0 ? 'the table' : `columns ${missing.join(', ')}`} (are both on the same version of nia-link?)`, 'database.schema-mismatch');
        columns.set(t, cols.filter((c) => mine.includes(c.name)));
      }
      let sourceHead: string | null = null;
      sqlite.exec('BEGIN'); // one read snapshot for every table
      try {
        sourceHead = (sqlite.prepare('SELECT hash FROM usage_log ORDER BY seq DESC LIMIT 1').pluck().get() as string | undefined) ?? null;
        await client.query('BEGIN');
        try {
          await client.query('LOCK TABLE usage_log IN EXCLUSIVE MODE'); // no one appends while the log is copied
          await assertEmpty(client, order, shown);
          for (const t of order) {
            const cols = columns.get(t)!;
            const rows = t === SINGLE_ROW ? await copySingleRow(sqlite, client, t, cols) : await copyTable(sqlite, client, t, cols);
            tables.push({ table: t, rows });
            progress(t, rows);
          }
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      } finally {
        sqlite.exec('COMMIT');
      }
      const walked = await walkPgLog(url);
      return { target: shown, tables, usageLog: { records: walked.records, head: walked.head, verified: walked.verified, ...(walked.bad ? { bad: walked.bad } : {}), sameAsSource: walked.verified && walked.head === sourceHead }, ms: Date.now() - started };
    } finally {
      release();
    }
  } finally {
    await target.close();
  }
}

async function copyTable(sqlite: Database.Database, client: pg.ClientBase, table: string, cols: PgColumn[]): Promise<number> {
  const names = cols.map((c) => q(c.name)).join(', ');
  const encode = cols.map((c) => copyText(c.type));
  const order = cols.some((c) => c.name === 'seq') ? 'seq' : cols.some((c) => c.name === 'id') ? 'id' : 'rowid';
  const read = sqlite.prepare(`SELECT ${names} FROM ${q(table)} ORDER BY ${q(order)}`).raw(true);
  read.safeIntegers(true); // integers exactly as stored, whatever their size
  let rows = 0;
  function* lines(): Generator<string> {
    let chunk = '';
    for (const row of read.iterate() as IterableIterator<unknown[]>) {
      for (let c = 0; c < row.length; c++) chunk += (c ? '\t' : '') + encode[c](row[c]);
      chunk += '\n';
      rows++;
      if (chunk.length >= CHUNK_BYTES) {
        yield chunk;
        chunk = '';
      }
    }
    if (chunk) yield chunk;
  }
  await pipeline(Readable.from(lines()), client.query(copyFrom(`COPY ${q(table)} (${names}) FROM STDIN`)));
  // Identity columns continue after the copied ids.
  for (const c of cols.filter((x) => x.identity)) {
    await client.query(`SELECT setval(pg_get_serial_sequence($1, $2), GREATEST((SELECT max(${q(c.name)}) FROM ${q(table)}), 1), (SELECT count(*) > 0 FROM ${q(table)}))`, [q(table), c.name]);
  }
  return rows;
}

async function copySingleRow(sqlite: Database.Database, client: pg.ClientBase, table: string, cols: PgColumn[]): Promise<number> {
  const row = sqlite.prepare(`SELECT * FROM ${q(table)} WHERE id = 1`).get() as Record<string, unknown> | undefined;
  if (!row) return 0;
  const set = cols.filter((c) => c.name !== 'id');
  await client.query(`UPDATE ${q(table)} SET ${set.map((c, i) => `${q(c.name)} = $${i + 1}`).join(', ')} WHERE id = 1`, set.map((c) => converter(c.type)(row[c.name])));
  return 1;
}
