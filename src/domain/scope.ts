import { z } from 'zod';
import type { DatasetCatalog, FieldCatalog } from './datasets';
import { addDays, isValidDate } from './dates';
import { ok, refuse, type Result } from './result';

/**
 * R3.4: which records a link may receive. A conjunction of conditions over the dataset's scopable
 * fields (the catalog marks them and gives their value domain), or the whole dataset as an explicit,
 * justified choice. Every reader of the source (extract, online query, batch query) applies the one
 * compiled form of it (extract/scope-sql.ts), so no channel can forget it.
 */
export const SCOPE_OPS = ['in', 'not-in', 'from', 'to', 'within-days', 'subjects'] as const;
export type ScopeOp = (typeof SCOPE_OPS)[number];

/** The most persons a subject list may name (what `--max-subjects` may ask for), and the default. */
export const MAX_SUBJECTS = 1_000_000;
export const DEFAULT_MAX_SUBJECTS = 10_000;

const FIELD = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'not a field name');
export const scopeConditionSchema = z.discriminatedUnion('op', [
  z.object({ field: FIELD, op: z.literal('in'), values: z.array(z.string().min(1).max(64)).min(1).max(500) }).strict(),
  z.object({ field: FIELD, op: z.literal('not-in'), values: z.array(z.string().min(1).max(64)).min(1).max(500) }).strict(),
  z.object({ field: FIELD, op: z.literal('from'), value: z.string() }).strict(),
  z.object({ field: FIELD, op: z.literal('to'), value: z.string() }).strict(),
  z.object({ field: FIELD, op: z.literal('within-days'), value: z.number().int() }).strict(),
  // Only persons on the link's current subject list (uploaded by the agency), at most `max` of them.
  z.object({ op: z.literal('subjects'), max: z.number().int().min(1).max(MAX_SUBJECTS) }).strict(),
]);
export type ScopeCondition = z.infer<typeof scopeConditionSchema>;
export type FieldCondition = Exclude<ScopeCondition, { op: 'subjects' }>;
export type SubjectsCondition = Extract<ScopeCondition, { op: 'subjects' }>;

/** The subjects condition of a scope, if it has one: its records are only those of listed persons. */
export function subjectsOf(scope: Scope): SubjectsCondition | undefined {
  return scope.all ? undefined : scope.conditions.find((c): c is SubjectsCondition => c.op === 'subjects');
}
const isFieldCondition = (c: ScopeCondition): c is FieldCondition => c.op !== 'subjects';

export const scopeSchema = z.union([
  z.object({ all: z.literal(false), conditions: z.array(scopeConditionSchema).min(1).max(32) }).strict(),
  z.object({ all: z.literal(true), justification: z.string().trim().min(1).max(2000) }).strict(),
]);
export type Scope = z.infer<typeof scopeSchema>;

/** What links recorded before scopes existed were migrated to; such links need a scope review. */
export const LEGACY_SCOPE_JUSTIFICATION = 'recorded before scopes existed';
export const isLegacyScope = (s: Scope): boolean => s.all && s.justification === LEGACY_SCOPE_JUSTIFICATION;

/** The longest `within-days` window: a century. */
const MAX_DAYS = 36_600;

const HOW = "give conditions ('FIELD in V1,V2; FIELD from YYYY-MM-DD; subjects; …'), a scope file, or all with a written justification";

/**
 * `nationality in VNM,IDN; direction in entry; crossed_at within-days 400` → conditions. Only the
 * syntax is checked here; checkScope checks them against the catalog. `all` is not a condition list:
 * the caller turns it into `{all: true, justification}`.
 */
export function parseScopeText(text: string): Result<ScopeCondition[]> {
  const parts = text.split(';').map((s) => s.trim());
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop(); // a trailing ';'
  if (parts.length === 0 || (parts.length === 1 && parts[0] === '')) return refuse('scope.empty', `the scope is empty: ${HOW}`);
  const out: ScopeCondition[] = [];
  for (const [i, part] of parts.entries()) {
    if (part === '') return refuse('scope.syntax', `scope condition ${i + 1} is empty (two ';' in a row)`);
    const subjects = /^subjects(?:\s+max\s+(\S+))?$/.exec(part);
    if (subjects) {
      const max = subjects[1] === undefined ? DEFAULT_MAX_SUBJECTS : /^\d+$/.test(subjects[1]) ? Number(subjects[1]) : NaN;
      if (!Number.isSafeInteger(max)) return refuse('scope.subjects', `scope condition '${part}': subjects max takes a whole number of persons`);
      out.push({ op: 'subjects', max });
      continue;
    }
    const m = /^([A-Za-z0-9_]+)\s+(in|not-in|from|to|within-days)\s+(.*)$/s.exec(part);
    if (!m) return refuse('scope.syntax', `scope condition '${part}' is not FIELD in|not-in|from|to|within-days VALUE`);
    const [, field, op, arg] = m;
    const value = arg.trim();
    if (op === 'in' || op === 'not-in') {
      const values = value.split(',').map((v) => v.trim());
      if (values.some((v) => v === '')) return refuse('scope.empty-value', `scope condition '${part}': the list has an empty element`);
      out.push({ field, op, values });
    } else if (op === 'within-days') {
      if (!/^-?\d+$/.test(value)) return refuse('scope.days', `scope condition '${part}': within-days takes a whole number of days`);
      out.push({ field, op, value: Number(value) });
    } else {
      out.push({ field, op: op as 'from' | 'to', value });
    }
  }
  return ok(out);
}

/** The scopable fields of a dataset and their domains, as the catalog gives them. */
export function scopableFields(catalog: DatasetCatalog): FieldCatalog[] {
  return catalog.fields.filter((f) => f.scope !== undefined);
}

/**
 * R3.4: every condition on a scopable field of the catalog, with values from its domain; each field
 * once, except that a date field may take one `from` and one `to` (or one `within-days`, alone);
 * `from` not after `to`; N ≥ 1. Returns the problems (empty when the scope is acceptable).
 */
export function checkScope(catalog: DatasetCatalog, scope: Scope): string[] {
  const parsed = scopeSchema.safeParse(scope);
  if (!parsed.success) return parsed.error.issues.map((i) => `scope${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}`);
  if (scope.all) return [];
  const problems: string[] = [];
  const seen = new Map<string, Set<ScopeOp>>();
  const scopable = scopableFields(catalog).map((f) => f.name);
  const subjects = scope.conditions.filter((c) => c.op === 'subjects');
  if (subjects.length > 1) problems.push('scope: subjects is given twice');
  if (subjects.length && !catalog.matchKeys?.length) problems.push(`scope: dataset ${catalog.name} names no identifiers a subject list could use`);
  for (const c of scope.conditions) {
    if (c.op === 'subjects') {
      if (c.max < 1 || c.max > MAX_SUBJECTS) problems.push(`scope: subjects max needs 1 to ${MAX_SUBJECTS} persons, not ${c.max}`);
      continue;
    }
    const def = catalog.fields.find((f) => f.name === c.field);
    if (!def) {
      problems.push(`scope: unknown field '${c.field}' in dataset ${catalog.name}`);
      continue;
    }
    if (!def.scope) {
      problems.push(`scope: field '${c.field}' cannot select records (scopable fields of ${catalog.name}: ${scopable.join(', ')})`);
      continue;
    }
    const ops = seen.get(c.field) ?? new Set<ScopeOp>();
    seen.set(c.field, ops);
    if (def.scope.kind === 'codes') {
      if (c.op !== 'in' && c.op !== 'not-in') {
        problems.push(`scope: '${c.field}' is a code field: use in or not-in, not ${c.op}`);
        continue;
      }
      if (ops.size) problems.push(`scope: field '${c.field}' is given twice`);
      const domain = new Set(def.scope.codes.map((x) => x.code));
      const outside = c.values.filter((v) => !domain.has(v));
      if (outside.length) problems.push(`scope: ${outside.map((v) => `'${v}'`).join(', ')} not in the domain of '${c.field}' (see nia-link dataset show ${catalog.name})`);
      if (new Set(c.values).size !== c.values.length) problems.push(`scope: a value of '${c.field}' is listed twice`);
    } else {
      if (c.op !== 'from' && c.op !== 'to' && c.op !== 'within-days') {
        problems.push(`scope: '${c.field}' is a date field: use from, to or within-days, not ${c.op}`);
        continue;
      }
      if (ops.has(c.op)) problems.push(`scope: '${c.field} ${c.op}' is given twice`);
      else if (c.op === 'within-days' ? ops.size > 0 : ops.has('within-days')) problems.push(`scope: '${c.field}' takes either within-days or from/to, not both`);
      if (c.op === 'within-days') {
        if (c.value < 1 || c.value > MAX_DAYS) problems.push(`scope: '${c.field} within-days' needs 1 to ${MAX_DAYS} days, not ${c.value}`);
      } else if (!isValidDate(c.value)) {
        problems.push(`scope: '${c.field} ${c.op} ${c.value}' is not a date (YYYY-MM-DD)`);
      }
    }
    ops.add(c.op);
  }
  const fieldConditions = scope.conditions.filter(isFieldCondition);
  for (const field of seen.keys()) {
    const from = fieldConditions.find((c) => c.field === field && c.op === 'from');
    const to = fieldConditions.find((c) => c.field === field && c.op === 'to');
    if (from && to && from.op === 'from' && to.op === 'to' && isValidDate(from.value) && isValidDate(to.value) && from.value > to.value) {
      problems.push(`scope: '${field}' from ${from.value} is after to ${to.value}`);
    }
  }
  return problems;
}

/**
 * A checked scope from the CLI's three forms (exactly one of them), or the reason it is refused.
 * `maxSubjects` (`--max-subjects N`) sets the size limit of a `subjects` condition.
 */
export function scopeFromInput(input: { text?: string; json?: unknown; justification?: string; maxSubjects?: number }): Result<Scope> {
  const scope = scopeFromForms(input);
  if (!scope.ok || input.maxSubjects === undefined) return scope;
  const s = scope.value;
  if (!subjectsOf(s) || s.all) return refuse('scope.subjects', 'a limit on subjects goes only with a scope that has the condition subjects', { field: 'maxSubjects', invalid: true });
  if (!Number.isSafeInteger(input.maxSubjects) || input.maxSubjects < 1 || input.maxSubjects > MAX_SUBJECTS) return refuse('scope.subjects', `a subject list names 1 to ${MAX_SUBJECTS} persons`, { field: 'maxSubjects', invalid: true });
  return ok({ all: false, conditions: s.conditions.map((c) => (c.op === 'subjects' ? { op: 'subjects', max: input.maxSubjects! } : c)) });
}

function scopeFromForms(input: { text?: string; json?: unknown; justification?: string }): Result<Scope> {
  const given = [input.text !== undefined, input.json !== undefined].filter(Boolean).length;
  if (given === 0) return refuse('scope.missing', `an application states which records it needs (R3.4): ${HOW}`, { field: 'scope', invalid: true });
  if (given > 1) return refuse('scope.ambiguous', 'give the scope once: as text or as a scope file, not both', { field: 'scope', invalid: true });
  if (input.json !== undefined) {
    const parsed = scopeSchema.safeParse(input.json);
    if (!parsed.success) return refuse('scope.invalid', `scope file: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'scope'}: ${i.message}`).join('; ')}`);
    if (parsed.data.all && input.justification !== undefined) return refuse('scope.ambiguous', 'the scope file carries its own justification');
    if (isLegacyScope(parsed.data)) return refuse('scope.justification', `'${LEGACY_SCOPE_JUSTIFICATION}' marks links migrated without a scope; give the real reason the whole dataset is needed`);
    if (!parsed.data.all && input.justification !== undefined) return refuse('scope.justification', 'a justification goes only with a whole-dataset scope (all)', { field: 'justification', invalid: true });
    return ok(parsed.data);
  }
  const text = input.text!.trim();
  if (text.toLowerCase() === 'all') {
    const j = input.justification?.trim();
    if (!j) return refuse('scope.justification', 'a whole-dataset scope needs a written justification', { field: 'justification', invalid: true });
    if (j === LEGACY_SCOPE_JUSTIFICATION) return refuse('scope.justification', `'${j}' marks links migrated without a scope; give the real reason the whole dataset is needed`);
    return ok({ all: true, justification: j });
  }
  if (input.justification !== undefined) return refuse('scope.justification', 'a justification goes only with a whole-dataset scope (all)', { field: 'justification', invalid: true });
  const conditions = parseScopeText(text);
  if (!conditions.ok) return conditions;
  return ok({ all: false, conditions: conditions.value });
}

/** `nationality in VNM,IDN; crossed_at within-days 400`, or `all` (the text form the CLI takes). */
export function formatScope(scope: Scope): string {
  if (scope.all) return 'all';
  return scope.conditions.map((c) => (c.op === 'subjects' ? `subjects max ${c.max}` : `${c.field} ${c.op} ${'values' in c ? c.values.join(',') : c.value}`)).join('; ');
}

/** A date condition as the closed range of Taipei days it admits on `asOf` (the day of the delivery or answer). */
export interface DayRange {
  from: string | null;
  to: string | null;
}

/** The days a date field is limited to on `asOf`: from/to as given, within-days N as the N days ending on asOf. */
export function dayRange(conditions: readonly ScopeCondition[], field: string, asOf: string): DayRange {
  const r: DayRange = { from: null, to: null };
  for (const c of conditions) {
    if (c.op === 'subjects' || c.field !== field) continue;
    if (c.op === 'from') r.from = c.value;
    else if (c.op === 'to') r.to = c.value;
    else if (c.op === 'within-days') {
      r.from = addDays(asOf, -(c.value - 1));
      r.to = asOf;
    }
  }
  return r;
}

export type Lang = 'zh' | 'en';

/**
 * The scope in words from the catalog's labels, for the form, the console and reports:
 * 國籍：越南、印尼；出入境別：入境；出入境時間：製檔日前400日內 — or 全部資料 with its justification.
 */
export function describeScope(scope: Scope, catalog: DatasetCatalog | undefined, lang: Lang = 'zh'): string {
  const zh = lang === 'zh';
  if (scope.all) return zh ? `全部資料（理由：${scope.justification}）` : `the whole dataset (justification: ${scope.justification})`;
  const byField = new Map<string, FieldCondition[]>();
  for (const c of scope.conditions.filter(isFieldCondition)) byField.set(c.field, [...(byField.get(c.field) ?? []), c]);
  const parts: string[] = [];
  const subjects = subjectsOf(scope);
  if (subjects) parts.push(zh ? `對象：僅限機關名單所列之人（至多${subjects.max}人）` : `persons: only those on the agency's subject list (at most ${subjects.max})`);
  for (const [field, conds] of byField) {
    const def = catalog?.fields.find((f) => f.name === field);
    const label = def ? def.label[lang] : field;
    const codeLabel = (v: string) => (def?.scope?.kind === 'codes' ? def.scope.codes.find((x) => x.code === v)?.label[lang] ?? v : v);
    const words: string[] = [];
    for (const c of conds) {
      if (c.op === 'in') words.push(c.values.map(codeLabel).join(zh ? '、' : ', '));
      else if (c.op === 'not-in') words.push((zh ? '除' : 'other than ') + c.values.map(codeLabel).join(zh ? '、' : ', ') + (zh ? '以外' : ''));
      else if (c.op === 'within-days') words.push(zh ? `製檔或查詢日前${c.value}日內` : `within the ${c.value} days up to the day of delivery or look-up`);
    }
    const range = dayRange(conds, field, '0000-01-01');
    const hasFrom = conds.some((c) => c.op === 'from');
    const hasTo = conds.some((c) => c.op === 'to');
    if (hasFrom && hasTo) words.push(zh ? `${range.from}至${range.to}` : `${range.from} to ${range.to}`);
    else if (hasFrom) words.push(zh ? `${range.from}起` : `from ${range.from}`);
    else if (hasTo) words.push(zh ? `至${range.to}止` : `up to ${range.to}`);
    parts.push(`${label}${zh ? '：' : ': '}${words.join(zh ? '，' : ', ')}`);
  }
  return parts.join(zh ? '；' : '; ');
}

/** Two scopes select the same records (the order of conditions aside). */
export function sameScope(a: Scope, b: Scope): boolean {
  const key = (s: Scope) => (s.all ? 'all' : s.conditions.map((c) => JSON.stringify(c)).sort().join('|'));
  return key(a) === key(b);
}
