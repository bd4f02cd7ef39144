import * as openpgp from 'openpgp';

const CLOCK_SKEW_MS = 5 * 60_000;

/** Why a request's OpenPGP envelope is refused: stable codes the agency is told. */
export type OpenRefusal = { code: 'not-encrypted' | 'signature.missing' | 'signature.unknown-key' | 'signature.invalid' | 'format.invalid'; message: string };

/**
 * Decrypt an uploaded request with NIA's key and check it carries a valid signature by the agency
 * key registered on the link. The plaintext is handed back only when that signature verifies: no
 * identifier is read from a request its agency did not sign. `maxPlainBytes` bounds the plaintext
 * (a small compressed upload must not expand without limit).
 */
export async function openRequest(bytes: Uint8Array, nia: openpgp.PrivateKey, agencyArmored: string, opts: { maxPlainBytes: number; now: Date }): Promise<{ ok: true; plain: Uint8Array; signer: string } | { ok: false; refusal: OpenRefusal }> {
  const no = (code: OpenRefusal['code'], message: string) => ({ ok: false as const, refusal: { code, message } });
  let message: openpgp.Message<Uint8Array>;
  try {
    message = await openpgp.readMessage({ binaryMessage: bytes });
  } catch {
    try {
      message = (await openpgp.readMessage({ armoredMessage: Buffer.from(bytes).toString('latin1') })) as openpgp.Message<Uint8Array>;
    } catch {
      return no('not-encrypted', 'the upload is not an OpenPGP message: sign it and encrypt it to NIA\'s key (gpg --sign --encrypt -r NIA)');
    }
  }
  const recipients = message.getEncryptionKeyIDs();
  if (recipients.length === 0) return no('not-encrypted', 'the request is not encrypted: encrypt it to NIA\'s key (gpg --sign --encrypt -r NIA)');
  const ours = nia.getKeys().map((k) => k.getKeyID());
  if (!recipients.some((r) => ours.some((o) => o.equals(r)))) return no('not-encrypted', 'the request is not encrypted to NIA\'s key (nia-link key export-signing gives it)');
  const agency = await openpgp.readKey({ armoredKey: agencyArmored });
  let data: Uint8Array;
  let signatures: Awaited<ReturnType<typeof openpgp.decrypt>>["signatures"];
  try {
    // Verified as of a few minutes after our clock: an agency's clock a little ahead of ours must not
    // make its fresh signature "from the future".
    const date = new Date(opts.now.getTime() + CLOCK_SKEW_MS);
    const r = await openpgp.decrypt({ message, decryptionKeys: nia, verificationKeys: agency, format: 'binary', date, config: { maxDecompressedMessageSize: opts.maxPlainBytes } });
    data = r.data as Uint8Array;
    signatures = r.signatures;
  } catch (err) {
    const why = (err as Error).message;
    if (/decompress|too large|size/i.test(why)) return no('format.invalid', `the request is larger than ${opts.maxPlainBytes} bytes once decrypted`);
    return no('not-encrypted', `the request cannot be decrypted with NIA's key: ${why}`);
  }
  if (data.length > opts.maxPlainBytes) return no('format.invalid', `the request is larger than ${opts.maxPlainBytes} bytes once decrypted`);
  if (signatures.length === 0) return no('signature.missing', 'the request is not signed: sign it with the agency key registered on the link (gpg --sign --encrypt -u AGENCY-KEY)');
  let unknown = false;
  for (const s of signatures) {
    try {
      await s.verified;
      return { ok: true, plain: data, signer: s.keyID.toHex().toUpperCase() };
    } catch (err) {
      if (/could not find signing key/i.test((err as Error).message)) unknown = true;
    }
  }
  if (unknown) return no('signature.unknown-key', `the request is signed by key ${signatures[0].keyID.toHex().toUpperCase()}, not by the agency key registered on the link`);
  return no('signature.invalid', 'the request\'s signature does not verify (altered after signing, or an expired or revoked key)');
}
