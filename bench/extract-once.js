// Builds one full extract of a link in this process and prints its figures as JSON (used by extract.js):
// wall time and CPU time (every thread) of the extract alone, from after start-up to the delivery record.
'use strict';
const path = require('node:path');
const { loadConfig } = require('../dist/src/config');
const { openControlDb } = require('../dist/src/db');
const { buildServices } = require('../dist/src/services');

async function main() {
  const [dataDir, linkId] = process.argv.slice(2);
  const config = loadConfig({ dataDir }, { ...process.env, NIA_LINK_LOG_LEVEL: 'silent' });
  const cdb = openControlDb(config.dataDir);
  const { extracts } = buildServices(config, cdb);
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const d = await extracts.run({ key: `bench-${Date.now()}`, linkId: Number(linkId), full: true, trigger: 'manual' }, { finalAttempt: true });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(c0);
  cdb.close();
  process.stdout.write(JSON.stringify({ ms, rows: d.rows, bytes: d.bytes, path: d.path, maxRssKiB: process.resourceUsage().maxRSS, cpuMs: (cpu.user + cpu.system) / 1000 }) + '\n');
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
