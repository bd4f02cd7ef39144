import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type SqliteControlDb as ControlDb, openControlDb } from '../../src/db';
import { openPgControlDb, type PgControlDb } from '../../src/db/pg/connect';
import { createScratchDb, type ScratchDb } from '../helpers/pg';

/**
 * The control database has the same shape on SQLite and on PostgreSQL: both are migrated from
 * scratch, introspected from their catalogues, and compared table by table.
 */

interface Shape {
  tables: string[];
  /** table → "column notnull" lines, in name order. */
  columns: Record<string, string[]>;
  primaryKeys: Record<string, string>;
  /** "table(col,col)" plus " WHERE …" marker for a partial index. */
  uniques: string[];
  /** "table(cols) → other(cols)". */
  foreignKeys: string[];
  /** "table.trigger". */
  triggers: string[];
}

const sorted = <T>(xs: T[]): T[] => [...xs].sort();

function sqliteShape(cdb: ControlDb): Shape {
  const db = cdb.sqlite;
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != '__drizzle_migrations'").all() as { name: string }[]).map((r) => r.name);
  const columns: Record<string, string[]> = {};
  const primaryKeys: Record<string, string> = {};
  const uniques: string[] = [];
  const foreignKeys: string[] = [];
  for (const t of tables) {
    const cols = db.prepare(`PRAGMA table_info("${t}")`).all() as { name: string; notnull: number; pk: number }[];
    // A primary-key column is never null (SQLite's INTEGER PRIMARY KEY is the rowid, NOT NULL or not).
    columns[t] = sorted(cols.map((c) => `${c.name} ${c.notnull || c.pk ? 'not null' : 'null'}`));
    primaryKeys[t] = cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name).join(',');
    for (const ix of db.prepare(`PRAGMA index_list("${t}")`).all() as { name: string; unique: number; origin: string; partial: number }[]) {
      if (!ix.unique || ix.origin === 'pk') continue;
      const cs = (db.prepare(`PRAGMA index_info("${ix.name}")`).all() as { seqno: number; name: string }[]).sort((a, b) => a.seqno - b.seqno).map((c) => c.name);
      uniques.push(`${t}(${cs.join(',')})${ix.partial ? ' partial' : ''}`);
    }
    const fks = db.prepare(`PRAGMA foreign_key_list("${t}")`).all() as { id: number; seq: number; table: string; from: string; to: string | null }[];
    for (const id of new Set(fks.map((f) => f.id))) {
      const parts = fks.filter((f) => f.id === id).sort((a, b) => a.seq - b.seq);
      foreignKeys.push(`${t}(${parts.map((p) => p.from).join(',')}) → ${parts[0].table}(${parts.map((p) => p.to ?? 'id').join(',')})`);
    }
  }
  const triggers = (db.prepare("SELECT tbl_name || '.' || name AS n FROM sqlite_master WHERE type = 'trigger'").all() as { n: string }[]).map((r) => r.n);
  return { tables: sorted(tables), columns, primaryKeys, uniques: sorted(uniques), foreignKeys: sorted(foreignKeys), triggers: sorted(triggers) };
}

async function pgShape(cdb: PgControlDb): Promise<Shape> {
  const q = async <T>(text: string): Promise<T[]> => (await cdb.pool.query(text)).rows as T[];
  const tables = (await q<{ t: string }>("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")).map((r) => r.t);
  const columns: Record<string, string[]> = {};
  for (const c of await q<{ t: string; c: string; nullable: string }>('SELECT table_name AS t, column_name AS c, is_nullable AS nullable FROM information_schema.columns WHERE table_schema = current_schema()')) {
    (columns[c.t] ??= []).push(`${c.c} ${c.nullable === 'NO' ? 'not null' : 'null'}`);
  }
  for (const t of Object.keys(columns)) columns[t] = sorted(columns[t]);
  const cols = (rel: string, attnums: string) =>
    `(SELECT string_agg(a.attname, ',' ORDER BY k.i) FROM unnest(${attnums}) WITH ORDINALITY AS k(n, i) JOIN pg_attribute a ON a.attrelid = ${rel} AND a.attnum = k.n)`;
  const ns = 'connamespace = current_schema()::regnamespace';
  const primaryKeys: Record<string, string> = {};
  for (const r of await q<{ t: string; cs: string }>(`SELECT conrelid::regclass::text AS t, ${cols('conrelid', 'conkey')} AS cs FROM pg_constraint WHERE contype = 'p' AND ${ns}`)) {
    primaryKeys[r.t] = r.cs;
  }
  for (const t of tables) primaryKeys[t] ??= '';
  // Unique constraints and unique indexes alike (SQLite has only indexes): every unique index but the primary key's.
  const uniques = (
    await q<{ t: string; cs: string; partial: boolean }>(
      `SELECT i.indrelid::regclass::text AS t, ${cols('i.indrelid', 'i.indkey::int2[]')} AS cs, i.indpred IS NOT NULL AS partial
       FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
       WHERE i.indisunique AND NOT i.indisprimary AND c.relnamespace = current_schema()::regnamespace`,
    )
  ).map((r) => `${r.t}(${r.cs})${r.partial ? ' partial' : ''}`);
  const foreignKeys = (
    await q<{ t: string; cs: string; ref: string; rcs: string }>(
      `SELECT conrelid::regclass::text AS t, ${cols('conrelid', 'conkey')} AS cs, confrelid::regclass::text AS ref, ${cols('confrelid', 'confkey')} AS rcs
       FROM pg_constraint WHERE contype = 'f' AND ${ns}`,
    )
  ).map((r) => `${r.t}(${r.cs}) → ${r.ref}(${r.rcs})`);
  const triggers = (
    await q<{ n: string }>(
      `SELECT c.relname || '.' || t.tgname AS n FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
       WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace`,
    )
  ).map((r) => r.n);
  return { tables: sorted(tables), columns, primaryKeys, uniques: sorted(uniques), foreignKeys: sorted(foreignKeys), triggers: sorted(triggers) };
}

let scratch: ScratchDb;
let pgdb: PgControlDb;
let sqliteDir: string;
let lite: Shape;
let pgs: Shape;

beforeAll(async () => {
  scratch = await createScratchDb();
  pgdb = await openPgControlDb(scratch.url);
  sqliteDir = mkdtempSync(path.join(os.tmpdir(), 'nia-pg-schema-'));
  const cdb = openControlDb(sqliteDir, { create: true });
  try {
    lite = sqliteShape(cdb);
  } finally {
    await cdb.close();
  }
  pgs = await pgShape(pgdb);
});

afterAll(async () => {
  await pgdb?.close();
  await scratch?.drop();
  if (sqliteDir) rmSync(sqliteDir, { recursive: true, force: true });
});

describe('the control database has the same schema on SQLite and PostgreSQL', () => {
  it('the same tables', () => {
    expect(lite.tables).toEqual(expect.arrayContaining(['usage_log', 'registry_version', 'installation', 'subject_entry']));
    expect(pgs.tables).toEqual(lite.tables);
  });

  it('every table has the same columns, each with the same nullability', () => {
    for (const t of lite.tables) expect({ table: t, columns: pgs.columns[t] }).toEqual({ table: t, columns: lite.columns[t] });
  });

  it('every table has the same primary key', () => {
    expect(pgs.primaryKeys).toEqual(lite.primaryKeys);
  });

  it('the same unique constraints, the partial unique index of pending inbox names included', () => {
    expect(lite.uniques).toContain('inbox_upload(link_id,name) partial');
    expect(pgs.uniques).toEqual(lite.uniques);
  });

  it('the same foreign keys', () => {
    expect(lite.foreignKeys).toContain('change_request(rules_document) → document(id)');
    expect(pgs.foreignKeys).toEqual(lite.foreignKeys);
  });

  it('every protective SQLite trigger exists on PostgreSQL under the same name on the same table; PostgreSQL adds only TRUNCATE guards', () => {
    expect(lite.triggers).toContain('usage_log.usage_log_no_delete');
    const missing = lite.triggers.filter((t) => !pgs.triggers.includes(t));
    expect(missing).toEqual([]);
    const extra = pgs.triggers.filter((t) => !lite.triggers.includes(t));
    expect(sorted(extra)).toEqual(
      sorted(['usage_log', 'link_revision', 'log_archive', 'log_checkpoint', 'rules_review', 'installation', 'finding_response'].map((t) => `${t}.${t}_no_truncate`)),
    );
  });
});

describe('the protective triggers act on PostgreSQL as on SQLite', () => {
  const version = async (): Promise<number> => Number((await pgdb.pool.query<{ v: string }>('SELECT version::text AS v FROM registry_version WHERE id = 1')).rows[0].v);

  it('registry_version moves on every insert, update and delete of a link, agency or vendor row, and on nothing else', async () => {
    const q = (text: string, values: unknown[] = []) => pgdb.pool.query(text, values);
    const v0 = await version();
    const agency = (await q(`INSERT INTO agency (code, name_zh, government, created_at) VALUES ('A1', '甲', true, 'now') RETURNING id`)).rows[0].id as number;
    expect(await version()).toBe(v0 + 1);
    await q('UPDATE agency SET name_en = $1 WHERE id = $2', ['A', agency]);
    expect(await version()).toBe(v0 + 2);
    const link = (await q(`INSERT INTO link (agency_id, status, current_revision, applied_at, status_changed_at, hmac_secret) VALUES ($1, 'pending', 1, 'now', 'now', 's') RETURNING id`, [agency])).rows[0].id as number;
    expect(await version()).toBe(v0 + 3);
    await q("UPDATE link SET status = 'active' WHERE id = $1", [link]);
    expect(await version()).toBe(v0 + 4);
    const vendor = (await q(`INSERT INTO vendor (link_id, name, contact, machines, added_at, added_by) VALUES ($1, 'v', 'c', '[]', 'now', 'op') RETURNING id`, [link])).rows[0].id as number;
    await q("UPDATE vendor SET removed_at = 'now' WHERE id = $1", [vendor]);
    await q('DELETE FROM vendor WHERE id = $1', [vendor]);
    expect(await version()).toBe(v0 + 7);
    await q(`INSERT INTO operator (username, role, password_hash, disabled, failed_logins, password_changed_at, created_at, created_by) VALUES ('op', 'admin', 'x', false, 0, 'now', 'now', 't')`);
    expect(await version()).toBe(v0 + 7);

    // link_revision: immutable once written.
    await q(`INSERT INTO link_revision (link_id, number, content, created_at) VALUES ($1, 1, '{}', 'now')`, [link]);
    await expect(q("UPDATE link_revision SET content = '{\"x\":1}'")).rejects.toThrow('link revisions are immutable; file a change request');
    await expect(q('DELETE FROM link_revision')).rejects.toThrow('link revisions are immutable');
    await expect(q('TRUNCATE link_revision CASCADE')).rejects.toThrow('link revisions are immutable');
  });

  it('the installation mode, checkpoints and archive anchors are refused UPDATE and DELETE, archives stay contiguous, and every guarded table refuses TRUNCATE', async () => {
    const q = (text: string) => pgdb.pool.query(text);
    await q("INSERT INTO installation (id, mode, created_at) VALUES (1, 'production', 'now')");
    await expect(q("UPDATE installation SET mode = 'drill'")).rejects.toThrow('the installation mode is fixed');
    await expect(q('DELETE FROM installation')).rejects.toThrow('the installation mode is fixed');
    await expect(q("INSERT INTO installation (id, mode, created_at) VALUES (2, 'drill', 'now')")).rejects.toThrow(/installation_one_row/);
    await q("INSERT INTO log_checkpoint (seq, hash, at, key_fingerprint, signature) VALUES (1, 'h', 'now', 'f', 's')");
    await expect(q("UPDATE log_checkpoint SET hash = 'x'")).rejects.toThrow('log_checkpoint is append-only');
    await expect(q('DELETE FROM log_checkpoint')).rejects.toThrow('log_checkpoint is append-only');
    await expect(q('TRUNCATE log_checkpoint')).rejects.toThrow('log_checkpoint is append-only');
    const archive = (from: number, to: number) =>
      q(`INSERT INTO log_archive (from_seq, to_seq, prev_hash, last_hash, records, file_name, sha256, manifest, signature, created_at) VALUES (${from}, ${to}, 'p', 'l', ${to - from + 1}, 'f', 's', 'm', 'sig', 'now')`);
    await expect(archive(2, 5)).rejects.toThrow('an archive must start right after the previous one');
    await expect(archive(1, 0)).rejects.toThrow('an archive must start right after the previous one');
    await archive(1, 5);
    await expect(archive(7, 9)).rejects.toThrow('an archive must start right after the previous one');
    await expect(q("UPDATE log_archive SET last_hash = 'x'")).rejects.toThrow('log_archive is append-only');
    await expect(q('DELETE FROM log_archive')).rejects.toThrow('log_archive is append-only');
    await expect(q('TRUNCATE log_archive')).rejects.toThrow('log_archive is append-only');
    await expect(q('TRUNCATE installation')).rejects.toThrow('the installation mode is fixed');
    await expect(q('TRUNCATE rules_review CASCADE')).rejects.toThrow('rules reviews are records');
    await expect(q('TRUNCATE finding_response CASCADE')).rejects.toThrow('finding responses are records');
    await expect(q('TRUNCATE usage_log')).rejects.toThrow('usage_log is append-only');
  });
});
