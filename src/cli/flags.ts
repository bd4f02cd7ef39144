import type { UserError } from '../errors';

/**
 * The command-line flag that carries each service input an error can be about (UserError.field):
 * services name the thing ("a reason is required"); the CLI adds the flag its user types.
 */
export const FLAG_OF_FIELD: Readonly<Record<string, string>> = {
  account: '--account',
  agencyOrLink: '--agency or --link',
  at: '--at',
  before: '--before',
  by: '--by',
  clientCerts: '--client-cert',
  code: '--code',
  completedOn: '--completed-on',
  confirmedOn: '--confirmed-on',
  contact: '--contact',
  covers: '--covers',
  date: '--date',
  deadline: '--deadline',
  doneOn: '--done-on',
  effective: '--effective',
  file: '--file',
  force: '--force',
  from: '--from',
  how: '--how',
  justification: '--scope-justification',
  key: '--key',
  kind: '--kind',
  letterDate: '--letter-date',
  letterNo: '--letter-no',
  machines: '--machines',
  maxSubjects: '--max-subjects',
  name: '--name',
  noticeDate: '--notice-date',
  parentId: '--parent',
  periodFrom: '--from',
  periodTo: '--to',
  pgpKey: '--pgp-key',
  reason: '--reason',
  rules: '--rules',
  scope: '--scope or --scope-file',
  sponsor: '--sponsor',
  sshKeys: '--ssh-key',
  stampedForm: '--stamped-form',
  summary: '--summary',
  text: '--text',
  to: '--to',
  value: '--value',
  vendors: '--vendor',
};

/** A user error as the CLI prints it: the message, and the flag to fix when it names an input. */
export function cliMessage(err: Pick<UserError, 'message' | 'field'>): string {
  const flag = err.field === undefined ? undefined : FLAG_OF_FIELD[err.field];
  return flag ? `${err.message} (${flag})` : err.message;
}
