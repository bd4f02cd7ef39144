import type Database from 'better-sqlite3';
import { addDays, type DatasetCatalog, dayRange, type Scope } from '../domain';
import { ident } from './sql-ident';

/**
 * A scope (R3.4) compiled for the embedded source: one SQL predicate whose structure depends only on
 * the scope's shape (fields, operators, list lengths) and whose values are all bound parameters, so
 * no value of a scope is ever part of the SQL text. Every reader of the source — extracts (both
 * writers, full and incremental), the online query and the batch query — filters with this, and
 * nothing else builds a row filter.
 */
export interface CompiledScope {
  /** `TRUE` for a whole-dataset scope; otherwise conditions joined by AND, each column through ident(). */
  sql: string;
  /** The same predicate rendered for a PostgreSQL source (same parameters, its own temporary tables). */
  pgSql: string;
  /** Named parameters (`@sc0`, `@sc1`, …) for the predicate. */
  params: Record<string, string>;
  /**
   * A `subjects` scope's list: the predicate reads it from a temporary table of the connection, which
   * prepareScopeConnection fills (a connection that was not prepared fails the statement: nothing is
   * read without the list). `added` (persons put on the list since the previous delivery) with its
   * predicate lets an increment take their older records too.
   */
  subjects?: { ids: string[]; added: string[]; addedSql: string; pgAddedSql: string };
}

/** A subject list as a reader uses it: the identifier column it names, its identifiers, and who was added since the previous delivery. */
export type { SubjectFilter } from '../db/repositories/batch';
import type { SubjectFilter } from '../db/repositories/batch';

const SUBJECTS_TABLE = 'temp.nl_subjects';
const ADDED_TABLE = 'temp.nl_subjects_added';
/** The same lists on a PostgreSQL connection (its session's temporary schema); preparePgScopeConnection fills them. */
export const PG_SUBJECTS_TABLE = 'pg_temp.nl_subjects';
export const PG_ADDED_TABLE = 'pg_temp.nl_subjects_added';

/** The parameter names the compiled scope uses: a statement's own parameters must not start with this. */
export const SCOPE_PARAM_PREFIX = 'sc';

/**
 * Compile `scope` for the day `asOf` (YYYY-MM-DD, Taipei: the day of the delivery or answer, which
 * `within-days` counts back from). The scope must have passed checkScope against `catalog`.
 *
 * Dates: `from D` admits values ≥ D and `to D` values < D + 1 day, so a datetime counts by its Taipei
 * calendar day. The embedded source stores dates as YYYY-MM-DD and datetimes as ISO 8601 with the
 * Taipei offset (+08:00), which compare as text in time order. NULL matches no condition, `not-in`
 * included: a record whose value is unknown is not known to be inside the scope.
 */
export function compileScope(scope: Scope, catalog: DatasetCatalog, asOf: string, subjects?: SubjectFilter): CompiledScope {
  if (scope.all) return { sql: 'TRUE', pgSql: 'TRUE', params: {} };
  const params: Record<string, string> = {};
  let n = 0;
  const bind = (v: string) => {
    const name = `${SCOPE_PARAM_PREFIX}${n++}`;
    params[name] = v;
    return `@${name}`;
  };
  // One model, two renderings: every condition is the same text in both dialects except the subject
  // lists, which live in each connection's own temporary tables.
  const parts: string[] = [];
  const pgParts: string[] = [];
  const push = (p: string, pg = p) => {
    parts.push(p);
    pgParts.push(pg);
  };
  const dateFieldsDone = new Set<string>();
  let list: CompiledScope['subjects'];
  for (const c of scope.conditions) {
    if (c.op === 'subjects') {
      // Without its list a subjects scope holds no record: a reader that was given none reads nothing.
      if (!subjects) {
        push('FALSE');
        continue;
      }
      if (!catalog.matchKeys?.some((k) => k.field === subjects.column)) throw new Error(`subject lists of ${catalog.name} cannot name persons by ${subjects.column}`);
      const col = ident(subjects.column);
      push(`${col} IN (SELECT id FROM ${SUBJECTS_TABLE})`, `${col} IN (SELECT id FROM ${PG_SUBJECTS_TABLE})`);
      list = { ids: subjects.ids, added: subjects.added, addedSql: `${col} IN (SELECT id FROM ${ADDED_TABLE})`, pgAddedSql: `${col} IN (SELECT id FROM ${PG_ADDED_TABLE})` };
      continue;
    }
    const def = catalog.fields.find((f) => f.name === c.field);
    if (!def?.scope) throw new Error(`scope field ${c.field} is not scopable in ${catalog.name}`);
    const col = ident(c.field);
    if (c.op === 'in' || c.op === 'not-in') {
      push(`${col} ${c.op === 'in' ? 'IN' : 'NOT IN'} (${c.values.map(bind).join(', ')})`);
      continue;
    }
    if (dateFieldsDone.has(c.field)) continue;
    dateFieldsDone.add(c.field);
    const r = dayRange(scope.conditions, c.field, asOf);
    if (r.from !== null) push(`${col} >= ${bind(r.from)}`);
    if (r.to !== null) push(`${col} < ${bind(addDays(r.to, 1))}`);
  }
  const join = (ps: string[]) => (ps.length ? ps.map((p) => `(${p})`).join(' AND ') : 'TRUE');
  return { sql: join(parts), pgSql: join(pgParts), params, ...(list ? { subjects: list } : {}) };
}

/**
 * Give a connection what `scope` reads besides its parameters: a subject list's identifiers as
 * temporary tables (private to the connection; allowed on a read-only one). Call before preparing
 * a statement that uses the scope; a second call replaces the lists.
 */
export function prepareScopeConnection(db: Database.Database, scope: CompiledScope): void {
  if (!scope.subjects) return;
  const { ids, added } = scope.subjects;
  db.transaction(() => {
    for (const [table, values] of [
      [SUBJECTS_TABLE, ids],
      [ADDED_TABLE, added],
    ] as const) {
      db.exec(`DROP TABLE IF EXISTS ${table}`);
      db.exec(`CREATE TABLE ${table} (id TEXT PRIMARY KEY) WITHOUT ROWID`);
      const insert = db.prepare(`INSERT OR IGNORE INTO ${table} (id) VALUES (?)`);
      for (const v of values) insert.run(v);
    }
  })();
}
