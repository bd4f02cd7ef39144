// Load generator for bench/query.js: CONCURRENCY keep-alive clients send COUNT single-id look-ups.
'use strict';
const https = require('node:https');
const { readFileSync } = require('node:fs');
const [port, certFile, keyFile, caFile, idsFile, count, concurrency] = process.argv.slice(2);
const ids = readFileSync(idsFile, 'utf8').trim().split('\n');
const agent = new https.Agent({ keepAlive: true, maxSockets: Number(concurrency), cert: readFileSync(certFile), key: readFileSync(keyFile), ca: readFileSync(caFile), servername: 'localhost' });
const latencies = [];
let sent = 0;
let failed = 0;
function one() {
  return new Promise((resolve) => {
    const body = JSON.stringify({ ids: [ids[sent % ids.length]], reference: 'bench' });
    sent++;
    const t = process.hrtime.bigint();
    const req = https.request({ host: '127.0.0.1', port: Number(port), path: '/query/v1/entry_exit', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => {
        latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
        if (res.statusCode !== 200) failed++;
        resolve();
      });
    });
    req.on('error', () => {
      failed++;
      resolve();
    });
    req.end(body);
  });
}
(async () => {
  // Each client first opens its connection (TLS handshake) with one request that is not timed: the
  // benchmark is of look-ups over kept-alive connections. These requests are logged like any other.
  await Promise.all(Array.from({ length: Number(concurrency) }, () => one()));
  const warmup = latencies.splice(0).length;
  sent = 0;
  const t0 = Date.now();
  await Promise.all(Array.from({ length: Number(concurrency) }, async () => {
    while (sent < Number(count)) await one();
  }));
  const ms = Date.now() - t0;
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  process.stdout.write(JSON.stringify({ warmup, requests: latencies.length, failed, ms, rps: Math.round(latencies.length / (ms / 1000)), p50: q(0.5), p99: q(0.99), max: latencies[latencies.length - 1] }) + '\n');
  agent.destroy();
})();
