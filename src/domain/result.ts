/** A rule's answer: the new value, or a typed refusal a user can act on. */
export interface Refusal {
  readonly code: string;
  readonly message: string;
}
export type Result<T> = { ok: true; value: T } | { ok: false; refusal: Refusal };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const refuse = <T = never>(code: string, message: string): Result<T> => ({ ok: false, refusal: { code, message } });
