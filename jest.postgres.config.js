/**
 * The PostgreSQL pass (npm run test:postgres): the suites whose worlds are opened with
 * openTestWorld (directly, or through consoleWorld), or whose CLI installations get their control
 * database from testDatabase, each on a scratch PostgreSQL database of its own
 * (test/helpers/world.ts).
 */
const fs = require('node:fs');
const path = require('node:path');
const base = require('./jest.config');

const BOTH = ['openTestWorld(', 'testDatabase(', 'consoleWorld('];
const both = ['integration', 'browser'].flatMap((sub) => {
  const dir = path.join(__dirname, 'test', sub);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts') && BOTH.some((marker) => fs.readFileSync(path.join(dir, f), 'utf8').includes(marker)))
    .map((f) => `<rootDir>/test/${sub}/${f}`);
});

/** @type {import('jest').Config} */
module.exports = { ...base, testMatch: both };
