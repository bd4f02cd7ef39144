// Writes schemas/link-application.schema.json from the zod schema the code validates with (run after a build).
'use strict';
const { writeFileSync } = require('node:fs');
const path = require('node:path');
const { applicationJsonSchema } = require('../dist/src/domain/schema-export');

writeFileSync(path.join(__dirname, '..', 'schemas', 'link-application.schema.json'), JSON.stringify(applicationJsonSchema(), null, 2) + '\n');
