import { z } from 'zod';
import { revisionContentSchema } from './revision';

/** The JSON Schema of what an application records (R3.1), derived from the schema the code enforces. */
export function applicationJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(revisionContentSchema, { target: 'draft-2020-12' }),
    $id: 'https://nia-link.immigration.gov.tw/schemas/link-application.schema.json',
    title: '各機關應用移民資訊申請暨異動書 — link revision content',
    description: 'Everything on the application form for one revision of a link (R3.1). Dataset fields are checked against schemas/datasets/*.json.',
  };
}
