/** The online-query API as OpenAPI 3.1, served at /query/v1/openapi.json. */
export function openApiDocument(datasets: readonly string[]): Record<string, unknown> {
  const error = { type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } } };
  return {
    openapi: '3.1.0',
    info: { title: 'nia-link online query', version: '1', description: 'Look-ups of individual persons for links approved for online query (R2.1). Mutual TLS: the client certificate must be registered on the link. Every request is recorded in the usage log.' },
    paths: {
      '/query/v1/{dataset}': {
        post: {
          summary: 'Look up records by id; the answer holds exactly the fields approved for the link',
          parameters: [{ name: 'dataset', in: 'path', required: true, schema: { type: 'string', enum: datasets } }],
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['ids', 'reference'],
                  additionalProperties: false,
                  properties: {
                    ids: { type: 'array', minItems: 1, items: { type: 'string', maxLength: 64 }, description: 'identifiers of the dataset (entry_exit: person_id, residence: arc_no)' },
                    reference: { type: 'string', minLength: 1, maxLength: 200, description: 'the case or document number the look-up is for' },
                  },
                },
              },
            },
          },
          responses: {
            '200': { description: 'records found (none for unknown ids)', content: { 'application/json': { schema: { type: 'object', required: ['records', 'confidentiality'], properties: { records: { type: 'array', items: { type: 'object' } }, confidentiality: { type: 'object', description: 'form item 7: the confidentiality terms the records are given under (R-F7)', required: ['zh', 'en'], properties: { zh: { type: 'string' }, en: { type: 'string' } } } } } } } },
            '400': { description: 'invalid body or missing reference', content: { 'application/json': { schema: error } } },
            '401': { description: 'no client certificate', content: { 'application/json': { schema: error } } },
            '403': { description: 'certificate, address, link or dataset not allowed', content: { 'application/json': { schema: error } } },
            '413': { description: 'too many ids', content: { 'application/json': { schema: error } } },
            '429': { description: 'rate limit of the link', content: { 'application/json': { schema: error } } },
          },
        },
      },
    },
  };
}
