// Load generator for bench/query.js: CONCURRENCY keep-alive mutual-TLS connections, each sending
// single-id look-ups one after another (closed loop, as wrk or autocannon do) until COUNT have been
// sent. HTTP/1.1 is written and read directly on the TLS socket — a load tool, not a client library —
// so the generator spends as little as it can of the two cores it shares with the service.
// (wrk and autocannon cannot present a client certificate.) The first WARMUP requests (at least one per
// connection: the one that opens it) are sent the same way but not timed: they let the service reach
// its steady state (code optimised, heap grown) before the timed COUNT.
'use strict';
const tls = require('node:tls');
const { readFileSync } = require('node:fs');

const [port, certFile, keyFile, caFile, idsFile, count, concurrency, warmupArg = '0'] = process.argv.slice(2);
const warmup = Math.max(Number(warmupArg), Number(concurrency));
const ids = readFileSync(idsFile, 'utf8').trim().split('\n');
const tlsOptions = { host: '127.0.0.1', port: Number(port), cert: readFileSync(certFile), key: readFileSync(keyFile), ca: readFileSync(caFile), servername: 'localhost' };
const latencies = [];
let sent = 0;
let failed = 0;
let first = 0n; // the first timed request sent, and the last timed answer received: the measured span
let last = 0n;

function request(id) {
  const body = JSON.stringify({ ids: [id], reference: 'bench' });
  return `POST /query/v1/entry_exit HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** One connection: sends a look-up, waits for the whole response, records its latency, repeats. */
function client(limit) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(tlsOptions);
    let buf = Buffer.alloc(0);
    let t = 0n;
    let timed = false;
    const next = () => {
      if (!limit()) {
        socket.end();
        return resolve();
      }
      timed = sent >= warmup; // (a connection's first request, sent on connect, is never timed)
      t = process.hrtime.bigint();
      if (timed && !first) first = t;
      socket.write(request(ids[sent++ % ids.length]));
    };
    socket.once('secureConnect', () => {
      // The first request opens the connection (TLS handshake) and is not timed.
      timed = false;
      sent++;
      socket.write(request(ids[0]));
    });
    socket.on('data', (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const len = /\r\ncontent-length: *(\d+)/i.exec(head);
        if (!len) return reject(new Error(`response without content-length: ${head}`));
        const total = end + 4 + Number(len[1]);
        if (buf.length < total) return;
        if (timed) {
          last = process.hrtime.bigint();
          latencies.push(Number(last - t) / 1e6);
        }
        if (!head.startsWith('HTTP/1.1 200')) failed++;
        buf = buf.subarray(total);
        next();
      }
    });
    socket.on('error', reject);
  });
}

(async () => {
  const cpu0 = process.cpuUsage();
  const n = Number(count);
  await Promise.all(Array.from({ length: Number(concurrency) }, () => client(() => sent - warmup < n)));
  const ms = Number(last - first) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  process.stdout.write(JSON.stringify({ warmup, sent, requests: latencies.length, failed, ms, rps: Math.round(latencies.length / (ms / 1000)), p50: q(0.5), p90: q(0.9), p95: q(0.95), p99: q(0.99), p999: q(0.999), max: latencies[latencies.length - 1], cpuMs: (cpu.user + cpu.system) / 1000 }) + '\n');
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
