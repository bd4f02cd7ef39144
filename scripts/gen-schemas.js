// Writes the JSON Schemas in schemas/ from the zod schemas the code validates with (run after a build).
'use strict';
const { writeFileSync } = require('node:fs');
const path = require('node:path');
const { applicationJsonSchema, scopeJsonSchema } = require('../dist/src/domain/schema-export');

const out = (name, schema) => writeFileSync(path.join(__dirname, '..', 'schemas', name), JSON.stringify(schema, null, 2) + '\n');
out('link-application.schema.json', applicationJsonSchema());
out('scope.schema.json', scopeJsonSchema());
