import { z } from 'zod';
import { checkFields, type DatasetCatalog, type FieldSpec, TRANSFORMS } from './datasets';
import { isValidDate, type IsoDate } from './dates';
import { isIP } from 'node:net';
import { ipAllowed, parseCidr } from './net';
import { ok, refuse, type Result } from './result';
import { checkScope, scopeSchema } from './scope';

/** R3.5: identifiers one link may look up in a day, online and in batches together, unless its form says otherwise. */
export const DEFAULT_MAX_IDS_PER_DAY = 1000;

/** R2.1: the provision methods of form item 3. */
export const METHODS = ['sftp-pull', 'sftp-push', 'email', 'online-query', 'batch-query'] as const;
export type Method = (typeof METHODS)[number];

const SHA256_FP = /^SHA256:[A-Za-z0-9+/]{43}$/;
const HOST = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$|^[0-9.]+$|^[0-9a-fA-F:]+$/;
export const USERNAME = /^[a-z_][a-z0-9_.-]{1,31}$/;

export const pushEndpointSchema = z.object({
  host: z.string().regex(HOST, 'not a host name or address'),
  port: z.number().int().min(1).max(65535),
  user: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/, 'not a valid user name'),
  dir: z.string().min(1).max(1024).refine((d) => !d.includes('\0'), 'contains NUL'),
  fingerprint: z.string().regex(SHA256_FP, 'must be a SHA256:… fingerprint as ssh-keygen -lf prints it'),
});
export type PushEndpoint = z.infer<typeof pushEndpointSchema>;

/**
 * Everything on the application form (R3.1) for one revision of a link. Revisions are immutable:
 * a change makes a new one (R5.1).
 */
export const revisionContentSchema = z.object({
  dataset: z.string().min(1),
  fields: z.array(z.object({ name: z.string().min(1), transform: z.enum(TRANSFORMS).optional() })).min(1),
  legalBasis: z.string().trim().min(1).max(2000),
  purpose: z.string().trim().min(1).max(2000),
  department: z.string().trim().min(1).max(200),
  officer: z.string().trim().min(1).max(200),
  supervisor: z.string().trim().min(1).max(200),
  period: z.object({ from: z.string(), to: z.string() }),
  disposal: z.string().trim().min(1).max(2000),
  methods: z.array(z.enum(METHODS)).min(1),
  allowIps: z.array(z.string()).min(1),
  account: z.string().nullable(),
  push: pushEndpointSchema.nullable(),
  email: z.array(z.email()),
  schedule: z.string().nullable(),
  pgpFingerprint: z.string().regex(/^[0-9A-F]{40}$/),
  rulesDocument: z.number().int().positive().nullable(),
  stopOn: z.string().nullable(),
  /** online-query: SHA-256 fingerprints (64 hex digits) of the agency's registered client certificates. */
  clientCerts: z.array(z.string().regex(/^[0-9A-F]{64}$/)).default([]),
  /** R3.4: the records the link may receive, beside the fields. */
  scope: scopeSchema,
  /** R3.5: identifiers the link may look up per Taipei day, across every query process and host. */
  maxIdsPerDay: z.number().int().min(1).max(10_000_000),
});
export type RevisionContent = z.infer<typeof revisionContentSchema>;

/**
 * The checks of R3.1/R3.2 on a whole revision: the shape, the dataset and fields, the period, the
 * allow-list, and that every channel has its endpoint. Returns the problems (empty when acceptable).
 */
export function checkRevision(content: RevisionContent, catalogs: ReadonlyMap<string, DatasetCatalog>): string[] {
  const parsed = revisionContentSchema.safeParse(content);
  if (!parsed.success) {
    return parsed.error.issues.map((i) => `${i.path.join('.') || 'application'}: ${i.message}`);
  }
  const problems: string[] = [];
  const catalog = catalogs.get(content.dataset);
  if (!catalog) {
    problems.push(`unknown dataset '${content.dataset}' (known: ${[...catalogs.keys()].join(', ')})`);
  } else {
    problems.push(...checkFields(catalog, content.fields as FieldSpec[]));
    problems.push(...checkScope(catalog, content.scope));
  }
  const { from, to } = content.period;
  if (!isValidDate(from)) problems.push(`use period start '${from}' is not a date (YYYY-MM-DD)`);
  if (!isValidDate(to)) problems.push(`use period end '${to}' is not a date (YYYY-MM-DD)`);
  if (isValidDate(from) && isValidDate(to) && from > to) problems.push(`use period starts (${from}) after it ends (${to})`);
  for (const ip of content.allowIps) if (!parseCidr(ip)) problems.push(`'${ip}' is not an IP address or CIDR`);
  if (new Set(content.methods).size !== content.methods.length) problems.push('a provision method is listed twice');
  if (content.methods.includes('sftp-pull') && !content.account) problems.push('sftp-pull needs an SFTP account');
  if (content.methods.includes('batch-query') && !content.account) problems.push('batch-query needs an SFTP account');
  if (content.account !== null && !USERNAME.test(content.account)) {
    problems.push(`account '${content.account}' is not a valid user name (lowercase letters, digits, _ . -; 2–32 chars)`);
  }
  if (content.methods.includes('sftp-push') && !content.push) problems.push("sftp-push needs the agency server's host, user, directory and host-key fingerprint");
  if (content.methods.includes('email') && content.email.length === 0) problems.push('email needs at least one e-mail address');
  if (content.methods.includes('online-query') && content.clientCerts.length === 0) problems.push("online-query needs at least one client certificate (the agency system's TLS client certificate)");
  // Pushes go only to designated addresses (form item 3): a literal push host must be on the allow-list
  // (a host name is checked against it when it is resolved, at every push).
  if (content.push && isIP(content.push.host) && !ipAllowed(content.push.host, content.allowIps)) {
    problems.push(`push host ${content.push.host} is not in the link's allowed IPs (${content.allowIps.join(', ')})`);
  }
  if (content.stopOn !== null && !isValidDate(content.stopOn)) problems.push(`stop date '${content.stopOn}' is not a date`);
  return problems;
}

/**
 * R8.2: the widest range an allow-list entry may name. The allow-list designates dedicated machines,
 * not networks: a /24 of IPv4 or a /56 of IPv6 (a site's allocation) is the most a handful of
 * machines can need; anything wider (0.0.0.0/0, ::/0, a /16) opens the link to whoever sits there.
 */
export const WIDEST_MACHINE_PREFIX = { 4: 24, 6: 56 } as const;

/** Why this entry is no list of dedicated machines, or null when it is one (or not a CIDR at all: checked elsewhere). */
export function machineRangeProblem(text: string): string | null {
  const c = parseCidr(text);
  if (!c) return null;
  const widest = WIDEST_MACHINE_PREFIX[c.family];
  if (c.prefix >= widest) return null;
  return `'${text.trim()}' is wider than a /${widest}: an allow-list names dedicated machines, not networks (R8.2); list the machines' addresses`;
}

/** R8.2: the problems of an allow-list as a list of dedicated machines (empty when acceptable). */
export function allowListProblems(allowIps: readonly string[]): string[] {
  return allowIps.map(machineRangeProblem).filter((p): p is string => p !== null);
}

/** NIA's formal reply (form item 9) as recorded: its number and date. */
export interface ReplyLetter {
  no: string;
  date: IsoDate;
}

/**
 * R-F9: a link (or a change) takes effect only with NIA's formal reply letter: its number, and its
 * date, which cannot lie after the day it is recorded (a reply not yet sent approves nothing).
 * `what` names the decision for the message (`link 12`, `change request 7`).
 */
export function checkReplyLetter(given: { letterNo?: string | null; letterDate?: string | null }, today: IsoDate, what: string): Result<ReplyLetter> {
  const no = given.letterNo?.trim() ?? '';
  const date = given.letterDate?.trim() ?? '';
  if (!no || !date) {
    return refuse('approve.letter-missing', `${what} cannot be approved without NIA's reply letter: give its number and date (form item 9, R-F9)`, { field: 'letterNo', invalid: true });
  }
  if (no.length > 200) return refuse('approve.letter-no', "the reply letter's number is longer than 200 characters", { field: 'letterNo', invalid: true });
  if (!isValidDate(date)) return refuse('approve.letter-date', `the reply letter's date '${date}' is not a date (YYYY-MM-DD)`, { field: 'letterDate', invalid: true });
  if (date > today) return refuse('approve.letter-future', `the reply letter's date ${date} is in the future (today is ${today}): a reply letter is recorded once it is sent`, { field: 'letterDate' });
  return ok({ no, date });
}
