import type { Command } from 'commander';
import { type DatasetCatalog, type FieldCatalog, scopableFields } from '../domain';
import { UserError } from '../errors';
import { loadCatalogs } from '../registry';
import { printJson } from './context';

/**
 * What an applicant may ask for: the field catalogs of schemas/datasets/. Read from the files, not
 * the database, so an agency can plan its --fields and --scope before anything is installed.
 */
function catalog(catalogs: ReadonlyMap<string, DatasetCatalog>, name: string): DatasetCatalog {
  const c = catalogs.get(name);
  if (!c) throw new UserError(`unknown dataset '${name}' (known: ${[...catalogs.keys()].join(', ')})`, 'dataset.unknown');
  return c;
}

const pad = (s: string, n: number) => (s.length >= n ? `${s} ` : s.padEnd(n));
const width = (xs: string[]) => Math.max(...xs.map((x) => x.length)) + 1;

/** A --scope example built from the dataset's own scopable fields, so it is always one the dataset accepts. */
function scopeExample(fields: FieldCatalog[]): string {
  const parts: string[] = [];
  const codes = fields.find((f) => f.scope?.kind === 'codes');
  if (codes?.scope?.kind === 'codes') parts.push(`${codes.name} in ${codes.scope.codes.slice(0, 2).map((x) => x.code).join(',')}`);
  // The last date field: catalogs list birth dates first, and an event date makes the likelier example.
  const date = fields.filter((f) => f.scope?.kind === 'date').pop();
  if (date) parts.push(`${date.name} from 2025-01-01`);
  return parts.join('; ');
}

function describe(c: DatasetCatalog): string[] {
  const out: string[] = [];
  out.push(`${c.name}  ${c.label.zh} / ${c.label.en}`);
  out.push(`online-query lookup key: ${c.lookup}    record key: ${c.key}`);
  out.push('');
  out.push(`fields (${c.fields.length}): name, type, sensitivity, allowed transforms (--fields NAME:TRANSFORM), label`);
  const wName = width(c.fields.map((f) => f.name));
  const wType = width(c.fields.map((f) => f.type));
  const wSens = width(c.fields.map((f) => f.sensitivity));
  const transforms = c.fields.map((f) => (f.transforms.length ? f.transforms.join(',') : '-'));
  const wTr = width(transforms);
  c.fields.forEach((f, i) => out.push(`  ${pad(f.name, wName)}${pad(f.type, wType)}${pad(f.sensitivity, wSens)}${pad(transforms[i], wTr)}${f.label.zh} / ${f.label.en}`));
  const scopable = scopableFields(c);
  out.push('');
  if (scopable.length === 0) {
    out.push('no field selects records: only --scope all --scope-justification TEXT');
    return out;
  }
  out.push('scope (R3.4): the records the link may receive, as conditions that must all hold:');
  out.push(`  --scope '${scopeExample(scopable)}'  (FIELD in|not-in CODE,…  |  FIELD from|to YYYY-MM-DD  |  FIELD within-days N; joined by ';'), or --scope all --scope-justification TEXT`);
  out.push('');
  out.push('fields that select records, and their values:');
  for (const f of scopable) {
    if (f.scope?.kind === 'date') {
      out.push(`  ${f.name}  ${f.label.zh} / ${f.label.en}: date — from YYYY-MM-DD, to YYYY-MM-DD, within-days N (the N days up to the day of delivery or look-up)`);
    } else if (f.scope?.kind === 'codes') {
      out.push(`  ${f.name}  ${f.label.zh} / ${f.label.en}: codes (${f.scope.codes.length}) — in, not-in`);
      const wCode = width(f.scope.codes.map((x) => x.code));
      for (const x of f.scope.codes) out.push(`    ${pad(x.code, wCode)}${x.label.zh} / ${x.label.en}`);
    }
  }
  return out;
}

export function register(program: Command): void {
  const dataset = program.command('dataset').description('the datasets a link can be for: fields, transforms, and the values a scope can select');
  dataset
    .command('list')
    .description('one line per dataset: name, label, number of fields, lookup key')
    .option('--json', 'print a JSON array')
    .action((o) => {
      const rows = [...loadCatalogs().values()].map((c) => ({ name: c.name, label: c.label, fields: c.fields.length, lookup: c.lookup }));
      if (o.json) return printJson(rows);
      const w = width(rows.map((r) => r.name));
      for (const r of rows) console.log(`${pad(r.name, w)}${r.label.zh} / ${r.label.en}\t${r.fields} fields\tlookup ${r.lookup}`);
    });
  dataset
    .command('show')
    .description('fields with type, sensitivity and allowed transforms; the fields a scope can use and their values')
    .argument('<name>', 'dataset name (see nia-link dataset list)')
    .option('--json', 'print the catalog as JSON (code lists filled in)')
    .action((name: string, o) => {
      const c = catalog(loadCatalogs(), name);
      if (o.json) return printJson(c);
      console.log(describe(c).join('\n'));
    });
}
