import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { FieldSpec } from '../domain';
import { BUSY_TIMEOUT_MS } from '../db/busy';
import { UserError } from '../errors';
import { threadScript } from '../paths';
import { createHash } from 'node:crypto';
import { ident } from './sql-ident';
import { csvLine } from './csv';
import { csvExtensionBuilt, spanParams, spanSql, windowParams, windowSql } from './csv-sql';
import { type CompiledScope, prepareScopeConnection } from './scope-sql';
import type { CsvThreadMessage, CsvThreadRequest } from './csv-thread';
import { answerStream } from '../batch/answer';

/**
 * What an extract reads: rows with since < updated_at ≤ until (since null = from the start) that are
 * inside the revision's scope (R3.4), compiled once by compileScope.
 */
export interface ExtractRange {
  since: string | null;
  until: string;
  scope: CompiledScope;
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
  close(): void | Promise<void>;
}

/**
 * An online query's read (R2.1): the records whose `keyField` is one of `ids`, inside the scope, in
 * record order, at most `limit`. Each row holds the raw values of `fields`, then the key's value
 * (to count the ids found; never returned unless approved).
 */
export interface LookupQuery {
  dataset: string;
  fields: readonly string[];
  keyField: string;
  ids: readonly string[];
  scope: CompiledScope;
  limit: number;
}

/** A batch request's answer (R2.2): for each identifier, in the order sent, its records inside the scope. */
export interface BatchAnswerSpec {
  dataset: string;
  /** The match key the request named: the column its identifiers are looked up in. */
  keyField: string;
  fields: readonly FieldSpec[];
  hmacSecret: string;
  scope: CompiledScope;
  ids: readonly string[];
}

export interface AnswerStream {
  stream: ReadableStream<Uint8Array>;
  /** Settles when the stream has ended: rows, identifiers with at least one record, SHA-256 of the CSV. */
  done: Promise<{ rows: number; matched: number; sha256: string }>;
}

/** Everything the services read from the source: extracts, the online query's look-ups, batch answers. */
export interface Source extends CsvCapableSource {
  lookup(q: LookupQuery): Promise<unknown[][]>;
  /** The CSV of a batch answer: header `request_id` + the field names, then the records. */
  answerCsv(spec: BatchAnswerSpec): AnswerStream;
}

export function sourceDbPath(dataDir: string): string {
  return path.join(dataDir, 'source.db');
}

/** A read-only connection to the embedded source, waiting (as every connection does) for a writer. */
export function openSourceDb(file: string): Database.Database {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  return db;
}

/** The embedded source: the SQLite file `nia-link seed` fills, one table per dataset. */
export class SqliteSource implements Source {
  private readonly db: Database.Database;
  private readonly lookups = new Map<string, Database.Statement>();

  constructor(private readonly file: string) {
    if (!existsSync(file)) throw new UserError(`no source data at ${file}: fill it with \`nia-link seed --rows N\``, 'source.missing');
    this.db = openSourceDb(file);
    // Look-ups touch scattered pages: reading them through a memory map halves a look-up (43 → 20 µs
    // on 1 M records). Read-only; a replaced source file keeps its old mapping until reopened.
    this.db.pragma('mmap_size = 268435456');
  }

  async lookup(q: LookupQuery): Promise<unknown[][]> {
    const n = q.ids.length;
    const key = `${q.dataset}|${q.fields.join(',')}|${q.keyField}|${n}|${q.limit}|${q.scope.sql}`;
    prepareScopeConnection(this.db, q.scope);
    let stmt = this.lookups.get(key);
    if (!stmt) {
      // Only the asked columns are read (R3.2); every value is a bound parameter.
      stmt = this.db
        .prepare(
          `SELECT ${q.fields.map(ident).join(', ')}, ${ident(q.keyField)} FROM ${ident(q.dataset)} ` +
            `WHERE ${ident(q.keyField)} IN (${Array.from({ length: n }, (_, i) => `@id${i}`).join(', ')}) AND ${q.scope.sql} ORDER BY record_id LIMIT ${Math.floor(q.limit)}`,
        )
        .raw(true);
      if (this.lookups.size > 500) this.lookups.clear();
      this.lookups.set(key, stmt);
    }
    const params: Record<string, string> = { ...q.scope.params };
    q.ids.forEach((x, i) => (params[`id${i}`] = x));
    return stmt.all(params) as unknown[][];
  }

  answerCsv(spec: BatchAnswerSpec): AnswerStream {
    return answerStream({ ...spec, sourceFile: this.file });
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
    prepareScopeConnection(this.db, range.scope);
    const stmt = this.db.prepare(`SELECT ${cols} FROM ${ident(dataset)} WHERE ${windowSql(range)} ORDER BY record_id`).raw(true);
    // One read transaction for the whole extract: a consistent snapshot even while the source is written.
    this.db.exec('BEGIN');
    try {
      let batch: unknown[][] = [];
      for (const row of stmt.iterate(windowParams(range)) as IterableIterator<unknown[]>) {
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

  csvStream(dataset: string, fields: readonly FieldSpec[], hmacSecret: string, range: ExtractRange): CsvStream | null {
    this.requireTable(dataset);
    if (!csvExtensionBuilt()) return null;
    return sqliteCsvStream(this.file, dataset, fields, hmacSecret, range);
  }

  close(): void {
    this.db.close();
  }
}

/** A source that can produce the CSV itself, off the main thread (null: it cannot now; read rows). */
export interface CsvCapableSource extends ExtractSource {
  csvStream(dataset: string, fields: readonly FieldSpec[], hmacSecret: string, range: ExtractRange): CsvStream | null;
}
export interface CsvStream {
  stream: ReadableStream<Uint8Array>;
  /** Settles when the stream has ended: rows written and the SHA-256 of the whole CSV. */
  done: Promise<{ rows: number; sha256: string }>;
}

/**
 * What a CSV stream's producer keeps beside the stream: the SHA-256 of every byte it emits, and the
 * promise of its outcome (`finish` with the row count, or `fail`), which nobody need wait on.
 */
export function csvOutcome() {
  const hash = createHash('sha256');
  let resolve!: (v: { rows: number; sha256: string }) => void;
  let reject!: (e: Error) => void;
  const done = new Promise<{ rows: number; sha256: string }>((res, rej) => ((resolve = res), (reject = rej)));
  done.catch(() => undefined);
  return {
    done,
    emit(controller: ReadableStreamDefaultController<Uint8Array>, data: Uint8Array): void {
      hash.update(data);
      controller.enqueue(data);
    },
    finish: (rows: number) => resolve({ rows, sha256: hash.digest('hex') }),
    fail: (err: Error) => reject(err),
  };
}

export function canWriteCsv(s: ExtractSource): s is CsvCapableSource {
  return typeof (s as Partial<CsvCapableSource>).csvStream === 'function';
}

const CSV_THREAD = threadScript('extract/csv-thread');
/** Records per batch: big enough to amortise a thread round trip, small enough to keep memory flat. */
const BATCH_ROWS = 4000;
/** How many times more records a batch reads under a scope (the scope keeps only some of them). */
const SCOPED_READ_FACTOR = 16;
/** Threads reading in parallel, and batches requested ahead of the one being encrypted. */
const THREADS = 2;
const AHEAD = 2 * THREADS;

/**
 * Read + CSV in worker threads over consecutive record-id ranges, requested ahead and consumed in
 * order, so the caller's sign + encrypt runs while the next batches are read. The SHA-256 is of the
 * whole CSV, header included.
 */
export function sqliteCsvStream(file: string, dataset: string, fields: readonly FieldSpec[], hmacSecret: string, range: ExtractRange): CsvStream {
  const probe = openSourceDb(file);
  let span: { n: number; lo: number | null; hi: number | null };
  try {
    prepareScopeConnection(probe, range.scope);
    span = probe.prepare(spanSql(dataset, range)).get(spanParams(range)) as typeof span;
  } finally {
    probe.close();
  }
  // Id ranges sized so a batch holds about BATCH_ROWS records of the window, gaps and all.
  const lo = span.lo ?? 1;
  const hi = span.hi ?? 0;
  // A full extract cuts batches by record ids, not by the records it keeps: under a scope, which keeps
  // a share of them, each batch reads more, so it still carries enough lines to amortise its round
  // trip and its encryption call. (An increment's span already counts only the records it keeps.)
  const rowsRead = range.since === null && range.scope.sql !== 'TRUE' ? BATCH_ROWS * SCOPED_READ_FACTOR : BATCH_ROWS;
  const step = span.n ? Math.max(1, Math.ceil((rowsRead * (hi - lo + 1)) / span.n)) : 1;
  const batches = span.n ? Math.ceil((hi - lo + 1) / step) : 0;
  const threads = Array.from({ length: Math.min(THREADS, Math.max(1, batches)) }, () => new Worker(CSV_THREAD, { workerData: { file, dataset, fields, hmacSecret, range } }));
  const pending = new Map<number, { resolve: (m: CsvThreadMessage) => void; reject: (e: Error) => void }>();
  const results = new Map<number, Promise<CsvThreadMessage>>();
  const fail = (e: Error) => {
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  for (const t of threads) {
    t.on('message', (m: CsvThreadMessage) => {
      pending.get(m.index)?.resolve(m);
      pending.delete(m.index);
    });
    t.on('error', fail);
    t.on('exit', (code) => code !== 0 && fail(new Error(`CSV thread exited with code ${code}`)));
  }
  let requested = 0;
  const request = () => {
    while (requested < batches && requested < next + AHEAD) {
      const index = requested++;
      const p = new Promise<CsvThreadMessage>((resolve, reject) => pending.set(index, { resolve, reject }));
      p.catch(() => undefined);
      results.set(index, p);
      threads[index % threads.length].postMessage({ index, lo: lo + index * step, hi: lo + (index + 1) * step } satisfies CsvThreadRequest);
    }
  };
  const stop = () => Promise.all(threads.map((t) => t.terminate())).then(() => undefined);

  const out = csvOutcome();
  let rows = 0;
  let next = -1; // -1: the header
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          if (next === -1) {
            next = 0;
            request();
            return out.emit(controller, new TextEncoder().encode(csvLine(fields.map((f) => f.name))));
          }
          // Skip ranges that fell into gaps of record ids; stop after the last one.
          for (;;) {
            if (next >= batches) {
              await stop();
              out.finish(rows);
              return controller.close();
            }
            const m = await results.get(next)!;
            results.delete(next);
            next++;
            request();
            if (m.type === 'error') throw new Error(m.message);
            rows += m.rows;
            if (m.data.length) return out.emit(controller, m.data);
          }
        } catch (err) {
          out.fail(err as Error);
          await stop();
          controller.error(err);
        }
      },
      async cancel() {
        out.fail(new Error('cancelled'));
        await stop();
      },
    },
    { highWaterMark: 1 },
  );
  return { stream, done: out.done };
}
