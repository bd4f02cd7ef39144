// The floor for bench/query.js: a bare fastify HTTPS server with the same TLS settings as the query
// role (client certificate requested, TLS 1.2+, the same server key) that answers every look-up with
// a constant record — no authorisation, no source, no usage log. What is left of a look-up's time
// is the HTTP + TLS stack on this machine. Prints its port; stops on SIGTERM, printing its CPU ms.
'use strict';
const Fastify = require('fastify');
const { readFileSync } = require('node:fs');
const path = require('node:path');

const keysDir = process.argv[2];
const app = Fastify({
  logger: false,
  bodyLimit: 64 * 1024,
  https: { key: readFileSync(path.join(keysDir, 'query-server.key')), cert: readFileSync(path.join(keysDir, 'query-server.crt')), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
});
app.post('/query/v1/:dataset', async (req) => ({ records: [{ person_id: String(req.body.ids[0]), nationality: 'VNM', crossed_at: '2026-03-01T08:15:00+08:00', port: 'TPE' }] }));
app.listen({ host: '127.0.0.1', port: 0 }).then(() => process.stdout.write(`${app.server.address().port}\n`));
process.on('SIGTERM', () => {
  const u = process.cpuUsage();
  process.stdout.write(`${(u.user + u.system) / 1000}\n`);
  process.exit(0);
});
