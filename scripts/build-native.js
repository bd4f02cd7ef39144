#!/usr/bin/env node
// Compiles the SQLite extension in native/ (the CSV writer extracts use) against the SQLite headers
// better-sqlite3 ships, to the file the extract code loads (CSV_EXTENSION_FILE). Runs after tsc in
// `npm run build` and `npm ci`; a C compiler (cc, or $CC) is required, as it is for better-sqlite3.
'use strict';
const { spawnSync } = require('node:child_process');
const { mkdirSync, renameSync, rmSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const { CSV_EXTENSION_FILE: out } = require('../dist/src/extract/csv-sql');
const outDir = path.dirname(out);
const tmp = `${out}.${process.pid}.tmp`;
const include = path.dirname(require.resolve('better-sqlite3/package.json', { paths: [root] }));
const cc = process.env.CC || 'cc';
const args = ['-O2', '-fPIC', '-shared', '-Wall', '-Wextra', '-I', path.join(include, 'deps', 'sqlite3'), path.join(root, 'native', 'nl_csv.c'), '-o', tmp];
if (process.platform === 'darwin') args.splice(3, 0, '-undefined', 'dynamic_lookup');

mkdirSync(outDir, { recursive: true });
const r = spawnSync(cc, args, { stdio: ['ignore', 'inherit', 'inherit'] });
if (r.error || r.status !== 0) {
  rmSync(tmp, { force: true });
  console.error(`build-native: cannot compile native/nl_csv.c with ${cc}${r.error ? ` (${r.error.code})` : ''}: install a C compiler (Debian: apt-get install gcc)`);
  process.exit(1);
}
renameSync(tmp, out);
