import { createHash } from 'node:crypto';
import pg from 'pg';
import type { FieldSpec } from '../domain';
import { IDS_PER_STEP } from '../batch/answer';
import { checkout, pgErrorReason, redactDatabaseUrl } from '../db/pg/connect';
import { UserError } from '../errors';
import { csvLine } from './csv';
import { CopyOut } from './pg-copy-out';
import { windowParams, windowSql } from './csv-sql';
import { type CompiledScope, PG_ADDED_TABLE, PG_SUBJECTS_TABLE } from './scope-sql';
import { type AnswerStream, type BatchAnswerSpec, csvOutcome, type CsvStream, type ExtractRange, type LookupQuery, type Source } from './source';
import { ident } from './sql-ident';

/** `postgres://…` or `postgresql://…`: a source URL that names a PostgreSQL server. */
export const PG_URL = /^postgres(ql)?:\/\//i;

/** The parameter that carries a link's hmac key into a statement (never part of its text). */
const HMAC_KEY_PARAM = 'nl_hmac_key';
/** Custom settings hold a statement's parameters where PostgreSQL takes none (COPY, DECLARE). */
const SETTING_PREFIX = 'nl.';
const NAMED = /@([a-z_][a-z0-9_]*)/gi;

/**
 * A statement written with the named parameters the SQLite statements use (`@since`, `@sc0`, …)
 * made ready for PostgreSQL: each name becomes `$n`, its value the n-th bound value.
 */
export function positional(sql: string, params: Record<string, unknown>): { text: string; values: unknown[] } {
  const index = new Map<string, number>();
  const values: unknown[] = [];
  const text = sql.replace(NAMED, (_, name: string) => {
    if (!(name in params)) throw new Error(`no value for the parameter @${name}`);
    let i = index.get(name);
    if (i === undefined) {
      values.push(params[name]);
      i = values.length;
      index.set(name, i);
    }
    return `$${i}`;
  });
  return { text, values };
}

/**
 * The same for a statement that cannot take bound parameters (COPY): each name reads a
 * transaction-local setting, which setSettings binds first, so no value is ever part of the SQL text.
 * The scalar subquery is evaluated once per statement, not per row.
 */
export function viaSettings(sql: string): string {
  return sql.replace(NAMED, (_, name: string) => `(SELECT current_setting('${SETTING_PREFIX}${name.toLowerCase()}'))`);
}

async function setSettings(client: pg.ClientBase, params: Record<string, string>): Promise<void> {
  const names = Object.keys(params);
  if (!names.length) return;
  // set_config(…, true): local to the transaction, gone at its end (the hmac key included).
  const calls = names.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, true)`).join(', ');
  await client.query(`SELECT ${calls}`, names.flatMap((n) => [SETTING_PREFIX + n.toLowerCase(), params[n]]));
}

/**
 * One field's delivered value in PostgreSQL, written to give the text the embedded source gives
 * (transforms.ts and csv-sql.ts): the value as text, masked, keyed-hashed (pgcrypto's hmac over the
 * UTF-8 bytes, hex), or cut to its year or year-month. An empty result is NULL, so COPY writes the
 * empty field for it as it does for NULL (COPY would quote an empty string).
 */
export function pgFieldSql(f: FieldSpec, pgcrypto: string | null): string {
  const x = `CAST(${ident(f.name)} AS text)`;
  switch (f.transform) {
    case undefined:
      return `NULLIF(${x}, '')`;
    case 'mask':
      // Counted in characters (code points), as mask() counts them.
      return `CASE WHEN ${x} IS NULL OR ${x} = '' THEN NULL WHEN char_length(${x}) <= 2 THEN left(${x}, 1) || '*' ELSE left(${x}, 1) || repeat('*', char_length(${x}) - 2) || right(${x}, 1) END`;
    case 'hmac':
      if (pgcrypto === null) throw new Error('hmac needs pgcrypto');
      return `encode(${pgcrypto}.hmac(convert_to(${x}, 'UTF8'), decode(@${HMAC_KEY_PARAM}, 'hex'), 'sha256'), 'hex')`;
    case 'year':
      return `NULLIF(substr(${x}, 1, 4), '')`;
    case 'year-month':
      return `NULLIF(substr(${x}, 1, 7), '')`;
  }
}

/**
 * The COPY that writes one extract's lines. A NULL column closes every line, so each record COPY
 * writes ends in `,\n`, which CopyOut turns into the CRLF the embedded source ends lines with. With
 * two columns or more, COPY never quotes a lone `\.` either, so every value is quoted exactly when it
 * holds `,`, `"`, CR or LF.
 */
export function copySql(dataset: string, fields: readonly FieldSpec[], range: ExtractRange, pgcrypto: string | null): string {
  const cols = fields.map((f) => pgFieldSql(f, pgcrypto)).join(', ');
  return viaSettings(`COPY (SELECT ${cols}, NULL::text FROM ${ident(dataset)} WHERE ${windowSql(range, 'pg')} ORDER BY record_id) TO STDOUT WITH (FORMAT csv)`);
}

/** Lines are gathered into chunks of about this size before they go to sign + encrypt (fewer, larger calls). */
const CHUNK_BYTES = 1024 * 1024;
/** Chunks read ahead of the encryption, so the server and this process work at the same time. */
const CHUNKS_AHEAD = 4;
/** The largest record an extract takes (a record is held whole in memory). */
const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/**
 * A PostgreSQL server as the extract source: one table per dataset, named after it, in the URL's
 * default schema, with the embedded source's columns (record_id, the catalog's fields as text,
 * updated_at as ISO 8601 text). Extracts stream `COPY (SELECT …) TO STDOUT`; the rows are the
 * same bytes the embedded source gives for the same data.
 */
export class PgSource implements Source {
  /** The URL without its password: all that errors show. */
  readonly shown: string;
  private connecting?: Promise<pg.Client>;
  private pool?: pg.Pool;
  private pgcryptoSchema?: Promise<string | null>;

  constructor(private readonly url: string) {
    this.shown = redactDatabaseUrl(url);
    if (!PG_URL.test(url)) throw new UserError(`not a PostgreSQL URL: ${this.shown} (expected postgres://user@host:port/database)`, 'source.url');
  }

  /** The one connection, opened on first use. */
  client(): Promise<pg.Client> {
    this.connecting ??= (async () => {
      const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 10_000, application_name: 'nia-link source' });
      // A connection lost while idle is reported by the next statement; without a listener it would end the process.
      c.on('error', () => undefined);
      try {
        await c.connect();
      } catch (err) {
        await c.end().catch(() => undefined);
        throw new UserError(`cannot reach the source database at ${this.shown}: ${pgErrorReason(err)}`, 'source.unreachable');
      }
      return c;
    })();
    return this.connecting;
  }

  private async requireTable(c: pg.ClientBase, dataset: string): Promise<void> {
    const r = await c.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [ident(dataset)]);
    if (!r.rows[0].t) throw new UserError(`the source database at ${this.shown} has no ${dataset} table: run \`nia-link seed --dataset ${dataset} --rows N\` or create it`, 'source.missing');
  }

  /** The schema pgcrypto's functions are in (null: the extension is not installed). */
  private pgcrypto(c: pg.ClientBase): Promise<string | null> {
    this.pgcryptoSchema ??= c
      .query<{ s: string }>("SELECT n.nspname AS s FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pgcrypto'")
      .then((r) => (r.rows.length ? c.escapeIdentifier(r.rows[0].s) : null));
    return this.pgcryptoSchema;
  }

  private async pgcryptoFor(c: pg.ClientBase, fields: readonly FieldSpec[]): Promise<string | null> {
    if (!fields.some((f) => f.transform === 'hmac')) return null;
    const schema = await this.pgcrypto(c);
    if (schema === null) throw new UserError(`the source database at ${this.shown} lacks the pgcrypto extension that hmac fields need: run CREATE EXTENSION pgcrypto in it`, 'source.pgcrypto');
    return schema;
  }

  async watermark(dataset: string): Promise<string | null> {
    const c = await this.client();
    await this.requireTable(c, dataset);
    const r = await c.query<{ w: string | null }>(`SELECT max(updated_at)::text AS w FROM ${ident(dataset)}`);
    return r.rows[0].w;
  }

  async *batches(dataset: string, columns: readonly string[], range: ExtractRange, batchSize: number): AsyncIterable<unknown[][]> {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size must be a positive integer, not ${batchSize}`);
    const c = await this.client();
    await this.requireTable(c, dataset);
    await preparePgScopeConnection(c, range.scope);
    const cols = columns.map(ident).join(', ');
    // One transaction and one cursor: a consistent snapshot, read a batch at a time.
    await c.query('BEGIN');
    let open = true;
    try {
      await setSettings(c, windowParams(range));
      await c.query(viaSettings(`DECLARE nl_rows NO SCROLL CURSOR FOR SELECT ${cols} FROM ${ident(dataset)} WHERE ${windowSql(range, 'pg')} ORDER BY record_id`));
      for (;;) {
        const r = await c.query({ text: `FETCH FORWARD ${batchSize} FROM nl_rows`, rowMode: 'array' });
        if (!r.rows.length) break;
        yield r.rows as unknown[][];
      }
      await c.query('COMMIT');
      open = false;
    } finally {
      if (open) await c.query('ROLLBACK').catch(() => undefined);
    }
  }

  csvStream(dataset: string, fields: readonly FieldSpec[], hmacSecret: string, range: ExtractRange): CsvStream {
    return this.copyStream(csvLine(fields.map((f) => f.name)), async (c) => {
      await this.requireTable(c, dataset);
      const pgcrypto = await this.pgcryptoFor(c, fields);
      await preparePgScopeConnection(c, range.scope);
      await c.query('BEGIN');
      await setSettings(c, { ...windowParams(range), ...(pgcrypto ? { [HMAC_KEY_PARAM]: hmacSecret } : {}) });
      return copySql(dataset, fields, range, pgcrypto);
    });
  }

  async lookup(q: LookupQuery): Promise<unknown[][]> {
    const n = q.ids.length;
    const params: Record<string, string> = { ...q.scope.params };
    q.ids.forEach((x, i) => (params[`id${i}`] = x));
    const { text, values } = positional(
      `SELECT ${q.fields.map(ident).join(', ')}, ${ident(q.keyField)} FROM ${ident(q.dataset)} ` +
        `WHERE ${ident(q.keyField)} IN (${Array.from({ length: n }, (_, i) => `@id${i}`).join(', ')}) AND ${q.scope.pgSql} ORDER BY record_id LIMIT ${Math.floor(q.limit)}`,
      params,
    );
    // Prepared once per connection and statement shape (named after its text).
    const query = { name: `nl_lookup_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`, text, values, rowMode: 'array' as const };
    const pool = this.lookupPool();
    try {
      if (!q.scope.subjects) return (await pool.query(query)).rows as unknown[][];
      const { client: c, release } = await checkout(pool);
      try {
        await preparePgScopeConnection(c, q.scope);
        return (await c.query(query)).rows as unknown[][];
      } finally {
        release();
      }
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`the source database at ${this.shown}: ${pgErrorReason(err)}`, 'source.error');
    }
  }

  answerCsv(spec: BatchAnswerSpec): AnswerStream {
    let matched = 0;
    const csv = this.copyStream(csvLine(['request_id', ...spec.fields.map((f) => f.name)]), async (c) => {
      await this.requireTable(c, spec.dataset);
      const pgcrypto = await this.pgcryptoFor(c, spec.fields);
      await preparePgScopeConnection(c, spec.scope);
      await c.query('CREATE TEMP TABLE IF NOT EXISTS nl_batch_ids (nl_seq bigint PRIMARY KEY, nl_id text NOT NULL UNIQUE)');
      await c.query('TRUNCATE pg_temp.nl_batch_ids');
      await c.query('INSERT INTO pg_temp.nl_batch_ids (nl_seq, nl_id) SELECT n - 1, id FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n)', [spec.ids]);
      await c.query('ANALYZE pg_temp.nl_batch_ids');
      const indexed = await c.query(
        'SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] WHERE i.indrelid = to_regclass($1) AND a.attname = $2',
        [ident(spec.dataset), spec.keyField],
      );
      // The embedded source answers an indexed key IDS_PER_STEP identifiers at a time, each step's
      // records in record order; an unindexed one in a single pass, in record order: the same order here.
      const t = ident(spec.dataset);
      const order = indexed.rowCount ? `r.nl_seq / ${IDS_PER_STEP}, ${t}.record_id` : `${t}.record_id`;
      const join = `FROM pg_temp.nl_batch_ids r JOIN ${t} ON ${t}.${ident(spec.keyField)} = r.nl_id WHERE ${spec.scope.pgSql}`;
      // One snapshot for the count and the records.
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await setSettings(c, { ...spec.scope.params, ...(pgcrypto ? { [HMAC_KEY_PARAM]: spec.hmacSecret } : {}) });
      matched = Number((await c.query<{ m: string }>(viaSettings(`SELECT count(DISTINCT r.nl_id) AS m ${join}`))).rows[0].m);
      const cols = spec.fields.map((f) => pgFieldSql(f, pgcrypto)).join(', ');
      return viaSettings(`COPY (SELECT NULLIF(r.nl_id, ''), ${cols}, NULL::text ${join} ORDER BY ${order}) TO STDOUT WITH (FORMAT csv)`);
    });
    const done = csv.done.then(({ rows, sha256 }) => ({ rows, matched, sha256 }));
    done.catch(() => undefined);
    return { stream: csv.stream, done };
  }

  /**
   * The header, then the CSV a COPY writes, lines ended CRLF, in chunks of about CHUNK_BYTES.
   * `start` runs on the source's connection, opens the transaction the COPY runs in and returns the
   * COPY statement; the transaction ends with the stream.
   */
  private copyStream(header: string, start: (c: pg.Client) => Promise<string>): CsvStream {
    const { done, emit, finish, fail } = csvOutcome();
    let client: pg.Client | undefined;
    let copy: CopyOut | undefined;
    const abort = async () => {
      copy?.cancel();
      // A COPY left part read holds its connection: drop the connection (the server rolls the
      // transaction back); the next use of this source opens another.
      if (client && this.connecting) {
        this.connecting = undefined;
        await client.end().catch(() => undefined);
      }
    };
    const stream = new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          try {
            if (!copy) {
              client = await this.client();
              copy = new CopyOut(await start(client), CHUNK_BYTES, CHUNKS_AHEAD, MAX_RECORD_BYTES);
              // The driver runs the COPY; its outcome is what copy.read() reports.
              client.query(copy);
              return emit(controller, new TextEncoder().encode(header));
            }
            const lines = await copy.read();
            if (lines) return emit(controller, lines);
            await client!.query('COMMIT');
            finish(copy.rows);
            controller.close();
          } catch (err) {
            fail(err as Error);
            await abort();
            controller.error(err);
          }
        },
        cancel: async () => {
          fail(new Error('cancelled'));
          await abort();
        },
      },
      { highWaterMark: 1 },
    );
    return { stream, done };
  }

  /** Connections for look-ups, which may run several at once (the online query). */
  private lookupPool(): pg.Pool {
    if (!this.pool) {
      this.pool = new pg.Pool({ connectionString: this.url, max: 4, connectionTimeoutMillis: 10_000, application_name: 'nia-link source' });
      // An idle connection that fails (a server restart) is replaced by the pool itself.
      this.pool.on('error', () => undefined);
    }
    return this.pool;
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end().catch(() => undefined);
    const c = this.connecting;
    this.connecting = undefined;
    if (!c) return;
    try {
      await (await c).end();
    } catch {
      // It never connected: the error was reported where it was used.
    }
  }
}

/**
 * Give a PostgreSQL connection what `scope` reads besides its parameters: a subject list's
 * identifiers in temporary tables of the session (compileScope's pgSql names them). A second call
 * replaces the lists.
 */
export async function preparePgScopeConnection(c: pg.ClientBase, scope: CompiledScope): Promise<void> {
  if (!scope.subjects) return;
  const { ids, added } = scope.subjects;
  for (const [table, values] of [
    [PG_SUBJECTS_TABLE, ids],
    [PG_ADDED_TABLE, added],
  ] as const) {
    const name = table.slice('pg_temp.'.length);
    await c.query(`CREATE TEMP TABLE IF NOT EXISTS ${ident(name)} (id text PRIMARY KEY)`);
    await c.query(`TRUNCATE ${table}`);
    await c.query(`INSERT INTO ${table} (id) SELECT DISTINCT unnest($1::text[])`, [values]);
    await c.query(`ANALYZE ${table}`);
  }
}
