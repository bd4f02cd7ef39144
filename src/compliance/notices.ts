import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DRILL_MARK, rocDate } from '../domain';
import { PROJECT_ROOT } from '../paths';

export const NOTICE_KINDS = ['finding', 'suspended', 'resumed', 'resume-refused', 'termination', 'ended', 'inactivity'] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

const DIR = path.join(PROJECT_ROOT, 'templates', 'notices');

/** 2026-12-01 → 115 年 12 月 1 日 (the text before it says 中華民國). */
export function rocText(date: string): string {
  const r = rocDate(date);
  return `${r.year} 年 ${r.month} 月 ${r.day} 日`;
}

/**
 * A notice's text from its template files (templates/notices/<kind>.<zh|en>.txt). Every `{{name}}`
 * must be given; a `*_roc` name is filled from the date of the same name without the suffix. A drill
 * installation's notices open with the drill mark, so none can pass for a real one.
 */
export function renderNotice(kind: NoticeKind, values: Record<string, string>, opts: { drill?: boolean } = {}): { zh: string; en: string } {
  const fill = (lang: 'zh' | 'en') =>
    (opts.drill ? `【${DRILL_MARK}】\n\n` : '') +
    readFileSync(path.join(DIR, `${kind}.${lang}.txt`), 'utf8').replace(/\{\{([a-z_]+)\}\}/g, (_, name: string) => {
      const roc = name.endsWith('_roc') ? values[name.slice(0, -4)] : undefined;
      const v = roc !== undefined ? rocText(roc) : values[name];
      if (v === undefined) throw new Error(`notice template ${kind}.${lang}: no value for {{${name}}}`);
      return v;
    });
  return { zh: fill('zh'), en: fill('en') };
}
