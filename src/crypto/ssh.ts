import { createHash, createPublicKey } from 'node:crypto';
import { utils } from 'ssh2';
import { UserError } from '../errors';

/** `SHA256:…` as `ssh-keygen -lf` prints it: base64 of the SHA-256 of the key blob, unpadded. */
export function sshFingerprint(publicBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '');
}

export interface SshPublicKeyFacts {
  algorithm: string;
  fingerprint: string;
  /** One line, `type base64 [comment]`, as in authorized_keys. */
  line: string;
}

const ACCEPTED = new Set(['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'sk-ssh-ed25519@openssh.com']);

/** An agency's SSH public key for an SFTP account: parseable by ssh2, public, of an accepted type. */
export function inspectSshPublicKey(text: string): SshPublicKeyFacts {
  const trimmed = text.trim();
  if (/PRIVATE KEY/.test(trimmed)) throw new UserError('SSH key: this is a private key; give the .pub file', 'ssh.private');
  if (trimmed.includes('\n')) throw new UserError('SSH key: expected one public key line (type base64 comment)', 'ssh.unparseable');
  const parsed = utils.parseKey(trimmed);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) throw new UserError('SSH key: not an OpenSSH public key (the .pub file)', 'ssh.unparseable');
  if (key.isPrivateKey()) throw new UserError('SSH key: this is a private key; give the .pub file', 'ssh.private');
  if (!ACCEPTED.has(key.type)) throw new UserError(`SSH key: type ${key.type} is not accepted (use ssh-ed25519, ecdsa or rsa ≥ 2048)`, 'ssh.type');
  if (key.type === 'ssh-rsa') {
    const bits = createPublicKey(key.getPublicPEM()).asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new UserError(`SSH key: RSA ${bits} bits is too weak (at least 2048)`, 'ssh.weak');
  }
  const blob = key.getPublicSSH();
  const comment = trimmed.split(/\s+/).slice(2).join(' ');
  return {
    algorithm: key.type,
    fingerprint: sshFingerprint(blob),
    line: `${key.type} ${blob.toString('base64')}${comment ? ' ' + comment : ''}`,
  };
}

const parsedKey = (text: string) => {
  const parsed = utils.parseKey(text);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  return !key || key instanceof Error ? null : key;
};

/**
 * New keys in OpenSSH format. ssh2's generator drops leading zero bytes of an Ed25519 public key, so
 * about one key in 256 comes out malformed (mscdex/ssh2#1390, #1513): a pair is kept only when both
 * halves parse and the private half holds the same public key; otherwise another is made.
 */
export function generateHostKey(type: 'ed25519' | 'rsa'): { private: string; public: string } {
  for (let attempt = 0; attempt < 16; attempt++) {
    const kp = type === 'rsa' ? utils.generateKeyPairSync('rsa', { bits: 3072 }) : utils.generateKeyPairSync('ed25519');
    const pub = parsedKey(kp.public);
    const priv = parsedKey(kp.private);
    if (pub && priv && priv.isPrivateKey() && pub.getPublicSSH().equals(priv.getPublicSSH())) return { private: kp.private, public: kp.public };
  }
  throw new Error(`could not generate a well-formed ${type} key`);
}

/** The fingerprint of a key file's public line; `file` names it in the error. */
export function publicKeyFingerprint(publicLine: string, file = 'the public key'): string {
  const key = parsedKey(publicLine);
  if (!key) throw new UserError(`${file} is not a well-formed OpenSSH public key: move it and its private key aside and run \`nia-link init\` to make new ones`, 'keys.malformed');
  return sshFingerprint(key.getPublicSSH());
}
