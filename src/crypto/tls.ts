import { X509Certificate } from 'node:crypto';
import { UserError } from '../errors';

/** Made with @peculiar/x509, loaded only when a certificate is made (init), not by every command. */
export async function generateServerCertificate(now: Date, names: { dns: string[]; ips: string[] }): Promise<{ key: string; cert: string }> {
  return (await import('./tls-generate')).generateServerCertificate(now, names);
}

/** SHA-256 of a certificate's DER, as 64 uppercase hex digits (openssl x509 -fingerprint -sha256, without colons). */
export function certFingerprint(cert: X509Certificate): string {
  return cert.fingerprint256.replace(/:/g, '').toUpperCase();
}

/**
 * An agency's client certificate for online query: a parseable X.509 certificate, valid now. It is
 * trusted by its registered fingerprint, not by a chain, so a self-signed certificate (which
 * `openssl req -x509` marks as a CA) is fine.
 */
export function inspectClientCertificate(pem: string, now: Date): { fingerprint: string; subject: string; validTo: string } {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    throw new UserError('client certificate: not a PEM or DER X.509 certificate', 'cert.unparseable');
  }
  if (/PRIVATE KEY/.test(pem)) throw new UserError('client certificate: the file holds a private key; give only the certificate', 'cert.private');
  const to = new Date(cert.validTo);
  if (to.getTime() <= now.getTime()) throw new UserError(`client certificate expired on ${to.toISOString().slice(0, 10)}`, 'cert.expired');
  // A few minutes of clock difference between the agency's machine and ours is not an error.
  if (new Date(cert.validFrom).getTime() > now.getTime() + 5 * 60_000) throw new UserError('client certificate is not valid yet', 'cert.not-yet-valid');
  return { fingerprint: certFingerprint(cert), subject: cert.subject.replace(/\n/g, ', '), validTo: to.toISOString() };
}
