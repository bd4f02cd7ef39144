/**
 * What kind of mistake a UserError is, for front-ends to word and answer it (the console derives its
 * HTTP status from it):
 * - `not-found`: what was named does not exist;
 * - `invalid`: an input is missing or malformed (a date that is no date, an empty reason);
 * - `conflict`: it clashes with what is there (exists already, taken, done already);
 * - `refused`: well-formed, but the rules or the record's state do not allow it.
 */
export type ErrorKind = 'not-found' | 'invalid' | 'conflict' | 'refused';
export const ERROR_KINDS: readonly ErrorKind[] = ['not-found', 'invalid', 'conflict', 'refused'];

/** The kind a code's last part names by convention, for errors raised without one. */
export function kindOfCode(code: string): ErrorKind {
  const last = code.slice(code.lastIndexOf('.') + 1);
  if (last === 'unknown' || last === 'not-found' || code === 'not-initialised') return 'not-found';
  if (['exists', 'taken', 'unchanged', 'removed', 'twice', 'done'].includes(last)) return 'conflict';
  if (['invalid', 'required', 'date', 'too-long', 'period'].includes(last)) return 'invalid';
  return 'refused';
}

export interface UserErrorOptions {
  /** Default: what the code's last part says (kindOfCode). */
  kind?: ErrorKind;
  /**
   * The input the error is about, by the service's name for it (`reason`, `deadline`,
   * `letterNo`): a front-end points at its own field for it (the CLI names its flag). Messages name
   * the thing ("a reason is required"), never a front-end's field.
   */
  field?: string;
}

/**
 * A mistake the user can fix: printed as one line naming the fix, never with a stack trace.
 * Everything else is a bug or an outage and is reported as such. `code` is stable (tests, the
 * usage log and front-ends rely on it); the message may be reworded.
 */
export class UserError extends Error {
  readonly kind: ErrorKind;
  readonly field: string | undefined;
  constructor(
    message: string,
    readonly code: string = 'user-error',
    opts: UserErrorOptions | ErrorKind = {},
  ) {
    super(message);
    this.name = 'UserError';
    const o = typeof opts === 'string' ? { kind: opts } : opts;
    this.kind = o.kind ?? kindOfCode(code);
    this.field = o.field;
  }
}

/** An input the user must give and did not (or gave empty): "a reason is required". */
export function required(what: string, field: string, code = `${field}.required`): UserError {
  return new UserError(`${what} is required`, code, { kind: 'invalid', field });
}

/** A rule's refusal (domain/result.ts) as the error a user sees: its code, its input, invalid or refused. */
export function refusalError(r: { code: string; message: string; field?: string; invalid?: boolean }): UserError {
  return new UserError(r.message, r.code, { field: r.field, kind: r.invalid ? 'invalid' : undefined });
}

/**
 * A failure no retry can fix (link not usable, agency key expired, host key mismatch): a job that
 * meets one stops at once instead of backing off and trying again.
 */
export class PermanentError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'PermanentError';
  }
}

export function isUserError(err: unknown): err is UserError {
  return err instanceof UserError;
}

/**
 * Thrown by an attempt that lost its delivery to another attempt of the same job (a worker that stalled
 * past its job lock): it publishes nothing, records nothing and leaves the delivery to its new owner.
 */
export class SupersededAttempt extends Error {
  constructor(readonly delivery: number) {
    super(`delivery ${delivery}: another attempt of this job owns it now; this attempt's files were discarded`);
    this.name = 'SupersededAttempt';
  }
}
