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

export function isUserError(err: unknown): err is UserError {
  return err instanceof UserError;
}
