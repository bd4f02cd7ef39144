import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { FieldSpec } from '../domain';
import { UserError } from '../errors';
import { PROJECT_ROOT } from '../paths';
import type { CsvThreadMessage } from './csv-thread';

/** Changed-since window of an extract: rows with since < updated_at ≤ until (since null = from the start). */
export interface ExtractRange {
  since: string | null;
  until: string;
}

/**
 * Where extract rows come from. Implementations read only the columns asked for: the projection to
 * approved fields happens in the query, so no other column is ever read (R3.2).
 */
export interface ExtractSource {
  /** The newest change time in the dataset, or null when it has no rows: the upper bound of an extract. */
  watermark(dataset: string): Promise<string | null>;
  /** Rows as arrays in `columns` order, in batches, streamed. */
  batches(dataset: string, columns: readonly string[], range: ExtractRange, batchSize: number): AsyncIterable<unknown[][]>;
  close(): void;
}

const IDENT = /^[a-z][a-z0-9_]{0,62}$/;
/** A dataset or field name as a quoted SQL identifier; names come from the catalogs, and anything else is refused. */
export const ident = (name: string): string => {
  if (!IDENT.test(name)) throw new Error(`not a safe identifier: ${name}`);
  return `"${name}"`;
};

export function sourceDbPath(dataDir: string): string {
  return path.join(dataDir, 'source.db');
}

/** The embedded source: the SQLite file `nia-link seed` fills, one table per dataset. */
export class SqliteSource implements CsvCapableSource {
  private readonly db: Database.Database;

  constructor(private readonly file: string) {
    if (!existsSync(file)) throw new UserError(`no source data at ${file}: fill it with \`nia-link seed --rows N\``, 'source.missing');
    this.db = new Database(file, { readonly: true, fileMustExist: true });
    this.db.pragma('busy_timeout = 10000');
  }

  private requireTable(dataset: string): void {
    const t = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(dataset);
    if (!t) throw new UserError(`the source has no ${dataset} data: run \`nia-link seed --dataset ${dataset} --rows N\``, 'source.missing');
  }

  async watermark(dataset: string): Promise<string | null> {
    this.requireTable(dataset);
    const r = this.db.prepare(`SELECT max(updated_at) AS w FROM ${ident(dataset)}`).get() as { w: string | null };
    return r.w;
  }

  async *batches(dataset: string, columns: readonly string[], range: ExtractRange, batchSize: number): AsyncIterable<unknown[][]> {
    this.requireTable(dataset);
    const cols = columns.map(ident).join(', ');
    const where = range.since === null ? 'updated_at <= @until' : 'updated_at > @since AND updated_at <= @until';
    const stmt = this.db.prepare(`SELECT ${cols} FROM ${ident(dataset)} WHERE ${where} ORDER BY record_id`).raw(true);
    // One read transaction for the whole extract: a consistent snapshot even while the source is written.
    this.db.exec('BEGIN');
    try {
      let batch: unknown[][] = [];
      for (const row of stmt.iterate(range.since === null ? { until: range.until } : { since: range.since, until: range.until }) as IterableIterator<unknown[]>) {
        batch.push(row);
        if (batch.length >= batchSize) {
          yield batch;
          batch = [];
        }
      }
      if (batch.length) yield batch;
    } finally {
      this.db.exec('COMMIT');
    }
  }

  csvStream(dataset: string, fields: readonly FieldSpec[], hmacSecret: string, range: ExtractRange): CsvStream {
    this.requireTable(dataset);
    return sqliteCsvStream(this.file, dataset, fields, hmacSecret, range);
  }

  close(): void {
    this.db.close();
  }
}

/** A source that can produce the CSV itself, off the main thread. */
export interface CsvCapableSource extends ExtractSource {
  csvStream(dataset: string, fields: readonly FieldSpec[], hmacSecret: string, range: ExtractRange): CsvStream;
}
export interface CsvStream {
  stream: ReadableStream<Uint8Array>;
  /** Settles when the stream has ended: rows written and the SHA-256 of the whole CSV. */
  done: Promise<{ rows: number; sha256: string }>;
}

export function canWriteCsv(s: ExtractSource): s is CsvCapableSource {
  return typeof (s as Partial<CsvCapableSource>).csvStream === 'function';
}

const CSV_THREAD = path.join(PROJECT_ROOT, 'dist', 'src', 'extract', 'csv-thread.js');
const THREAD_BATCH_ROWS = 4000;

/** Read + CSV in a worker thread, one batch per pull, so the caller's sign+encrypt runs in parallel. */
export function sqliteCsvStream(file: string, dataset: string, fields: readonly FieldSpec[], hmacSecret: string, range: ExtractRange): CsvStream {
  const worker = new Worker(CSV_THREAD, { workerData: { file, dataset, fields, hmacSecret, range, batchRows: THREAD_BATCH_ROWS } });
  let resolveDone!: (v: { rows: number; sha256: string }) => void;
  let rejectDone!: (e: Error) => void;
  const done = new Promise<{ rows: number; sha256: string }>((res, rej) => ((resolveDone = res), (rejectDone = rej)));
  done.catch(() => undefined);
  let waiting: ((m: CsvThreadMessage | Error) => void) | null = null;
  const next = () =>
    new Promise<CsvThreadMessage | Error>((resolve) => {
      waiting = resolve;
      worker.postMessage({ type: 'pull' });
    });
  worker.on('message', (m: CsvThreadMessage) => waiting?.(m));
  worker.on('error', (e) => waiting?.(e));
  worker.on('exit', (code) => code !== 0 && waiting?.(new Error(`CSV thread exited with code ${code}`)));
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const m = await next();
        waiting = null;
        if (m instanceof Error || m.type === 'error') {
          const err = m instanceof Error ? m : new Error(m.message);
          rejectDone(err);
          void worker.terminate();
          return controller.error(err);
        }
        if (m.type === 'end') {
          resolveDone({ rows: m.rows, sha256: m.sha256 });
          return controller.close();
        }
        controller.enqueue(m.data);
      },
      async cancel() {
        rejectDone(new Error('cancelled'));
        await worker.terminate();
      },
    },
    { highWaterMark: 2 },
  );
  return { stream, done };
}
