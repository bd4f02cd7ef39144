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
  /** Named parameters (`@sc0`, `@sc1`, …) for the predicate. */
  params: Record<string, string>;
}

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
export function compileScope(scope: Scope, catalog: DatasetCatalog, asOf: string): CompiledScope {
  if (scope.all) return { sql: 'TRUE', params: {} };
  const params: Record<string, string> = {};
  let n = 0;
  const bind = (v: string) => {
    const name = `${SCOPE_PARAM_PREFIX}${n++}`;
    params[name] = v;
    return `@${name}`;
  };
  const parts: string[] = [];
  const dateFieldsDone = new Set<string>();
  for (const c of scope.conditions) {
    const def = catalog.fields.find((f) => f.name === c.field);
    if (!def?.scope) throw new Error(`scope field ${c.field} is not scopable in ${catalog.name}`);
    const col = ident(c.field);
    if (c.op === 'in' || c.op === 'not-in') {
      parts.push(`${col} ${c.op === 'in' ? 'IN' : 'NOT IN'} (${c.values.map(bind).join(', ')})`);
      continue;
    }
    if (dateFieldsDone.has(c.field)) continue;
    dateFieldsDone.add(c.field);
    const r = dayRange(scope.conditions, c.field, asOf);
    if (r.from !== null) parts.push(`${col} >= ${bind(r.from)}`);
    if (r.to !== null) parts.push(`${col} < ${bind(addDays(r.to, 1))}`);
  }
  return { sql: parts.length ? parts.map((p) => `(${p})`).join(' AND ') : 'TRUE', params };
}
