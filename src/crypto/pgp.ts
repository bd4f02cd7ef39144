import * as openpgp from 'openpgp';
import { UserError } from '../errors';

/**
 * NIA's signing key: a v4 Ed25519 (legacy EdDSA) key with a Curve25519 encryption subkey, which
 * GnuPG 2.2 reads. (`type: 'curve25519'` would make an RFC 9580 v6 key that GnuPG 2.2 cannot read.)
 */
export async function generateSigningKey(name: string, email: string, now: Date): Promise<{ privateKey: string; publicKey: string; fingerprint: string }> {
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'ed25519Legacy',
    userIDs: [{ name, email }],
    date: now,
    format: 'armored',
  });
  const key = await openpgp.readKey({ armoredKey: publicKey });
  return { privateKey, publicKey, fingerprint: key.getFingerprint().toUpperCase() };
}

export interface AgencyKeyFacts {
  fingerprint: string;
  algorithm: string;
  userIds: string[];
  createdAt: string;
  expiresAt: string | null;
  armored: string;
}

function describe(info: openpgp.AlgorithmInfo): string {
  return info.bits ? `${info.algorithm}-${info.bits}` : info.curve ? `${info.algorithm}/${info.curve}` : info.algorithm;
}

/** R3.1/R-F7: only keys strong enough for personal data; Curve25519 or RSA of 2048 bits or more. */
function strongEnough(info: openpgp.AlgorithmInfo): boolean {
  if (info.algorithm.startsWith('rsa')) return (info.bits ?? 0) >= 2048;
  if (info.algorithm === 'eddsaLegacy' || info.algorithm === 'ed25519') return true;
  if (info.algorithm === 'ecdh') return String(info.curve) === 'curve25519Legacy';
  if (info.algorithm === 'x25519') return true;
  return false;
}

/**
 * Check an agency's public key before anything is encrypted to it: parseable, public only, v4 (GnuPG
 * 2.2), not revoked or expired at `now`, with a usable encryption key, and every algorithm strong.
 */
export async function inspectAgencyKey(armored: string, now: Date): Promise<AgencyKeyFacts> {
  let key: openpgp.Key;
  try {
    key = await openpgp.readKey({ armoredKey: armored });
  } catch {
    try {
      key = await openpgp.readKey({ binaryKey: Buffer.from(armored, 'binary') });
    } catch {
      throw new UserError('PGP key: not an OpenPGP public key (export it with `gpg --armor --export FPR`)', 'pgp.unparseable');
    }
  }
  if (key.isPrivate()) throw new UserError('PGP key: this is a secret key; send only the public key (gpg --armor --export)', 'pgp.private');
  const fpr = key.getFingerprint().toUpperCase();
  if (key.keyPacket.version !== 4) {
    throw new UserError(`PGP key ${fpr}: version ${key.keyPacket.version} keys are not accepted; use a v4 key (GnuPG 2.2 default)`, 'pgp.version');
  }
  if (await key.isRevoked(undefined, undefined, now)) throw new UserError(`PGP key ${fpr} is revoked`, 'pgp.revoked');
  const exp = await key.getExpirationTime();
  if (exp instanceof Date && exp.getTime() <= now.getTime()) {
    throw new UserError(`PGP key ${fpr} expired on ${exp.toISOString().slice(0, 10)}`, 'pgp.expired');
  }
  const primaryInfo = key.getAlgorithmInfo();
  if (!strongEnough(primaryInfo)) {
    throw new UserError(`PGP key ${fpr}: ${describe(primaryInfo)} is too weak; use RSA of 2048 bits or more, or Curve25519`, 'pgp.weak');
  }
  let enc: openpgp.Key | openpgp.Subkey;
  try {
    enc = await key.getEncryptionKey(undefined, now);
  } catch {
    throw new UserError(`PGP key ${fpr} has no valid encryption key (expired, revoked or missing)`, 'pgp.no-encryption-key');
  }
  const encInfo = enc.getAlgorithmInfo();
  if (!strongEnough(encInfo)) {
    throw new UserError(`PGP key ${fpr}: encryption key ${describe(encInfo)} is too weak; use RSA of 2048 bits or more, or Curve25519`, 'pgp.weak');
  }
  return {
    fingerprint: fpr,
    algorithm: enc === key ? describe(primaryInfo) : `${describe(primaryInfo)} + ${describe(encInfo)}`,
    userIds: key.getUserIDs(),
    createdAt: key.getCreationTime().toISOString(),
    expiresAt: exp instanceof Date ? exp.toISOString() : null,
    armored: key.armor(),
  };
}
