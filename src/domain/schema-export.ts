import { z } from 'zod';
import { revisionContentSchema } from './revision';
import { scopeSchema } from './scope';

/** The JSON Schema of what an application records (R3.1), derived from the schema the code enforces. */
export function applicationJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(revisionContentSchema, { target: 'draft-2020-12' }),
    $id: 'https://nia-link.immigration.gov.tw/schemas/link-application.schema.json',
    title: '各機關應用移民資訊申請暨異動書 — link revision content',
    description: 'Everything on the application form for one revision of a link (R3.1). Dataset fields are checked against schemas/datasets/*.json.',
  };
}

/** The JSON Schema of a scope file (`--scope-file`, `link change --kind scope --file`), R3.4. */
export function scopeJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(scopeSchema, { target: 'draft-2020-12' }),
    $id: 'https://nia-link.immigration.gov.tw/schemas/scope.schema.json',
    title: '資料範圍 — the records a link may receive (R3.4)',
    description:
      'Either {"all": false, "conditions": [...]} — every condition must hold: {"field", "op": "in"|"not-in", "values": [codes]} on a code field, {"field", "op": "from"|"to", "value": "YYYY-MM-DD"} or {"field", "op": "within-days", "value": N} on a date field — or {"all": true, "justification": "..."}. Fields and their codes: schemas/datasets/*.json (nia-link dataset show NAME).',
  };
}
