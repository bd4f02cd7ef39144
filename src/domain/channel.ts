import { mayUse, type LinkStatus } from './link';
import { ipAllowed, normaliseIp } from './net';
import { ok, refuse, type Result } from './result';
import type { Method } from './revision';

/**
 * The ways data leaves: the provision methods of form item 3, plus `extract`, the building of a
 * delivery file that the file methods (pull, push, e-mail) then carry.
 */
export type Channel = Method | 'extract';

/** The file methods: a link with none of them has no use for a delivery file. */
const FILE_METHODS: readonly Method[] = ['sftp-pull', 'sftp-push', 'email'];

/**
 * Every refusal of "may this link use this channel from this address now", with what a client outside
 * NIA is told. The link's own state is one answer to the outside (`link.not-usable`, the reason in the
 * message); the operators' records keep the precise code.
 */
export const CHANNEL_REFUSALS = {
  'link.not-active': { client: 'link.not-usable', http: 403 },
  'link.period.not-started': { client: 'link.not-usable', http: 403 },
  'link.period.ended': { client: 'link.not-usable', http: 403 },
  'link.ending': { client: 'link.not-usable', http: 403 },
  'channel.not-approved': { client: 'channel.not-approved', http: 403 },
  'ip.not-allowed': { client: 'ip.not-allowed', http: 403 },
} as const;
export type ChannelRefusal = keyof typeof CHANNEL_REFUSALS;

/** What the rule reads of a link: its row, its current revision's methods and period, and its allow-list in force. */
export interface ChannelSubject {
  link: { id: number; status: LinkStatus; endsOn: string | null };
  content: { methods: readonly Method[]; period: { from: string; to: string } };
  /** The revision's allow-list less the machines of vendors removed since NIA last set it (R8.2). */
  allowIps: readonly string[];
}

/**
 * The one rule every channel asks before data flows (R3.1, R3.3, R8.1, R8.2, R10.1, R12.1): the link
 * is active, today (a Taipei day) lies in its use period and before an approved stop date, the channel
 * is approved on its current revision, and — when the other end's address is known — that address is
 * on the allow-list in force. Refusal codes come from CHANNEL_REFUSALS only.
 */
export function mayUseChannel(s: ChannelSubject, channel: Channel, at: { today: string; ip?: string }): Result<true> {
  const usable = mayUse(s.link, s.content.period, at.today);
  if (!usable.ok) return usable;
  const approved = channel === 'extract' ? s.content.methods.some((m) => FILE_METHODS.includes(m)) : s.content.methods.includes(channel);
  if (!approved) return refuse('channel.not-approved', `link ${s.link.id} is not approved for ${channel === 'extract' ? 'file delivery' : channel}`);
  if (at.ip !== undefined) {
    const ip = normaliseIp(at.ip);
    if (!ipAllowed(ip, s.allowIps)) return refuse('ip.not-allowed', `address ${ip} is not on link ${s.link.id}'s allow-list`);
  }
  return ok(true);
}

/** How a refusal of mayUseChannel is told to a client outside NIA (online query, batch request). */
export function clientRefusal(code: string): { code: string; http: number } {
  const r = (CHANNEL_REFUSALS as Record<string, { client: string; http: number }>)[code];
  return r ? { code: r.client, http: r.http } : { code, http: 403 };
}
