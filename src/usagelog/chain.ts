import crypto from 'node:crypto';

/** The fields of a record that its digest covers, in their stored form. */
export interface LogRecordBody {
  seq: number;
  at: string;
  type: string;
  agency: string | null;
  linkId: number | null;
  revision: number | null;
  actor: string | null;
  ip: string | null;
  channel: string | null;
  object: string | null;
  detail: string;
}

export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every level: one text for one value, whoever writes it. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('canonical JSON: non-finite number');
    return JSON.stringify(value ?? null);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

// crypto.hash (Node ≥ 20.12) hashes in one call, without a Hash object: verify makes two per record.
const oneShot = (crypto as { hash?: (alg: string, data: string, enc: 'hex') => string }).hash;

export const sha256Hex: (text: string) => string = oneShot
  ? (text) => oneShot('sha256', text, 'hex')
  : (text) => crypto.createHash('sha256').update(text, 'utf8').digest('hex');

/** digest = SHA-256(canonical JSON of the record). */
export function recordDigest(r: LogRecordBody): string {
  return recordDigestOf(r.seq, r.at, r.type, r.agency, r.linkId, r.revision, r.actor, r.ip, r.channel, r.object, r.detail);
}

/** The definition `recordDigestOf` implements, kept for the test that holds them together. */
export function recordDigestGeneric(r: LogRecordBody): string {
  return sha256Hex(
    canonicalJson({
      seq: r.seq,
      at: r.at,
      type: r.type,
      agency: r.agency,
      link: r.linkId,
      revision: r.revision,
      actor: r.actor,
      ip: r.ip,
      channel: r.channel,
      object: r.object,
      detail: r.detail,
    }),
  );
}

const q = (v: string | null): string => (v === null ? 'null' : JSON.stringify(v));
const n = (v: number | null): string => (v === null ? 'null' : String(v));

/**
 * The same text as `canonicalJson` of the object `recordDigest` hashes, written out with its keys
 * already in order: verify runs it over millions of records (test/unit/usagelog-chain.test.ts
 * checks the two agree).
 */
export function recordDigestOf(
  seq: number, at: string, type: string, agency: string | null, linkId: number | null, revision: number | null,
  actor: string | null, ip: string | null, channel: string | null, object: string | null, detail: string,
): string {
  return sha256Hex(
    `{"actor":${q(actor)},"agency":${q(agency)},"at":${q(at)},"channel":${q(channel)},"detail":${q(detail)},"ip":${q(ip)},"link":${n(linkId)},"object":${q(object)},"revision":${n(revision)},"seq":${seq},"type":${q(type)}}`,
  );
}

/**
 * hash = SHA-256(prev_hash ‖ digest), both as lowercase hex. Chaining digests (not records) lets an
 * evidence package show other agencies' records as digests only and still verify.
 */
export function chainHash(prevHash: string, digest: string): string {
  return sha256Hex(prevHash + digest);
}
