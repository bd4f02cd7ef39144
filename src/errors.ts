/**
 * A mistake the user can fix: printed as one line naming the fix, never with a stack trace.
 * Everything else is a bug or an outage and is reported as such.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly code: string = 'user-error',
  ) {
    super(message);
    this.name = 'UserError';
  }
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
