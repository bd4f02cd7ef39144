import { z } from 'zod';
import { ok, refuse, type Result } from './result';

export interface AgencyFacts {
  readonly code: string;
  readonly government: boolean;
}

export const AGENCY_CODE = /^[A-Z0-9][A-Z0-9_-]{1,31}$/;

/**
 * R14.1: a non-government body (非公務機關) is applied for by its competent authority, which must be
 * a government agency already registered. A government agency has no sponsor.
 */
export function checkSponsor(agency: AgencyFacts, sponsor: AgencyFacts | null): Result<true> {
  if (agency.government) {
    return sponsor ? refuse('agency.sponsor.unexpected', 'a government agency has no sponsoring authority') : ok(true);
  }
  if (!sponsor) {
    return refuse('agency.sponsor.missing', 'a non-government agency needs a sponsoring authority: its competent authority (R14.1)', { field: 'sponsor', invalid: true });
  }
  if (!sponsor.government) {
    return refuse('agency.sponsor.not-government', `sponsor ${sponsor.code} is not a government agency (R14.1)`);
  }
  return ok(true);
}

const EMAIL = z.email();
/** Enough for a unit's shared mailbox and its officers; a longer list is a mailing list's job. */
export const MAX_CONTACT_EMAILS = 20;

/**
 * R14.2: an agency's contact addresses, where notices about its links go (and, for a sponsoring
 * authority, notices about the bodies it sponsors). Each given once, as written, at most
 * MAX_CONTACT_EMAILS; an empty list clears them.
 */
export function checkContactEmails(list: readonly string[]): Result<string[]> {
  const out: string[] = [];
  for (const raw of list) {
    const address = raw.trim();
    if (!EMAIL.safeParse(address).success) return refuse('agency.email', `'${raw}' is not an e-mail address`);
    if (!out.some((a) => a.toLowerCase() === address.toLowerCase())) out.push(address);
  }
  if (out.length > MAX_CONTACT_EMAILS) return refuse('agency.email', `at most ${MAX_CONTACT_EMAILS} contact addresses per agency`);
  return ok(out);
}
