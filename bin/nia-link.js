#!/usr/bin/env node
'use strict';
// The command runs the compiled tree; `npm ci` builds it (the `prepare` script).
const path = require('path');
const entry = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');
let main;
try {
  ({ main } = require(entry));
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes(entry)) {
    process.stderr.write('nia-link: not built yet; run `npm ci` (or `npm run build`) in ' + path.join(__dirname, '..') + '\n');
    process.exit(1);
  }
  throw err;
}
main(process.argv);
