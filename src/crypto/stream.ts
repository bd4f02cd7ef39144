import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import * as openpgp from 'openpgp';

export interface SealedFile {
  bytes: number;
  cipherSha256: string;
}

const NO_COMPRESSION = { preferredCompressionAlgorithm: openpgp.enums.compression.uncompressed };

/**
 * Sign with NIA's key and encrypt to the agency's key in one streaming pass, writing `file` (created
 * new, never overwritten). openpgp v6 takes and returns Web Streams; memory stays flat however large
 * the plaintext. Encrypting to a v4 key gives SEIPDv1, which GnuPG 2.2 reads.
 */
export async function signEncryptToFile(plain: ReadableStream<Uint8Array>, signingKey: openpgp.PrivateKey, encryptionKey: openpgp.Key, file: string): Promise<SealedFile> {
  const message = await openpgp.createMessage({ binary: plain, format: 'binary' });
  const encrypted = (await openpgp.encrypt({ message, encryptionKeys: encryptionKey, signingKeys: signingKey, format: 'binary', config: NO_COMPRESSION })) as ReadableStream<Uint8Array>;
  const hash = createHash('sha256');
  const out = createWriteStream(file, { flags: 'wx', mode: 0o640 });
  const failed = once(out, 'error').then(([e]) => Promise.reject(e));
  failed.catch(() => undefined);
  let bytes = 0;
  const reader = encrypted.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      hash.update(value);
      bytes += value.length;
      if (!out.write(value)) await Promise.race([once(out, 'drain'), failed]);
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } catch (err) {
    out.destroy();
    await reader.cancel().catch(() => undefined);
    throw err;
  }
  return { bytes, cipherSha256: hash.digest('hex') };
}

/** An armored detached signature over `content`: `gpg --verify file.asc file` checks it. */
export async function detachedSignature(content: Buffer, signingKey: openpgp.PrivateKey): Promise<string> {
  const message = await openpgp.createMessage({ binary: content, format: 'binary' });
  return (await openpgp.sign({ message, signingKeys: signingKey, detached: true, format: 'armored' })) as string;
}

export async function readAgencyEncryptionKey(armored: string): Promise<openpgp.Key> {
  return openpgp.readKey({ armoredKey: armored });
}
