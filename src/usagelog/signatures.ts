import * as openpgp from 'openpgp';
import { detachedSignature, loadSigningKey, signingPublicKeyArmored } from '../crypto';
import { UserError } from '../errors';

/** NIA's key as a verifier holds it: the public key and its fingerprint. */
export interface Verifier {
  key: openpgp.PublicKey;
  fingerprint: string;
  armored: string;
}

export async function readVerifier(armored: string, what = 'public key'): Promise<Verifier> {
  let key: openpgp.PublicKey;
  try {
    key = (await openpgp.readKey({ armoredKey: armored })).toPublic();
  } catch {
    throw new UserError(`${what}: not an armored OpenPGP public key`, 'key.invalid');
  }
  return { key, fingerprint: key.getFingerprint().toUpperCase(), armored: key.armor() };
}

/** The installation's own signing key, public half. */
export const installationVerifier = (keysDir: string): Promise<Verifier> => readVerifier(signingPublicKeyArmored(keysDir), `NIA signing key in ${keysDir}`);

/** NIA's private key and its fingerprint, for signing statements about the log. */
export async function loadSigner(keysDir: string): Promise<{ key: openpgp.PrivateKey; fingerprint: string }> {
  const key = await loadSigningKey(keysDir);
  return { key, fingerprint: key.getFingerprint().toUpperCase() };
}

/** An armored detached signature over the UTF-8 bytes of `text` (`gpg --verify sig file` checks it). */
export const signText = (text: string, key: openpgp.PrivateKey): Promise<string> => detachedSignature(Buffer.from(text, 'utf8'), key);

/** Does `armoredSignature` verify over the UTF-8 bytes of `text` with this key? Never throws. */
export async function signatureValid(text: string, armoredSignature: string, verifier: Verifier): Promise<boolean> {
  try {
    const signature = await openpgp.readSignature({ armoredSignature });
    const message = await openpgp.createMessage({ binary: Buffer.from(text, 'utf8'), format: 'binary' });
    const r = await openpgp.verify({ message, signature, verificationKeys: verifier.key, expectSigned: true, format: 'binary' });
    await r.signatures[0].verified;
    return true;
  } catch {
    return false;
  }
}
