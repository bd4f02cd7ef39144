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
    return refuse('agency.sponsor.missing', 'a non-government agency needs --sponsor CODE: its competent authority (R14.1)');
  }
  if (!sponsor.government) {
    return refuse('agency.sponsor.not-government', `sponsor ${sponsor.code} is not a government agency (R14.1)`);
  }
  return ok(true);
}
