import { ok, refuse, type Result } from './result';

/** The link lifecycle of DESIGN.md: pending → active → suspended → active | terminated; or rejected. */
export const LINK_STATUSES = ['pending', 'active', 'suspended', 'terminated', 'rejected'] as const;
export type LinkStatus = (typeof LINK_STATUSES)[number];

export const END_REASONS = [
  'agency-notice',
  'stop-request',
  'inactivity',
  'expiry',
  'reapplication-required',
  'nia-decision',
] as const;
export type EndReason = (typeof END_REASONS)[number];

export type LinkEvent =
  | { kind: 'approve' }
  | { kind: 'reject' }
  | { kind: 'suspend' }
  | { kind: 'resume' }
  | { kind: 'terminate'; reason: EndReason };

/** Which events each status accepts, and where they lead. Everything else is refused. */
const TABLE: Record<LinkStatus, Partial<Record<LinkEvent['kind'], LinkStatus>>> = {
  pending: { approve: 'active', reject: 'rejected' },
  active: { suspend: 'suspended', terminate: 'terminated' },
  suspended: { resume: 'active', terminate: 'terminated' },
  terminated: {},
  rejected: {},
};

const VERB: Record<LinkEvent['kind'], string> = {
  approve: 'approved',
  reject: 'rejected',
  suspend: 'suspended',
  resume: 'resumed',
  terminate: 'terminated',
};

export function transition(status: LinkStatus, event: LinkEvent): Result<LinkStatus> {
  const next = TABLE[status][event.kind];
  if (next === undefined) {
    return refuse(
      `link.${event.kind}.refused`,
      `${/^[aeiou]/.test(status) ? 'an' : 'a'} ${status} link cannot be ${VERB[event.kind]}` +
        (status === 'terminated' || status === 'rejected' ? ' (it has ended; file a new application)' : ''),
    );
  }
  return ok(next);
}

/** Statuses in which a link's data may flow (SFTP, pushes, queries, scheduled extracts). */
export function isOperational(status: LinkStatus): boolean {
  return status === 'active';
}

/** A link may be used at `today` when it is active and today lies in its use period (both days included). */
export function usableOn(status: LinkStatus, period: { from: string; to: string }, today: string): Result<true> {
  if (status !== 'active') return refuse('link.not-active', `link is ${status}`);
  if (today < period.from) return refuse('link.period.not-started', `use period starts on ${period.from}`);
  if (today > period.to) return refuse('link.period.ended', `use period ended on ${period.to}`);
  return ok(true);
}

/**
 * The one question every channel (extracts, SFTP logins, pushes, online queries) asks before data
 * flows: is the link active, inside its use period, and not past an approved stop date (R3.3, R3.1,
 * R10.1, R12.1)? Dates are Taipei days.
 */
export function mayUse(link: { status: LinkStatus; endsOn: string | null }, period: { from: string; to: string }, today: string): Result<true> {
  const usable = usableOn(link.status, period, today);
  if (!usable.ok) return usable;
  if (link.endsOn !== null && link.endsOn <= today) return refuse('link.ending', `link ends on ${link.endsOn}`);
  return ok(true);
}
