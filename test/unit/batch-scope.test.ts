import { checkScope, describeScope, formatScope, parseScopeText, scopeFromInput, subjectsOf, type Scope } from '../../src/domain';
import { compileScope } from '../../src/extract/scope-sql';
import { loadCatalogs } from '../../src/registry';

const catalog = loadCatalogs().get('entry_exit')!;
const scopeOf = (text: string, maxSubjects?: number): Scope => {
  const r = scopeFromInput({ text, maxSubjects });
  if (!r.ok) throw new Error(r.refusal.message);
  return r.value;
};

describe('R3.4 the scope condition subjects', () => {
  it('R3.4: `subjects` parses with the default size limit, `--max-subjects` sets it, and the text form round-trips', () => {
    expect(parseScopeText('subjects; direction in exit')).toEqual({ ok: true, value: [{ op: 'subjects', max: 10_000 }, { field: 'direction', op: 'in', values: ['exit'] }] });
    const s = scopeOf('subjects; direction in exit', 1000);
    expect(subjectsOf(s)).toEqual({ op: 'subjects', max: 1000 });
    expect(formatScope(s)).toBe('subjects max 1000; direction in exit');
    expect(scopeOf(formatScope(s))).toEqual(s);
    expect(checkScope(catalog, s)).toEqual([]);
  });

  it('R3.4: --max-subjects without subjects, a bad size, or subjects twice are refused', () => {
    expect(scopeFromInput({ text: 'direction in exit', maxSubjects: 5 })).toMatchObject({ ok: false, refusal: { code: 'scope.subjects' } });
    expect(scopeFromInput({ text: 'subjects', maxSubjects: 0 })).toMatchObject({ ok: false, refusal: { code: 'scope.subjects' } });
    expect(parseScopeText('subjects max many')).toMatchObject({ ok: false, refusal: { code: 'scope.subjects' } });
    expect(checkScope(catalog, { all: false, conditions: [{ op: 'subjects', max: 5 }, { op: 'subjects', max: 6 }] })).toEqual(['scope: subjects is given twice']);
  });

  it('R3.4: the form and manifests say it in words, zh-TW and English', () => {
    const s = scopeOf('subjects; direction in exit', 1000);
    expect(describeScope(s, catalog, 'zh')).toBe('對象：僅限機關名單所列之人（至多1000人）；出入境別：出境');
    expect(describeScope(s, catalog, 'en')).toContain("persons: only those on the agency's subject list (at most 1000)");
  });

  it('R3.4: compiled without its list a subjects scope matches nothing; with it, the list is a table the predicate reads, values never in the SQL', () => {
    const s = scopeOf('subjects; direction in exit');
    expect(compileScope(s, catalog, '2026-03-01').sql).toContain('FALSE');
    const c = compileScope(s, catalog, '2026-03-01', { column: 'person_id', ids: ['A800000014'], added: [] });
    expect(c.sql).toBe('("person_id" IN (SELECT id FROM temp.nl_subjects)) AND ("direction" IN (@sc0))');
    expect(c.sql).not.toContain('A800000014');
    expect(c.subjects).toMatchObject({ ids: ['A800000014'], added: [] });
    expect(() => compileScope(s, catalog, '2026-03-01', { column: 'name_en', ids: [], added: [] })).toThrow(/cannot name persons by name_en/);
  });
});
