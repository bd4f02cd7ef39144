import { ok, refuse, type Result } from './result';

/**
 * R4.1: the eight topics point 4 requires an agency's management rules (應用移民資訊管理規定) to
 * cover, numbered as in the regulation.
 */
export const RULES_TOPICS = [
  { n: 1, zh: '使用目的（盤點使用範圍、頻率及欄位之必要性）', en: 'purpose: inventory of scope, frequency and fields' },
  { n: 2, zh: '定期督考稽核及配合移民署稽核之程序', en: 'periodic audits and cooperation with NIA audits' },
  { n: 3, zh: '使用者查詢資料之作業程序', en: 'user query procedure' },
  { n: 4, zh: '個人資料安全維護措施及資料安全管制', en: 'security measures for personal data' },
  { n: 5, zh: '委外廠商之程序、管理及罰則', en: 'outsourced vendor procedure, management and penalties' },
  { n: 6, zh: '違反個人資料保護法致當事人權益受損之責任', en: 'liability when misuse harms data subjects' },
  { n: 7, zh: '使用者違反管理規定之責任', en: "users' liability for violations" },
  { n: 8, zh: '系統帳號權限異動之作業程序', en: 'account and permission change procedure' },
] as const;

export const RULES_TOPIC_COUNT = RULES_TOPICS.length;

/** `1,2,3` or `1-8` → sorted distinct topic numbers; anything else is refused, never guessed. */
export function parseCovers(text: string): Result<number[]> {
  const out = new Set<number>();
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
    if (!m || lo < 1 || hi > RULES_TOPIC_COUNT || lo > hi) {
      return refuse('rules.covers', `'${part}' is not a topic number 1–${RULES_TOPIC_COUNT} (e.g. 1,2,3,4,5,6,7,8)`, { field: 'covers', invalid: true });
    }
    for (let n = lo; n <= hi; n++) out.add(n);
  }
  if (out.size === 0) return refuse('rules.covers', `a review needs the topic numbers the rules cover (1–${RULES_TOPIC_COUNT})`, { field: 'covers', invalid: true });
  return ok([...out].sort((a, b) => a - b));
}

/** The topics a review did not find covered. */
export function missingTopics(covers: readonly number[]): (typeof RULES_TOPICS)[number][] {
  return RULES_TOPICS.filter((t) => !covers.includes(t.n));
}

/** `3 (user query procedure), 8 (…)`: how a refusal names the missing topics. */
export function describeTopics(topics: readonly (typeof RULES_TOPICS)[number][]): string {
  return topics.map((t) => `${t.n} (${t.en})`).join(', ');
}

/**
 * R4.1: may a link be approved (or a rules change take effect) with this rules version and its
 * latest review? Only a version reviewed as covering all eight topics passes.
 */
export function checkRulesReviewed(doc: { id: number; version: number } | null, latestCovers: readonly number[] | null): Result<true> {
  if (!doc) {
    return refuse('rules.missing', 'no management rules (應用移民資訊管理規定) are on file for this link: the agency files them with the application (R3, R4.1)');
  }
  if (latestCovers === null) {
    return refuse(
      'rules.unreviewed',
      `management rules version ${doc.version} (document ${doc.id}) has not been reviewed: record the eight-topic checklist for it (R4.1)`,
    );
  }
  const missing = missingTopics(latestCovers);
  if (missing.length > 0) {
    return refuse(
      'rules.incomplete',
      `management rules version ${doc.version} (document ${doc.id}) do not cover topic${missing.length > 1 ? 's' : ''} ${describeTopics(missing)} of point 4 (R4.1)`,
    );
  }
  return ok(true);
}
