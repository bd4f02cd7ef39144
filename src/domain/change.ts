import { type FieldSpec } from './datasets';
import { addMonths, isValidDate } from './dates';
import { type LinkStatus } from './link';
import { ok, refuse, type Result } from './result';
import { type Method, type PushEndpoint, type RevisionContent } from './revision';
import type { Scope } from './scope';

/** R5.1 / form item 6: what an agency may change on an approved link. */
export const CHANGE_KINDS = ['officer', 'supervisor', 'rules', 'method', 'fields', 'scope', 'max-ids-per-day', 'ips', 'pgp-key', 'client-cert', 'extend', 'stop'] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

/** A change as filed, with files already resolved to stored ids or fingerprints. */
export type Change =
  | { kind: 'officer'; officer: string }
  | { kind: 'supervisor'; supervisor: string }
  | { kind: 'rules'; rulesDocument: number }
  | { kind: 'method'; methods: Method[]; account?: string | null; push?: PushEndpoint | null; email?: string[]; clientCerts?: string[] }
  | { kind: 'client-cert'; clientCerts: string[] }
  | { kind: 'fields'; fields: FieldSpec[] }
  | { kind: 'scope'; scope: Scope }
  | { kind: 'max-ids-per-day'; maxIdsPerDay: number }
  | { kind: 'ips'; allowIps: string[] }
  | { kind: 'pgp-key'; pgpFingerprint: string }
  | { kind: 'extend'; to: string }
  // R12.1: the agency's written request to stop, by its letter's reference.
  | { kind: 'stop'; stopOn: string; letterNo?: string; letterDate?: string | null };

/** Only an approved link that has not ended takes change requests. */
export function canFileChange(status: LinkStatus): Result<true> {
  if (status === 'active' || status === 'suspended') return ok(true);
  return refuse('change.link-status', `a ${status} link takes no change requests (only active or suspended links do)`);
}

/**
 * The next revision's content: the current one with the change applied. The caller still runs
 * checkRevision on the result (field catalog, endpoints).
 */
export function applyChange(current: RevisionContent, change: Change): Result<RevisionContent> {
  switch (change.kind) {
    case 'officer':
      return ok({ ...current, officer: change.officer });
    case 'supervisor':
      return ok({ ...current, supervisor: change.supervisor });
    case 'rules':
      return ok({ ...current, rulesDocument: change.rulesDocument });
    case 'method':
      return ok({
        ...current,
        methods: change.methods,
        account: change.account !== undefined ? change.account : current.account,
        push: change.push !== undefined ? change.push : change.methods.includes('sftp-push') ? current.push : null,
        email: change.email !== undefined ? change.email : change.methods.includes('email') ? current.email : [],
        clientCerts: change.clientCerts !== undefined ? change.clientCerts : change.methods.includes('online-query') ? current.clientCerts : [],
      });
    case 'client-cert':
      return ok({ ...current, clientCerts: change.clientCerts });
    case 'fields':
      return ok({ ...current, fields: change.fields });
    case 'scope':
      return ok({ ...current, scope: change.scope });
    case 'max-ids-per-day':
      return ok({ ...current, maxIdsPerDay: change.maxIdsPerDay });
    case 'ips':
      return ok({ ...current, allowIps: change.allowIps });
    case 'pgp-key':
      return ok({ ...current, pgpFingerprint: change.pgpFingerprint });
    case 'extend':
      if (!isValidDate(change.to)) return refuse('change.extend.date', `'${change.to}' is not a date (YYYY-MM-DD)`);
      if (change.to <= current.period.to) {
        return refuse('change.extend.not-later', `an extension must end after the current end ${current.period.to}`);
      }
      return ok({ ...current, period: { ...current.period, to: change.to } });
    case 'stop':
      if (!isValidDate(change.stopOn)) return refuse('change.stop.date', `'${change.stopOn}' is not a date (YYYY-MM-DD)`);
      return ok({ ...current, stopOn: change.stopOn });
  }
}

/**
 * R11.1: an agency's notice to end a link must come at least one calendar month before the date it
 * takes effect (notice on 2026-01-31 → effective 2026-02-28 at the earliest).
 */
export function checkTerminationNotice(noticeDate: string, effective: string): Result<true> {
  if (!isValidDate(noticeDate)) return refuse('terminate.notice-date', `'${noticeDate}' is not a date (YYYY-MM-DD)`);
  if (!isValidDate(effective)) return refuse('terminate.effective', `'${effective}' is not a date (YYYY-MM-DD)`);
  const earliest = addMonths(noticeDate, 1);
  if (effective < earliest) {
    return refuse(
      'terminate.notice-too-short',
      `termination needs written notice at least one month ahead: with notice on ${noticeDate} the earliest effective date is ${earliest} (R11.1)`,
    );
  }
  return ok(true);
}
