/** A rule's answer: the new value, or a typed refusal a user can act on. */
export interface Refusal {
  readonly code: string;
  readonly message: string;
  /** The input the refusal is about (the service's name for it), for a front-end to point at its own field. */
  readonly field?: string;
  /** An input missing or malformed, rather than a rule refusing well-formed input. */
  readonly invalid?: boolean;
}
export type Result<T> = { ok: true; value: T } | { ok: false; refusal: Refusal };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const refuse = <T = never>(code: string, message: string, about?: { field?: string; invalid?: boolean }): Result<T> => ({ ok: false, refusal: { code, message, ...about } });
