/**
 * The PostgreSQL pass (npm run test:postgres): the suites whose worlds are opened with
 * openTestWorld, each on a scratch PostgreSQL database of its own (test/helpers/world.ts).
 */
const fs = require('node:fs');
const path = require('node:path');
const base = require('./jest.config');

const dir = path.join(__dirname, 'test', 'integration');
const both = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.test.ts') && fs.readFileSync(path.join(dir, f), 'utf8').includes('openTestWorld('))
  .map((f) => `<rootDir>/test/integration/${f}`);

/** @type {import('jest').Config} */
module.exports = { ...base, testMatch: both };
