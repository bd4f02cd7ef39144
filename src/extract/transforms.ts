import { createHmac } from 'node:crypto';
import type { FieldSpec, Transform } from '../domain';

export type ValueFn = (v: unknown) => string;

const text = (v: unknown): string => (v === null || v === undefined ? '' : String(v));

/** `王小明` → `王*明`, `A800000014` → `A********4`: enough to recognise a record, not to identify a person. */
export function mask(value: string): string {
  const chars = Array.from(value);
  if (chars.length === 0) return '';
  if (chars.length <= 2) return chars[0] + '*';
  return chars[0] + '*'.repeat(chars.length - 2) + chars[chars.length - 1];
}

/** The channels whose answers carry a link's pseudonyms: each has a key of its own (R3.5). */
export type PseudonymChannel = 'file' | 'online-query' | 'batch-query';

/**
 * The key of a link's `hmac` pseudonyms on one channel (R3.5). Files keep the link's own secret (so a
 * person links across one link's deliveries, as before); every other channel derives its own key from
 * it, so a clear identifier sent to the online query never comes back as the pseudonym in the files.
 */
export function channelSecret(linkSecret: string, channel: PseudonymChannel): string {
  if (channel === 'file') return linkSecret;
  return createHmac('sha256', Buffer.from(linkSecret, 'hex')).update(`nia-link pseudonym channel ${channel}`).digest('hex');
}

/** The function that turns a source value into the delivered text, per field transform. */
export function valueFn(transform: Transform | undefined, hmacSecret: string): ValueFn {
  switch (transform) {
    case undefined:
      return text;
    case 'mask':
      return (v) => mask(text(v));
    case 'hmac': {
      const key = Buffer.from(hmacSecret, 'hex');
      // Keyed per link: the same person links across one agency's deliveries, never across agencies.
      return (v) => (v === null || v === undefined ? '' : createHmac('sha256', key).update(String(v)).digest('hex'));
    }
    case 'year':
      return (v) => text(v).slice(0, 4);
    case 'year-month':
      return (v) => text(v).slice(0, 7);
  }
}

export function projection(fields: readonly FieldSpec[], hmacSecret: string): ValueFn[] {
  return fields.map((f) => valueFn(f.transform, hmacSecret));
}
