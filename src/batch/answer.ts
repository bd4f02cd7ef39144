import type Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import type { FieldSpec } from '../domain';
import { csvLine } from '../extract/csv';
import { csvExtensionBuilt, fieldSql, prepareCsvConnection } from '../extract/csv-sql';
import { type CompiledScope, prepareScopeConnection } from '../extract/scope-sql';
import { type AnswerStream, type BatchAnswerSpec, openSourceDb } from '../extract/source';
import { ident } from '../extract/sql-ident';
import { projection } from '../extract/transforms';

export interface AnswerSpec extends BatchAnswerSpec {
  sourceFile: string;
}

/** Identifiers looked up per statement: enough to amortise a step, few enough to keep the event loop turning. */
export const IDS_PER_STEP = 4000;

/**
 * The result CSV of a batch request from the embedded source: header `request_id` + the approved field names, then for every
 * identifier the approved fields (transforms applied) of each of its records inside the scope. The
 * identifiers go into a temporary table of the source connection, joined on the key column; only
 * approved columns are selected (R3.2), the scope is the one compiled filter (R3.4).
 */
export function answerStream(spec: AnswerSpec): AnswerStream {
  const db = openSourceDb(spec.sourceFile);
  const native = csvExtensionBuilt();
  let closed = false;
  const close = () => {
    if (!closed) db.close();
    closed = true;
  };
  let step: ReturnType<typeof prepare>;
  let steps: number;
  try {
    prepareScopeConnection(db, spec.scope);
    if (native) prepareCsvConnection(db, spec.hmacSecret);
    loadIds(db, spec.ids);
    // An indexed key: each step looks its identifiers up in the index. Otherwise one pass over the
    // table probes the identifiers' own index, once for all of them.
    steps = keyIndexed(db, spec.dataset, spec.keyField) ? Math.ceil(spec.ids.length / IDS_PER_STEP) : 1;
    step = prepare(db, spec, native, steps === 1 ? Number.MAX_SAFE_INTEGER : IDS_PER_STEP);
  } catch (err) {
    close();
    throw err;
  }
  const hash = createHash('sha256');
  let rows = 0;
  let matched = 0;
  let next = -1; // -1: the header
  let resolveDone!: (v: { rows: number; matched: number; sha256: string }) => void;
  let rejectDone!: (e: Error) => void;
  const done = new Promise<{ rows: number; matched: number; sha256: string }>((res, rej) => ((resolveDone = res), (rejectDone = rej)));
  done.catch(() => undefined);
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        try {
          if (next === -1) {
            next = 0;
            const header = Buffer.from(csvLine(['request_id', ...spec.fields.map((f) => f.name)]), 'utf8');
            hash.update(header);
            return controller.enqueue(header);
          }
          // Steps whose identifiers matched nothing give no bytes: go on to the next one.
          while (next < steps) {
            const r = step(next++);
            rows += r.rows;
            matched += r.matched;
            if (r.data.length) {
              hash.update(r.data);
              return controller.enqueue(r.data);
            }
          }
          close();
          resolveDone({ rows, matched, sha256: hash.digest('hex') });
          controller.close();
        } catch (err) {
          close();
          rejectDone(err as Error);
          controller.error(err);
        }
      },
      cancel() {
        close();
        rejectDone(new Error('cancelled'));
      },
    },
    { highWaterMark: 2 },
  );
  return { stream, done };
}

/** The request's identifiers, numbered in the order sent, in a temporary table of this connection. */
function loadIds(db: Database.Database, ids: readonly string[]): void {
  db.transaction(() => {
    db.exec('DROP TABLE IF EXISTS temp.nl_batch_ids');
    db.exec('CREATE TABLE temp.nl_batch_ids (nl_seq INTEGER PRIMARY KEY, nl_id TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO temp.nl_batch_ids (nl_seq, nl_id) VALUES (?, ?)');
    ids.forEach((id, i) => insert.run(i, id));
    db.exec('CREATE UNIQUE INDEX temp.nl_batch_ids_id ON nl_batch_ids (nl_id)');
  })();
}

/** Has the dataset an index whose first column is `column`? */
function keyIndexed(db: Database.Database, dataset: string, column: string): boolean {
  const indexes = db.prepare(`SELECT name FROM pragma_index_list(?)`).pluck().all(dataset) as string[];
  return indexes.some((name) => (db.prepare(`SELECT name FROM pragma_index_info(?) WHERE seqno = 0`).pluck().get(name) as string | undefined) === column);
}

/** One step: the records of identifiers number [i·n, (i+1)·n), as CSV bytes. */
function prepare(db: Database.Database, spec: AnswerSpec, native: boolean, n: number): (i: number) => { rows: number; matched: number; data: Uint8Array } {
  const t = ident(spec.dataset);
  const join = `FROM temp.nl_batch_ids r JOIN ${t} ON ${t}.${ident(spec.keyField)} = r.nl_id WHERE r.nl_seq >= @lo AND r.nl_seq < @hi AND ${spec.scope.sql}`;
  const params = (i: number) => ({ ...spec.scope.params, lo: i * n, hi: Math.min(Number.MAX_SAFE_INTEGER, (i + 1) * n) });
  if (native) {
    // nl_csv_lines needs ascending sequence numbers: the records of a step in record order.
    const cols = spec.fields.map((f, i) => `${fieldSql(f)} AS c${i}`).join(', ');
    const args = spec.fields.map((_, i) => `c${i}`).join(', ');
    const stmt = db.prepare(
      `SELECT count(*) AS n, count(DISTINCT req) AS m, nl_csv_lines(rid, req, ${args}) AS data FROM (SELECT ${t}.record_id AS rid, r.nl_id AS req, ${cols} ${join} ORDER BY ${t}.record_id)`,
    );
    return (i) => {
      const r = stmt.get(params(i)) as { n: number; m: number; data: Buffer | null };
      return { rows: r.n, matched: r.m, data: r.data ?? new Uint8Array(0) };
    };
  }
  const fns = projection(spec.fields, spec.hmacSecret);
  const stmt = db.prepare(`SELECT r.nl_id, ${spec.fields.map((f) => `${t}.${ident(f.name)}`).join(', ')} ${join} ORDER BY r.nl_seq, ${t}.record_id`).raw(true);
  return (i) => {
    let text = '';
    let rows = 0;
    const seen = new Set<unknown>();
    const values: string[] = new Array(fns.length + 1);
    for (const row of stmt.iterate(params(i)) as IterableIterator<unknown[]>) {
      values[0] = String(row[0]);
      for (let k = 0; k < fns.length; k++) values[k + 1] = fns[k](row[k + 1]);
      text += csvLine(values);
      rows++;
      seen.add(row[0]);
    }
    return { rows, matched: seen.size, data: Buffer.from(text, 'utf8') };
  };
}
