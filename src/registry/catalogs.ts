import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { datasetCatalogSchema, type DatasetCatalog } from '../domain';
import { SCHEMAS_DIR } from '../paths';

/** The dataset field catalogs of schemas/datasets/*.json, validated; a broken catalog stops the program. */
export function loadCatalogs(dir = path.join(SCHEMAS_DIR, 'datasets')): Map<string, DatasetCatalog> {
  const out = new Map<string, DatasetCatalog>();
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const parsed = datasetCatalogSchema.safeParse(JSON.parse(readFileSync(path.join(dir, name), 'utf8')));
    if (!parsed.success) throw new Error(`dataset catalog ${name}: ${parsed.error.issues[0].path.join('.')}: ${parsed.error.issues[0].message}`);
    out.set(parsed.data.name, parsed.data);
  }
  return out;
}
