/**
 * The PostgreSQL pass (npm run test:postgres): the suites whose worlds are opened with
 * openTestWorld, or whose CLI installations get their control database from testDatabase, each on
 * a scratch PostgreSQL database of its own (test/helpers/world.ts).
 */
const fs = require('node:fs');
const path = require('node:path');
const base = require('./jest.config');

const dir = path.join(__dirname, 'test', 'integration');
const both = fs
  .readdirSync(dir)
  .filter((f) => {
    if (!f.endsWith('.test.ts')) return false;
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    return text.includes('openTestWorld(') || text.includes('testDatabase(');
  })
  .map((f) => `<rootDir>/test/integration/${f}`);

/** @type {import('jest').Config} */
module.exports = { ...base, testMatch: both };
