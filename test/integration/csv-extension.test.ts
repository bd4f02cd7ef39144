import Database from 'better-sqlite3';
import { rmSync } from 'node:fs';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { buildExtract, csvLine, SqliteSource, type ExtractSource } from '../../src/extract';
import { csvExtensionBuilt, csvSelectSql, prepareCsvConnection } from '../../src/extract/csv-sql';
import type { FieldSpec } from '../../src/domain';
import { person, writeEntryExitSource } from '../helpers/source';
import { tmpDir } from '../helpers/world';

/** A whole-dataset scope, compiled: no row filter beyond the change window. */
const ALL = { sql: 'TRUE', pgSql: 'TRUE', params: {} };

/** The SQLite CSV writer (native/nl_csv.c) against the JavaScript one, value by value. */
describe('nl_csv_lines, the CSV writer extracts use', () => {
  let db: Database.Database;
  beforeAll(() => {
    expect(csvExtensionBuilt()).toBe(true); // the build (npm ci / npm run build) compiles it
    db = new Database(':memory:');
    prepareCsvConnection(db, 'ab'.repeat(32));
    db.exec('CREATE TABLE t (record_id INTEGER PRIMARY KEY, v)');
  });
  afterAll(() => db.close());

  const lines = (values: unknown[]): string => {
    db.exec('DELETE FROM t');
    const ins = db.prepare('INSERT INTO t (record_id, v) VALUES (?, ?)');
    values.forEach((v, i) => ins.run(i + 1, v as never));
    const r = db.prepare('SELECT nl_csv_lines(record_id, v, v) AS data FROM t NOT INDEXED').get() as { data: Buffer | null };
    return r.data === null ? '' : r.data.toString('utf8');
  };

  it('R3.2 quotes exactly as RFC 4180 and the JavaScript writer do (comma, quote, CR, LF, Unicode, empty, NULL)', () => {
    const values = ['plain', 'CHEN, WEN', 'O"BRIEN', '"', '""', 'a\r\nb', 'line\nfeed', 'cr\ronly', '', '陳文雄', '歐布萊恩,尚', ' lead and trail ', 'tab\there', 'é'];
    const expected = values.map((v) => csvLine([v, v])).join('');
    expect(lines(values)).toBe(expected);
    expect(lines([null])).toBe(',\r\n');
  });

  it('R3.2 renders numbers as CAST(v AS TEXT) does', () => {
    const values = [42, -7, 1.5, 1e21, 0];
    const casts = values.map((v) => (db.prepare('SELECT CAST(? AS TEXT) AS s').get(v) as { s: string }).s);
    expect(lines(values)).toBe(casts.map((s) => csvLine([s, s])).join(''));
  });

  it('returns nothing (NULL) for no rows, and fails the query when rows come out of record order', () => {
    expect(lines([])).toBe('');
    db.exec('DELETE FROM t');
    db.exec("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')");
    expect(() => db.prepare('SELECT nl_csv_lines(record_id, v) FROM (SELECT * FROM t ORDER BY record_id DESC)').get()).toThrow(/out of order/);
    expect(() => db.prepare("SELECT nl_csv_lines('x', v) FROM t").get()).toThrow(/seq must be an integer/);
    expect(() => db.prepare('SELECT nl_csv_lines(record_id) FROM t').get()).toThrow(/at least one value/);
  });

  it('R3.2 the batch SELECT names only the approved columns', () => {
    const fields: FieldSpec[] = [{ name: 'name_en' }, { name: 'person_id', transform: 'hmac' }];
    for (const range of [{ since: null, until: 'z', scope: ALL }, { since: 'a', until: 'z', scope: ALL }]) {
      const sql = csvSelectSql('entry_exit', fields, range);
      const columns = new Set(sql.match(/"[a-z_]+"/g));
      expect([...columns].sort()).toEqual(['"entry_exit"', '"name_en"', '"person_id"']);
    }
  });
});

/** Hides the CSV capability, so buildExtract takes the generic row-by-row path. */
const generic = (s: SqliteSource): ExtractSource => ({ watermark: (d) => s.watermark(d), batches: (...a) => s.batches(...a), close: () => s.close() });

it('R3.2 an increment written by the worker threads equals the row path, in record order, with records changed later in the window', async () => {
  const dir = tmpDir();
  try {
    // Records 1..6000 written at t1; then some of them changed at t2 (rewritten rows keep their record id).
    writeEntryExitSource(dir, Array.from({ length: 6000 }, (_, i) => person(i + 1)), '2026-01-01T00:00:00.000Z');
    const db = new Database(path.join(dir, 'source.db'));
    db.exec("CREATE INDEX IF NOT EXISTS entry_exit_updated ON entry_exit (updated_at)");
    db.exec("UPDATE entry_exit SET name_en = 'CHANGED, \"Q\" ' || record_id, updated_at = '2026-02-01T00:00:00.000Z' WHERE record_id % 7 = 3 OR record_id > 5990");
    const changed = (db.prepare("SELECT count(*) AS n FROM entry_exit WHERE updated_at > '2026-01-15'").get() as { n: number }).n;
    db.close();
    const { privateKey } = await openpgp.generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [{ name: 'n' }], format: 'object' });
    const fields: FieldSpec[] = [{ name: 'person_id', transform: 'hmac' }, { name: 'name_en' }, { name: 'birth_date', transform: 'year' }];
    const range = { since: '2026-01-15T00:00:00.000Z', until: '2026-03-01T00:00:00.000Z', scope: ALL };
    const run = (source: ExtractSource, name: string) =>
      buildExtract({ source, dataset: 'entry_exit', fields, hmacSecret: 'cd'.repeat(32), range, signingKey: privateKey, encryptionKey: privateKey.toPublic(), file: path.join(dir, name) });
    const threaded = await run(new SqliteSource(path.join(dir, 'source.db')), 'a.pgp');
    const rowwise = await run(generic(new SqliteSource(path.join(dir, 'source.db'))), 'b.pgp');
    expect(changed).toBeGreaterThan(800);
    expect(threaded.rows).toBe(changed);
    expect(rowwise.rows).toBe(changed);
    expect(threaded.plainSha256).toBe(rowwise.plainSha256);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
