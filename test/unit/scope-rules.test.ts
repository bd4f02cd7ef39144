import { checkScope, describeScope, parseScopeText, type Scope, scopeFromInput } from '../../src/domain';
import { compileScope } from '../../src/extract';
import { loadCatalogs } from '../../src/registry';

const catalogs = loadCatalogs();
const entryExit = catalogs.get('entry_exit')!;
const residence = catalogs.get('residence')!;

/** The scope a text gives, checked against a catalog: its problems (empty = accepted). */
function problems(text: string, catalog = entryExit): string[] {
  const s = scopeFromInput({ text });
  if (!s.ok) return [s.refusal.message];
  return checkScope(catalog, s.value);
}
const scope = (text: string): Scope => {
  const s = scopeFromInput({ text });
  if (!s.ok) throw new Error(s.refusal.message);
  expect(checkScope(entryExit, s.value)).toEqual([]);
  return s.value;
};

describe('R3.4 the catalog marks the fields a scope may use, with their domains', () => {
  it('R3.4 code fields carry labelled code lists (nationality as ISO 3166-1 alpha-3) and date fields are marked', () => {
    const nat = entryExit.fields.find((f) => f.name === 'nationality')!;
    expect(nat.scope?.kind).toBe('codes');
    const codes = nat.scope?.kind === 'codes' ? nat.scope.codes : [];
    expect(codes.length).toBeGreaterThan(240);
    expect(codes.every((c) => /^[A-Z]{3}$/.test(c.code))).toBe(true);
    expect(codes.find((c) => c.code === 'VNM')?.label).toEqual({ zh: '越南', en: 'Vietnam' });
    for (const f of ['direction', 'port', 'visa_type', 'sex']) expect(entryExit.fields.find((x) => x.name === f)?.scope?.kind).toBe('codes');
    for (const f of ['permit_type', 'status']) expect(residence.fields.find((x) => x.name === f)?.scope?.kind).toBe('codes');
    for (const f of ['crossed_at', 'birth_date']) expect(entryExit.fields.find((x) => x.name === f)?.scope?.kind).toBe('date');
    for (const f of ['issued_on', 'expires_on']) expect(residence.fields.find((x) => x.name === f)?.scope?.kind).toBe('date');
    // Identifiers select nobody by value: that is what subject lists are for.
    expect(entryExit.fields.find((x) => x.name === 'person_id')?.scope).toBeUndefined();
  });
});

describe('R3.4 scope conditions', () => {
  it('R3.4 every operator parses on a code field and a date field', () => {
    expect(scope('nationality in VNM,IDN, PHL; direction not-in exit; crossed_at from 2025-01-01; crossed_at to 2025-12-31; birth_date within-days 400')).toEqual({
      all: false,
      conditions: [
        { field: 'nationality', op: 'in', values: ['VNM', 'IDN', 'PHL'] },
        { field: 'direction', op: 'not-in', values: ['exit'] },
        { field: 'crossed_at', op: 'from', value: '2025-01-01' },
        { field: 'crossed_at', op: 'to', value: '2025-12-31' },
        { field: 'birth_date', op: 'within-days', value: 400 },
      ],
    });
  });

  it.each([
    ['no_such_field in X', /unknown field 'no_such_field'/],
    ['person_id in A800000014', /'person_id' cannot select records/],
    ['nationality in ZZZ', /'ZZZ' not in the domain of 'nationality'/],
    ['nationality in VNM,,IDN', /empty element/],
    ['nationality in ', /not FIELD in/],
    ['crossed_at from 2025-12-31; crossed_at to 2025-01-01', /from 2025-12-31 is after to 2025-01-01/],
    ['nationality in VNM; nationality in IDN', /'nationality' is given twice/],
    ['crossed_at from 2025-01-01; crossed_at from 2025-02-01', /'crossed_at from' is given twice/],
    ['crossed_at within-days 0', /1 to 36600 days, not 0/],
    ['crossed_at within-days -3', /1 to 36600 days, not -3/],
    ['crossed_at within-days 30; crossed_at to 2025-01-01', /either within-days or from\/to/],
    ['crossed_at from 2025-02-30', /is not a date/],
    ['nationality from 2025-01-01', /code field: use in or not-in/],
    ['crossed_at in 2025', /date field: use from, to or within-days/],
    ['nationality in VNM,VNM', /listed twice/],
    ['nationality in VNM;; direction in entry', /is empty/],
    ['', /the scope is empty/],
    ['all', /needs a written justification/],
  ])('R3.4 %j is refused', (text, why) => {
    const p = problems(text);
    expect(p.length).toBeGreaterThan(0);
    expect(p.join('; ')).toMatch(why);
  });

  it('R3.4 an application without a scope is refused with one line that says how to give one', () => {
    const r = scopeFromInput({});
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.refusal.message).toMatch(/give conditions \('FIELD in V1,V2; .*'\), a scope file, or all with a written justification/);
  });

  it('R3.4 `all` needs a justification, and a justification goes only with all', () => {
    expect(scopeFromInput({ text: 'all', justification: '  ' }).ok).toBe(false);
    expect(scopeFromInput({ text: 'all', justification: '稅務稽核需全體旅客資料' })).toEqual({ ok: true, value: { all: true, justification: '稅務稽核需全體旅客資料' } });
    expect(scopeFromInput({ text: 'nationality in VNM', justification: 'x' }).ok).toBe(false);
    expect(scopeFromInput({ text: 'all', json: { all: true, justification: 'x' } }).ok).toBe(false);
  });

  it('R3.4 a scope file (JSON) is checked against the same schema, unknown keys refused', () => {
    expect(scopeFromInput({ json: { all: false, conditions: [{ field: 'nationality', op: 'in', values: ['VNM'] }] } }).ok).toBe(true);
    expect(scopeFromInput({ json: { all: false, conditions: [] } }).ok).toBe(false);
    expect(scopeFromInput({ json: { all: false, conditions: [{ field: 'nationality', op: 'in', values: ['VNM'], sql: '1=1' }] } }).ok).toBe(false);
    expect(scopeFromInput({ json: { all: true } }).ok).toBe(false);
    expect(scopeFromInput({ json: 'nationality in VNM' }).ok).toBe(false);
  });

  it('R3.4 the same parse on residence: permit type and expiry', () => {
    expect(problems('permit_type in migrant-work; expires_on from 2026-01-01; status in valid', residence)).toEqual([]);
    expect(problems('permit_type in tourist', residence).join()).toMatch(/'tourist' not in the domain/);
  });
});

describe('R3.4 one compiled predicate, values bound, never in the SQL text', () => {
  it('R3.4 the compiled SQL holds none of the scope values; they are bound parameters', () => {
    const s = scope("nationality in VNM,IDN; direction not-in exit; crossed_at from 2025-03-01; crossed_at to 2025-03-31");
    const c = compileScope(s, entryExit, '2026-12-06');
    for (const v of ['VNM', 'IDN', 'exit', '2025-03-01', '2025-04-01', '2025']) expect(c.sql).not.toContain(v);
    expect(c.sql).toBe('("nationality" IN (@sc0, @sc1)) AND ("direction" NOT IN (@sc2)) AND ("crossed_at" >= @sc3) AND ("crossed_at" < @sc4)');
    // `to` is inclusive of its Taipei day: values before the next day's start.
    expect(c.params).toEqual({ sc0: 'VNM', sc1: 'IDN', sc2: 'exit', sc3: '2025-03-01', sc4: '2025-04-01' });
  });

  it('R3.4 within-days N is the N Taipei days ending on the day of the delivery, that day included, and moves with it', () => {
    const s = scope('crossed_at within-days 400');
    const on = (day: string) => compileScope(s, entryExit, day);
    expect(on('2026-12-06').params).toEqual({ sc0: '2025-11-02', sc1: '2026-12-07' });
    expect(on('2026-12-07').params).toEqual({ sc0: '2025-11-03', sc1: '2026-12-08' });
    expect(on('2026-12-06').sql).toBe(on('2027-05-01').sql);
    expect(compileScope(scope('crossed_at within-days 1'), entryExit, '2026-12-06').params).toEqual({ sc0: '2026-12-06', sc1: '2026-12-07' });
  });

  it('R3.4 a whole-dataset scope compiles to no filter at all', () => {
    expect(compileScope({ all: true, justification: 'x' }, entryExit, '2026-12-06')).toEqual({ sql: 'TRUE', pgSql: 'TRUE', params: {} });
  });
});

describe('R3.4 the scope in words, from the catalog labels', () => {
  it('R3.4 zh-TW and English', () => {
    const s = scope('nationality in VNM,IDN,PHL; direction in entry; crossed_at within-days 400');
    expect(describeScope(s, entryExit, 'zh')).toBe('國籍：越南、印尼、菲律賓；出入境別：入境；出入境時間：製檔或查詢日前400日內');
    expect(describeScope(s, entryExit, 'en')).toBe('Nationality: Vietnam, Indonesia, Philippines; Direction (entry/exit): Entry; Time of crossing: within the 400 days up to the day of delivery or look-up');
    expect(describeScope(scope('crossed_at from 2025-01-01; crossed_at to 2025-06-30; visa_type not-in visitor'), entryExit)).toBe('出入境時間：2025-01-01至2025-06-30；簽證類別：除停留簽證以外');
    expect(describeScope({ all: true, justification: '全國稅務稽核' }, entryExit)).toBe('全部資料（理由：全國稅務稽核）');
  });
});
