import { z } from 'zod';

export const TRANSFORMS = ['mask', 'hmac', 'year', 'year-month'] as const;
export type Transform = (typeof TRANSFORMS)[number];
export const SENSITIVITIES = ['identifier', 'quasi-identifier', 'sensitive', 'general'] as const;

const labelSchema = z.object({ zh: z.string().min(1), en: z.string().min(1) });
export const codeSchema = z.object({ code: z.string().min(1).max(64), label: labelSchema });
/**
 * A field that may select records (R3.4): a code list (its values, labelled) or a date. A catalog
 * file may name a shared code list (`"codes": "iso3166-alpha3"`, from schemas/codes/); the loader
 * puts the list in its place, so in memory it is always the list.
 */
export const fieldScopeSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('codes'), codes: z.array(codeSchema).min(1) }),
  z.object({ kind: z.literal('date') }),
]);
export const fieldCatalogSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/),
    label: labelSchema,
    type: z.enum(['string', 'date', 'datetime', 'integer']),
    sensitivity: z.enum(SENSITIVITIES),
    transforms: z.array(z.enum(TRANSFORMS)),
    scope: fieldScopeSchema.optional(),
  })
  .refine((f) => f.scope?.kind !== 'date' || f.type === 'date' || f.type === 'datetime', { message: 'a date scope needs a date or datetime field', path: ['scope'] });
export const datasetCatalogSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/),
  label: labelSchema,
  key: z.string(),
  /** The identifier an online query looks records up by (R2.1). */
  lookup: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/),
  /**
   * The identifiers an agency may name its people by in a batch request or subject list (R2.2, R3.4),
   * each with the format an identifier must have before it is looked up.
   */
  matchKeys: z.array(z.object({ field: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/), format: z.enum(['taiwan-id', 'passport']) }).strict()).optional(),
  fields: z.array(fieldCatalogSchema).min(1),
});
export type FieldCatalog = z.infer<typeof fieldCatalogSchema>;
export type CodeEntry = z.infer<typeof codeSchema>;
export type DatasetCatalog = z.infer<typeof datasetCatalogSchema>;

/** One approved data item of a link: a catalog field, optionally transformed before delivery. */
export interface FieldSpec {
  readonly name: string;
  readonly transform?: Transform;
}

/** `person_id:hmac,nationality` → [{name:'person_id', transform:'hmac'}, {name:'nationality'}]. */
export function parseFieldList(text: string): FieldSpec[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const [name, transform] = s.split(':', 2).map((p) => p.trim());
      return transform ? { name, transform: transform as Transform } : { name };
    });
}

/** `person_id:hmac`, or the bare name when the field is delivered as it is. */
export function formatField(f: FieldSpec): string {
  return f.transform ? `${f.name}:${f.transform}` : f.name;
}

export function formatFieldList(fields: readonly FieldSpec[]): string {
  return fields.map(formatField).join(',');
}

/**
 * R3.2: only fields of the catalog, each once, each transform one the catalog allows.
 * Returns the list of problems (empty when the list is acceptable).
 */
export function checkFields(catalog: DatasetCatalog, fields: readonly FieldSpec[]): string[] {
  const problems: string[] = [];
  if (fields.length === 0) problems.push('no fields requested');
  const seen = new Set<string>();
  for (const f of fields) {
    const def = catalog.fields.find((c) => c.name === f.name);
    if (!def) {
      problems.push(`unknown field '${f.name}' in dataset ${catalog.name}`);
      continue;
    }
    if (seen.has(f.name)) problems.push(`field '${f.name}' requested twice`);
    seen.add(f.name);
    if (f.transform !== undefined && !def.transforms.includes(f.transform)) {
      const allowed = def.transforms.length ? def.transforms.join(', ') : 'none';
      problems.push(`transform '${f.transform}' is not allowed on field '${f.name}' (allowed: ${allowed})`);
    }
  }
  return problems;
}
