import { reportCsv, reportHtml, usageReport, type LogEntry } from '../../src/usagelog';
import { approvedLink, cleanupKeys, makeAgencyKeys, servicesOn, type AgencyKeys } from '../helpers/world';
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
  world.registry.addAgency({ code: 'A002', name: '勞動部' }, 'test');
  link3 = await approvedLink(world, keys, { agency: 'A002', account: 'a002' });
  const add = (when: string, e: LogEntry) => w.append(e, when);
  const built = (when: string, linkId: number, rows: number, fields: string, agency = 'A001') =>
    add(when, { type: 'extract.built', agency, linkId, revision: 1, actor: 'worker', channel: 'extract', object: `D-${when}`, detail: { rows, fields, bytes: rows * 10 } });
  const dl = (when: string, linkId: number, account: string, ip: string, bytes: number, result: string) =>
    add(when, { type: 'file.downloaded', agency: 'A001', linkId, actor: account, ip, channel: 'sftp-pull', object: `f-${when}`, detail: { bytes, result } });
  // 2025-12-31 23:59 Taipei: outside. 2026-01-01 00:00 Taipei: inside.
  built('2025-12-31T15:59:00.000Z', link1, 999, 'person_id');
  built('2025-12-31T16:00:00.000Z', link1, 100, 'person_id,nationality:mask');
  dl('2026-01-11T02:00:00.000Z', link1, 'a001', '10.0.0.1', 1000, 'complete');
  dl('2026-01-12T02:00:00.000Z', link1, 'a001', '10.0.0.2', 500, 'partial');
  add('2026-01-20T02:00:00.000Z', { type: 'auth.failed', agency: 'A001', linkId: link1, actor: 'a001', ip: '10.0.0.9', detail: { method: 'publickey', reason: 'key.unknown' } });
  add('2026-01-20T02:01:00.000Z', { type: 'auth.failed', agency: 'A001', linkId: link1, actor: 'a001', ip: '10.0.0.9', detail: { method: 'publickey', reason: 'signature.invalid' } });
  add('2026-01-20T02:02:00.000Z', { type: 'auth.failed', ip: '10.0.0.66', detail: { method: 'publickey', reason: 'account.unknown', username: 'root' } });
  built('2026-02-05T02:00:00.000Z', link1, 50, 'person_id,nationality:mask');
  built('2026-02-06T02:00:00.000Z', link2, 10, 'person_id');
  dl('2026-02-06T03:00:00.000Z', link1, 'a001', '10.0.0.1', 2000, 'complete');
  built('2026-02-07T02:00:00.000Z', link3, 7777, 'person_id', 'A002');
  add('2026-03-01T02:00:00.000Z', { type: 'file.pushed', agency: 'A001', linkId: link1, actor: 'worker', channel: 'sftp-push', object: 'p1', detail: { bytes: 300 } });
  built('2026-03-31T16:00:00.000Z', link1, 888, 'person_id'); // 2026-04-01 Taipei: outside
});
afterEach(() => w.close());

const NOW = new Date('2026-04-02T00:00:00Z');

describe('report usage (R4.2, R6.4, R9.1)', () => {
  it("one link's figures match the log", () => {
    const r = usageReport(w.cdb, { linkId: link1 }, '2026-01-01', '2026-03-31', NOW);
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
      { month: '2026-01', deliveries: 1, rows: 100, downloads: 2, bytesDownloaded: 1500, pushes: 0, failedLogins: 2 },
      { month: '2026-02', deliveries: 1, rows: 50, downloads: 1, bytesDownloaded: 2000, pushes: 0, failedLogins: 0 },
      { month: '2026-03', deliveries: 0, rows: 0, downloads: 0, bytesDownloaded: 0, pushes: 1, failedLogins: 0 },
    ]);
    expect(r.events).toEqual({ 'extract.built': 2, 'file.downloaded': 3, 'auth.failed': 2, 'file.pushed': 1 });
  });

  it("an agency's report covers its links and nothing of other agencies", () => {
    const r = usageReport(w.cdb, { agency: 'a001' }, '2026-01-01', '2026-03-31', NOW);
    expect(r.scope).toEqual({ agency: 'A001', linkId: null, links: [link1, link2] });
    expect(r.deliveries).toMatchObject({ count: 3, rows: 160, byLink: [{ linkId: link1, count: 2, rows: 150 }, { linkId: link2, count: 1, rows: 10 }] });
    expect(r.fields).toEqual([
      { field: 'person_id', deliveries: 3, rows: 160 },
      { field: 'nationality:mask', deliveries: 2, rows: 150 },
    ]);
    expect(r.months.map((m) => m.deliveries)).toEqual([1, 2, 0]);
    expect(usageReport(w.cdb, { agency: 'A002' }, '2026-01-01', '2026-03-31', NOW).deliveries).toMatchObject({ count: 1, rows: 7777 });
  });

  it('CSV and HTML carry the same figures; HTML escapes what the log holds', () => {
    w.append({ type: 'file.downloaded', agency: 'A001', linkId: link1, actor: '<script>x</script>', ip: '10.0.0.1', detail: { bytes: 1, result: 'complete' } }, '2026-03-02T02:00:00.000Z');
    const r = usageReport(w.cdb, { linkId: link1 }, '2026-01-01', '2026-03-31', NOW);
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

  it('refuses a scope that does not exist or is ambiguous', () => {
    expect(() => usageReport(w.cdb, {}, '2026-01-01', '2026-03-31', NOW)).toThrow(/--agency CODE or --link ID/);
    expect(() => usageReport(w.cdb, { agency: 'A001', linkId: 1 }, '2026-01-01', '2026-03-31', NOW)).toThrow(/one of them/);
    expect(() => usageReport(w.cdb, { agency: 'Z999' }, '2026-01-01', '2026-03-31', NOW)).toThrow(/no agency Z999/);
    expect(() => usageReport(w.cdb, { linkId: 999 }, '2026-01-01', '2026-03-31', NOW)).toThrow(/no link 999/);
    expect(() => usageReport(w.cdb, { linkId: link1 }, '2026-03-31', '2026-01-01', NOW)).toThrow(/before --from/);
  });
});
