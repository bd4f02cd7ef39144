import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { datasetCatalogSchema, type DatasetCatalog } from '../domain';
import { SCHEMAS_DIR } from '../paths';

/** The dataset field catalogs of schemas/datasets/*.json, validated; a broken catalog stops the program. */
/** A shared code list of schemas/codes/NAME.json (NAME checked: it names a file). */
function codeList(dir: string, name: string): unknown {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) throw new Error(`dataset catalog: code list name '${name}' is not valid`);
  return JSON.parse(readFileSync(path.join(dir, `${name}.json`), 'utf8')).codes;
}

export function loadCatalogs(dir = path.join(SCHEMAS_DIR, 'datasets'), codesDir = path.join(SCHEMAS_DIR, 'codes')): Map<string, DatasetCatalog> {
  const out = new Map<string, DatasetCatalog>();
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const raw = JSON.parse(readFileSync(path.join(dir, name), 'utf8'));
    for (const f of Array.isArray(raw?.fields) ? raw.fields : []) {
      if (f?.scope?.kind === 'codes' && typeof f.scope.codes === 'string') f.scope = { ...f.scope, codes: codeList(codesDir, f.scope.codes) };
    }
    const parsed = datasetCatalogSchema.safeParse(raw);
    if (!parsed.success) throw new Error(`dataset catalog ${name}: ${parsed.error.issues[0].path.join('.')}: ${parsed.error.issues[0].message}`);
    out.set(parsed.data.name, parsed.data);
  }
  return out;
}
