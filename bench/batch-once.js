// Processes one batch request in this process, the way the worker's job does, and prints its figures
// as JSON (used by batch.js): wall and CPU time from the upload's row being committed (the end of the
// upload) to the result's delivery being committed in /outbox.
'use strict';
const { createHash } = require('node:crypto');
const { copyFileSync, readFileSync } = require('node:fs');
const path = require('node:path');
const { loadConfig } = require('../dist/src/config');
const { openControlDb } = require('../dist/src/db');
const { inbox } = require('../dist/src/db/repositories');
const { queryIdSecret } = require('../dist/src/crypto');
const { buildServices } = require('../dist/src/services');
const { BatchService } = require('../dist/src/batch');
const { openExtractSource } = require('../dist/src/extract');

// The daily cap in memory: one Redis round trip in the service, not what is measured here.
const cap = { take: async (_l, _d, n) => ({ ok: true, used: n }), used: async () => 0 };

async function main() {
  const [dataDir, linkId, request, account] = process.argv.slice(2);
  const config = loadConfig({ dataDir }, { ...process.env, NIA_LINK_LOG_LEVEL: 'silent' });
  const cdb = openControlDb(config.dataDir);
  const { registry, outbox } = buildServices(config, cdb);
  const service = new BatchService({
    cdb,
    registry,
    clock: { now: () => new Date() },
    outbox,
    keysDir: config.keysDir,
    openSource: () => openExtractSource(config),
    retentionDays: config.outbox.retentionDays,
    settings: config.batch,
    cap,
    idSecret: queryIdSecret(config.keysDir),
  });
  // What the SFTP role leaves at CLOSE: the bytes in a spool file and the upload's row.
  const name = `bench-${Date.now()}.csv.pgp`;
  const spool = path.join(path.dirname(request), `spool-${name}`);
  copyFileSync(request, spool);
  const bytes = readFileSync(spool);
  const id = await cdb.write((tx) => inbox.insertUpload(tx, { linkId: Number(linkId), account, ip: '127.0.0.1', name, kind: 'batch', bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), spool, receivedAt: new Date().toISOString() }));
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const o = await service.process(id);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(c0);
  if (o.state !== "answered") throw new Error(`request ${o.state}: ${o.code} ${JSON.stringify((await inbox.uploadById(cdb.db, id)).outcome)}`);
  const row = await inbox.uploadById(cdb.db, id);
  cdb.close();
  const file = outbox.pathOf(Number(linkId), row.outcome.file);
  process.stdout.write(JSON.stringify({ ms, rows: row.outcome.rows, matched: row.outcome.matched, ids: row.outcome.valid, path: file, maxRssKiB: process.resourceUsage().maxRSS, cpuMs: (cpu.user + cpu.system) / 1000 }) + '\n');
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
