import { parseRequest } from '../../src/batch/request';
import { loadCatalogs } from '../../src/registry';

const catalogs = loadCatalogs();
const entryExit = catalogs.get('entry_exit')!;
const residence = catalogs.get('residence')!;
const parse = (text: string, maxIds = 100, catalog = entryExit) => parseRequest(Buffer.from(text, 'utf8'), catalog, { maxIds });

describe('R2.2 the request format: comments, a header naming a match key, one identifier a line', () => {
  it('R2.2: reads the reference, the key, and the identifiers in the order sent (CRLF, a BOM, blank lines and quotes allowed)', () => {
    const r = parse('\uFEFF# reference: 勞動發展署114年第12批外籍勞工查核\r\n# note: x\r\nperson_id\r\nA800000014\r\n\r\n"F271550231"\r\n');
    expect(r).toEqual({ ok: true, value: { keyField: 'person_id', reference: '勞動發展署114年第12批外籍勞工查核', ids: ['A800000014', 'F271550231'], lines: 2, duplicates: 0, invalidCount: 0, invalid: [] } });
  });

  it('R2.2: the matching keys come from the catalog: person_id or passport_no for entry_exit, arc_no for residence', () => {
    expect(parse('passport_no\nC12345678\n')).toMatchObject({ ok: true, value: { keyField: 'passport_no', ids: ['C12345678'] } });
    expect(parse('arc_no\nA800000014\n', 100, residence)).toMatchObject({ ok: true, value: { keyField: 'arc_no' } });
    expect(parse('person_id\nA800000014\n', 100, residence)).toMatchObject({ ok: false, refusal: { code: 'format.invalid' } });
    // A field that is not a match key, even one of the dataset, is no header.
    expect(parse('nationality\nVNM\n')).toMatchObject({ ok: false, refusal: { code: 'format.invalid', message: expect.stringContaining('person_id, passport_no') } });
  });

  it('R2.2: a wrong check digit, a lower-case or short id is counted as invalid with its line number and not looked up; duplicates once', () => {
    const r = parse('# reference: r\nperson_id\nA800000014\nA800000015\na800000014\nA8000000\nA800000014\n');
    expect(r).toMatchObject({ ok: true, value: { ids: ['A800000014'], lines: 5, duplicates: 1, invalidCount: 3 } });
    if (r.ok) expect(r.value.invalid.map((x) => x.line)).toEqual([4, 5, 6]);
  });

  it('R2.2: the check digit follows the national ID rule, letters I, O, W-Z included (UI numbers with 8/9 too)', () => {
    const ok = ['A123456789', 'I900000018', 'F271550231', 'A800000014'];
    for (const id of ok) expect(parse(`person_id\n${id}\n`)).toMatchObject({ ok: true });
    for (const id of ['A123456788', 'A323456789', 'AB23456789', 'A12345678']) expect(parse(`person_id\n${id}\n`)).toMatchObject({ ok: false, refusal: { code: 'format.invalid' } });
  });

  it('R2.2: refused format.invalid only when the header is missing or wrong, or no identifier is well-formed', () => {
    expect(parse('# reference: r\n')).toMatchObject({ ok: false, refusal: { code: 'format.invalid' } });
    expect(parse('person_id\n')).toMatchObject({ ok: false, refusal: { code: 'format.invalid', message: expect.stringContaining('no identifier') } });
    expect(parse('person_id\nx\ny\n')).toMatchObject({ ok: false, refusal: { code: 'format.invalid' } });
    expect(parseRequest(Buffer.from([0x70, 0xff, 0xfe, 0x0a]), entryExit, { maxIds: 10 })).toMatchObject({ ok: false, refusal: { code: 'format.invalid', message: expect.stringContaining('UTF-8') } });
  });

  it('R2.2: more identifier lines than the limit → ids.too-many (malformed ones count: they were sent)', () => {
    expect(parse('person_id\nA800000014\nx\nF271550231\n', 2)).toMatchObject({ ok: false, refusal: { code: 'ids.too-many' } });
    expect(parse('person_id\nA800000014\nF271550231\n', 2)).toMatchObject({ ok: true });
  });

  it('R2.2: a request without a reference parses (a subject list needs none); the caller requires it of a batch request', () => {
    expect(parse('person_id\nA800000014\n')).toMatchObject({ ok: true, value: { reference: null } });
    expect(parse('# reference:   \nperson_id\nA800000014\n')).toMatchObject({ ok: true, value: { reference: null } });
  });
});
