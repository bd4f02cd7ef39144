import { existsSync, lstatSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { UserError } from '../errors';
import { createHmac, randomBytes } from 'node:crypto';
import { generateSigningKey } from './pgp';
import { generateServerCertificate } from './tls';
import { generateHostKey, publicKeyFingerprint } from './ssh';
import { replaceFile, writeFileOnce } from './secret-file';

/** The files of the keys directory. Private files are 0600 and never leave it. */
export const KEY_FILES = {
  signingPrivate: 'nia-signing.key.asc',
  signingPublic: 'nia-signing.pub.asc',
  hostEd25519: 'ssh_host_ed25519_key',
  hostRsa: 'ssh_host_rsa_key',
  clientEd25519: 'nia_client_ed25519_key',
  queryKey: 'query-server.key',
  queryCert: 'query-server.crt',
  queryIdSecret: 'query-id-hmac.key',
} as const;

/**
 * Whether a key is there. A symbolic link to nothing is refused rather than written through: whatever
 * it points to is not ours to create.
 */
function present(file: string): boolean {
  if (existsSync(file)) return true;
  let link = false;
  try {
    link = lstatSync(file).isSymbolicLink();
  } catch {
    /* nothing there */
  }
  if (link) throw new UserError(`key file ${file} is a symbolic link to nothing: remove it, then run \`nia-link init\` again`, 'keys.dangling-link');
  return false;
}

/** The public half of a key just made: replaces whatever was at its name (a link itself, never its target). */
function writePublic(file: string, content: string): void {
  replaceFile(file, content, 0o644);
}

export interface KeyInitReport {
  created: string[];
  kept: string[];
}

/** Create the keys that do not exist yet; keep every existing one. */
export async function ensureKeys(keysDir: string, now: Date): Promise<KeyInitReport> {
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  // Each key is written once, under a fresh name with O_EXCL, then linked into place: a racing init,
  // a planted link or a crash never leaves a key overwritten, half-written or written elsewhere.
  const report: KeyInitReport = { created: [], kept: [] };
  const note = (name: string, created: boolean) => (created ? report.created : report.kept).push(name);

  const priv = path.join(keysDir, KEY_FILES.signingPrivate);
  if (!present(priv)) {
    const k = await generateSigningKey('National Immigration Agency (nia-link signing)', 'nia-link@immigration.gov.tw', now);
    const made = writeFileOnce(priv, k.privateKey, 0o600);
    note(KEY_FILES.signingPrivate, made);
    if (made) writePublic(path.join(keysDir, KEY_FILES.signingPublic), k.publicKey);
  } else {
    note(KEY_FILES.signingPrivate, false);
  }
  for (const [name, type] of [
    [KEY_FILES.hostEd25519, 'ed25519'],
    [KEY_FILES.hostRsa, 'rsa'],
    [KEY_FILES.clientEd25519, 'ed25519'],
  ] as const) {
    const file = path.join(keysDir, name);
    if (present(file)) {
      note(name, false);
      continue;
    }
    const kp = generateHostKey(type);
    const made = writeFileOnce(file, kp.private, 0o600);
    if (made) writePublic(`${file}.pub`, kp.public + '\n');
    note(name, made);
  }
  // The online-query listener's TLS certificate (an operator may replace both files with their own).
  const qkey = path.join(keysDir, KEY_FILES.queryKey);
  if (!present(qkey)) {
    const c = await generateServerCertificate(now, { dns: ['localhost'], ips: ['127.0.0.1', '::1'] });
    const made = writeFileOnce(qkey, c.key, 0o600);
    if (made) writePublic(path.join(keysDir, KEY_FILES.queryCert), c.cert);
    note(KEY_FILES.queryKey, made);
  } else {
    note(KEY_FILES.queryKey, false);
  }
  // The key of the hashes under which queried ids go into the usage log (who-queried recomputes them).
  const idSecret = path.join(keysDir, KEY_FILES.queryIdSecret);
  note(KEY_FILES.queryIdSecret, !present(idSecret) && writeFileOnce(idSecret, randomBytes(32).toString('hex') + '\n', 0o600));
  return report;
}

/** The online-query listener's key and certificate (PEM). */
export function queryServerCredentials(keysDir: string): { key: string; cert: string } {
  return { key: readKeyFile(keysDir, KEY_FILES.queryKey), cert: readKeyFile(keysDir, KEY_FILES.queryCert) };
}

/** The keyed hash under which a queried id goes into the usage log (who-queried recomputes it). */
export function keyedIdHash(secret: Buffer, id: string): string {
  return createHmac('sha256', secret).update(id.trim()).digest('hex');
}

/** The secret of the keyed hashes of queried ids. */
export function queryIdSecret(keysDir: string): Buffer {
  return Buffer.from(readKeyFile(keysDir, KEY_FILES.queryIdSecret).trim(), 'hex');
}

function readKeyFile(keysDir: string, name: string): string {
  const file = path.join(keysDir, name);
  try {
    return readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`key file ${file} is missing: run \`nia-link init\``, 'keys.missing');
  }
}

/** NIA's SSH client public key, for agencies to authorise on the servers NIA pushes to. */
export function clientPublicKey(keysDir: string): string {
  return readKeyFile(keysDir, `${KEY_FILES.clientEd25519}.pub`);
}

export function signingPublicKeyArmored(keysDir: string): string {
  return readKeyFile(keysDir, KEY_FILES.signingPublic);
}

export async function loadSigningKey(keysDir: string): Promise<openpgp.PrivateKey> {
  return openpgp.readPrivateKey({ armoredKey: readKeyFile(keysDir, KEY_FILES.signingPrivate) });
}

export function hostKeys(keysDir: string): { type: string; private: string; public: string; fingerprint: string }[] {
  return [KEY_FILES.hostEd25519, KEY_FILES.hostRsa].map((name) => {
    const pub = readKeyFile(keysDir, `${name}.pub`).trim();
    return { type: pub.split(' ')[0], private: readKeyFile(keysDir, name), public: pub, fingerprint: publicKeyFingerprint(pub, path.join(keysDir, `${name}.pub`)) };
  });
}
