import Fastify from 'fastify';
import { constants } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Config } from '../config';
import { certFingerprint, queryServerCredentials } from '../crypto';
import { normaliseIp } from '../domain';
import type { Logger } from '../logger';
import { openApiDocument } from './openapi';
import type { CertValidity, QueryService } from './service';

/** TLS 1.2+ with forward-secret AEAD suites only. */
const CIPHERS = ['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_GCM_SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305', 'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256'].join(':');

const HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'strict-transport-security': 'max-age=31536000' };

interface Peer {
  fingerprint: string;
  validity: CertValidity;
}

/**
 * The certificate a connection authenticated with (fingerprint and validity dates), read once per
 * connection: renegotiation is refused (SSL_OP_NO_RENEGOTIATION), so it cannot change while the
 * connection lives. Its dates are checked on every request against the service's clock.
 */
const peers = new WeakMap<TLSSocket, Peer | null>();
function peerOf(socket: TLSSocket): Peer | null {
  let p = peers.get(socket);
  if (p === undefined) {
    const cert = socket.getPeerX509Certificate?.();
    p = cert ? { fingerprint: certFingerprint(cert), validity: { notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) } } : null;
    peers.set(socket, p);
  }
  return p;
}

/**
 * Connection limits at accept, before any TLS work: the TLS server's own connection listener runs only
 * for connections within `maxConnections` in total and `maxConnectionsPerIp` from one address, so a
 * flood of handshakes from anywhere cannot tie up the server before a certificate is even asked for.
 */
function limitConnections(server: { listeners(e: 'connection'): Function[]; removeAllListeners(e: 'connection'): unknown; on(e: 'connection', f: (s: Socket) => void): unknown }, limits: { maxConnections: number; maxConnectionsPerIp: number }, refused: (ip: string, code: string) => void): void {
  const handlers = server.listeners('connection');
  server.removeAllListeners('connection');
  const perIp = new Map<string, number>();
  let open = 0;
  server.on('connection', function (this: unknown, socket: Socket) {
    const ip = normaliseIp(socket.remoteAddress ?? '');
    const mine = perIp.get(ip) ?? 0;
    const code = open >= limits.maxConnections ? 'connections.capacity' : mine >= limits.maxConnectionsPerIp ? 'connections.address' : null;
    if (code) {
      socket.on('error', () => undefined);
      socket.destroy();
      return refused(ip, code);
    }
    open++;
    perIp.set(ip, mine + 1);
    socket.once('close', () => {
      open--;
      const n = (perIp.get(ip) ?? 1) - 1;
      if (n > 0) perIp.set(ip, n);
      else perIp.delete(ip);
    });
    for (const h of handlers) h.call(this, socket);
  });
}

/**
 * The `query` role: HTTPS with client certificates. TLS asks every client for a certificate but
 * accepts any, because agencies' certificates are self-signed: the link registers its fingerprint,
 * and the service authorises by that fingerprint on every request.
 */
export async function startQueryServer(opts: { config: Config; service: QueryService; datasets: string[]; log: Logger }): Promise<{ port: number; close: () => Promise<void> }> {
  const { key, cert } = queryServerCredentials(opts.config.keysDir);
  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    https: { key, cert, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2', ciphers: CIPHERS, honorCipherOrder: true, secureOptions: constants.SSL_OP_NO_RENEGOTIATION },
    connectionTimeout: 30_000,
    keepAliveTimeout: 30_000,
  });
  limitConnections(app.server, opts.config.query, (ip, code) => opts.service.refusedConnection(ip, code));
  const openapi = openApiDocument(opts.datasets);
  app.addHook('onSend', (_req, reply, payload, done) => {
    reply.headers(HEADERS);
    done(null, payload);
  });
  app.get('/query/v1/openapi.json', async () => openapi);
  app.post<{ Params: { dataset: string } }>('/query/v1/:dataset', async (req, reply) => {
    const peer = peerOf(req.raw.socket as TLSSocket);
    const answer = await opts.service.handle({ certFingerprint: peer?.fingerprint ?? null, certValidity: peer?.validity, ip: req.socket.remoteAddress ?? '', dataset: req.params.dataset, body: req.body });
    return reply.code(answer.status).send(answer.body);
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: { code: 'not-found', message: 'POST /query/v1/{dataset}; the API is described at /query/v1/openapi.json' } }));
  // Nothing about the server or other links in errors: a stable code and a short message.
  app.setErrorHandler((error: Error & { statusCode?: number }, _req, reply) => {
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) opts.log.error({ err: error.message }, 'query request failed');
    return reply.code(status).send({ error: status === 500 ? { code: 'internal', message: 'the request could not be answered' } : { code: 'request.invalid', message: 'the request is not valid JSON of the documented shape' } });
  });
  await app.listen({ host: opts.config.query.host, port: opts.config.query.port });
  const addr = app.server.address();
  return { port: typeof addr === 'object' && addr ? addr.port : opts.config.query.port, close: () => app.close() };
}
