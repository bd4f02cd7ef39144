import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import path from 'node:path';
import { KEY_FILES } from '../../src/crypto';

/**
 * One look-up over HTTPS with a client certificate, on a connection of its own, trusting the query
 * server's certificate from `keysDir`. A connection the cluster's primary was handing to a worker as it
 * died is never answered (Node's round-robin handoff has no reply to wait for): the client gives up
 * after 10 s, as a real one would.
 */
export function askQuery(o: { keysDir: string; port: number; dataset: string; body: unknown; client?: { cert: string; key: string }; localAddress?: string }): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(o.body);
    const req = request(
      {
        host: '127.0.0.1',
        port: o.port,
        path: `/query/v1/${o.dataset}`,
        method: 'POST',
        localAddress: o.localAddress ?? '127.0.0.1',
        servername: 'localhost',
        ca: readFileSync(path.join(o.keysDir, KEY_FILES.queryCert)),
        cert: o.client?.cert,
        key: o.client?.key,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      },
      (res) => {
        let data = '';
        res.on('data', (d) => (data += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(data) }));
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
    req.end(text);
  });
}
