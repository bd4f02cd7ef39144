import Database from 'better-sqlite3';
import { performance } from 'node:perf_hooks';
import type { DatasetCatalog } from '../domain';
import { BUSY_TIMEOUT_MS } from '../db/busy';
import { ident } from '../extract/sql-ident';
import { createGenerator } from './synthetic';

export interface SeedOptions {
  file: string;
  dataset: string;
  rows: number;
  seed: number;
  catalog: DatasetCatalog;
  /** Every seeded row's updated_at; also anchors the synthetic dates on its Taipei day. */
  now: Date;
  /** Called after each committed batch. */
  onProgress?: (done: number, total: number) => void;
}

/** Rows per transaction: big enough to amortise commits, small enough for steady progress reports. */
const BATCH_ROWS = 20_000;
/** Rows per INSERT statement: one native call binds many rows, which is most of the speed. */
const ROWS_PER_INSERT = 50;

const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;

/** The generator of a seed's rows, once the options are checked (both sources seed through it). */
export function seedGenerator(opts: Omit<SeedOptions, 'file'>): ReturnType<typeof createGenerator> {
  const { dataset, rows, catalog } = opts;
  if (catalog.name !== dataset) throw new Error(`catalog ${catalog.name} given for dataset ${dataset}`);
  if (!Number.isInteger(rows) || rows < 0) throw new RangeError(`rows must be a non-negative integer, not ${rows}`);
  const gen = createGenerator(catalog, { seed: opts.seed, rows, now: opts.now });
  for (const reserved of ['record_id', 'updated_at']) {
    if (gen.columns.includes(reserved)) throw new Error(`dataset ${dataset}: a catalog field may not be named ${reserved}`);
  }
  return gen;
}

/**
 * Fill `<dataset>` in the source database with `rows` synthetic rows, replacing what it held.
 *
 * The rows go into `<dataset>__seeding` first; one transaction then drops the old table and renames
 * the new one, so a reader sees the old rows or the new ones, never part of them, and a crash part
 * way leaves the old table as it was (the leftover is dropped by the next seed).
 */
export function seedSource(opts: SeedOptions): { rows: number; ms: number } {
  const started = performance.now();
  const { dataset, rows, catalog } = opts;
  const gen = seedGenerator(opts);

  const table = ident(dataset);
  const building = ident(`${dataset}__seeding`);
  const width = gen.columns.length + 1;
  const columnList = ['record_id', ...gen.columns, 'updated_at'].map(ident).join(', ');
  // The one value all rows share goes into the SQL text rather than being bound on every row.
  const tuple = `(${Array(width).fill('?').join(', ')}, ${literal(opts.now.toISOString())})`;

  const db = new Database(opts.file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // A process crash while seeding loses only the table being built, which is thrown away anyway;
    // only a power cut could hurt more, an accepted risk for data that can be seeded again.
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -65536');
    db.pragma('temp_store = MEMORY');

    db.exec(`DROP TABLE IF EXISTS ${building}`);
    db.exec(`CREATE TABLE ${building} (record_id INTEGER PRIMARY KEY, ${gen.columns.map((c) => `${ident(c)} TEXT`).join(', ')}, updated_at TEXT NOT NULL)`);
    const insertMany = db.prepare(`INSERT INTO ${building} (${columnList}) VALUES ${Array(ROWS_PER_INSERT).fill(tuple).join(', ')}`);
    const insertOne = db.prepare(`INSERT INTO ${building} (${columnList}) VALUES ${tuple}`);
    const many: unknown[] = new Array(width * ROWS_PER_INSERT);
    const one: unknown[] = new Array(width);

    const batch = db.transaction((from: number, to: number) => {
      let i = from;
      for (; i + ROWS_PER_INSERT <= to; i += ROWS_PER_INSERT) {
        for (let j = 0, o = 0; j < ROWS_PER_INSERT; j++, o += width) {
          many[o] = i + j + 1;
          gen.fill(i + j, many, o + 1);
        }
        insertMany.run(many);
      }
      for (; i < to; i++) {
        one[0] = i + 1;
        gen.fill(i, one, 1);
        insertOne.run(one);
      }
    });
    for (let from = 0; from < rows; from += BATCH_ROWS) {
      const to = Math.min(rows, from + BATCH_ROWS);
      batch(from, to);
      opts.onProgress?.(to, rows);
    }

    // The swap is the commit that must survive a power cut, and it makes the bulk rows before it durable too.
    db.pragma('synchronous = FULL');
    db.transaction(() => {
      db.exec(`DROP TABLE IF EXISTS ${table}`);
      db.exec(`ALTER TABLE ${building} RENAME TO ${table}`);
      // Built here rather than on the new table because index names are global: the old table's index holds the name until it is dropped.
      db.exec(`CREATE INDEX ${ident(`${dataset}_updated_at`)} ON ${table} (updated_at)`);
      // Online queries look records up by the catalog's lookup identifier.
      db.exec(`CREATE INDEX ${ident(`${dataset}_${catalog.lookup}`)} ON ${table} (${ident(catalog.lookup)})`);
    }).immediate();
    // Leaves a small WAL behind instead of one the size of the dataset. A TRUNCATE checkpoint waits
    // for readers, so it gets one try: an extract reading meanwhile must not hold the seed up.
    db.pragma('busy_timeout = 0');
    db.pragma('wal_checkpoint(TRUNCATE)');
  } catch (err) {
    try {
      db.exec(`DROP TABLE IF EXISTS ${building}`);
    } catch {
      // The original error is the one worth reporting.
    }
    throw err;
  } finally {
    db.close();
  }
  return { rows, ms: performance.now() - started };
}
