// Taiwan's national ID and UI number (統一證號): one letter, nine digits, the last a check digit.

/** Letter values of the national ID / UI number check digit (A=10 … with the historic I, O, W–Z). */
const ID_LETTER_VALUE: Record<string, number> = {
  A: 10, B: 11, C: 12, D: 13, E: 14, F: 15, G: 16, H: 17, I: 34, J: 18, K: 19, L: 20, M: 21,
  N: 22, O: 35, P: 23, Q: 24, R: 25, S: 26, T: 27, U: 28, V: 29, W: 32, X: 30, Y: 31, Z: 33,
};

/** `body` is the eight digits after the letter (without the check digit), as a number ≥ 10 000 000. */
export function idCheckDigit(letter: string, body: number): number {
  const v = ID_LETTER_VALUE[letter];
  let sum = Math.floor(v / 10) + (v % 10) * 9;
  for (let w = 1; w <= 8; w++) {
    sum += (body % 10) * w;
    body = Math.floor(body / 10);
  }
  return (10 - (sum % 10)) % 10;
}

/**
 * A national ID (second digit 1/2) or a new-format UI number, 統一證號 (second digit 8/9, used for ARCs
 * since 2021): one letter, nine digits, the last a check digit.
 */
export function isValidTaiwanId(s: string): boolean {
  if (!/^[A-Z][1289]\d{8}$/.test(s)) return false;
  return idCheckDigit(s[0], Number(s.slice(1, 9))) === Number(s[9]);
}
