import { writeFileSync } from 'node:fs';
import { loadConfig } from '../../src/config';
import { listAnomalies, scanAnomalies, type AnomalySettings, type LogEntry } from '../../src/usagelog';
import { logWorld, type LogWorld } from './usagelog-world';

let w: LogWorld;
let settings: AnomalySettings;
beforeEach(async () => {
  w = await logWorld();
  settings = loadConfig({ dataDir: w.dataDir }, {}).anomaly;
});
afterEach(() => w.close());

// Tuesday 2026-03-10 in Asia/Taipei (UTC+8): 10:00 local is 02:00Z.
const TUE_10 = '2026-03-10T02:00:00.000Z';
const at = (base: string, minutes: number) => new Date(Date.parse(base) + minutes * 60_000).toISOString();
const scan = () => scanAnomalies(w.cdb, settings, new Date('2026-03-20T00:00:00Z'));
const rules = async () => (await listAnomalies(w.cdb)).map((a) => a.rule);
const add = (e: LogEntry, when: string) => w.append(e, when);
const download = (when: string, o: Partial<LogEntry> = {}, bytes = 1000) =>
  add({ type: 'file.downloaded', agency: 'A001', linkId: 7, actor: 'a001', ip: '10.0.0.1', channel: 'sftp-pull', object: `f-${when}.csv.pgp`, detail: { bytes, result: 'complete' }, ...o }, when);
const MiB = 1024 * 1024;

describe('R7.1 refused connections from unlisted addresses', () => {
  it('triggers on perDay refusals of one address in a day (aggregated records count)', async () => {
    await add({ type: 'connection.refused', ip: '203.0.113.9', detail: { count: 3, reasons: { 'ip.not-allowed': 3 } } }, TUE_10);
    await scan();
    expect(await rules()).toEqual([]);
    await add({ type: 'connection.refused', ip: '203.0.113.9', detail: { count: 2, reasons: { 'ip.not-allowed': 2 } } }, at(TUE_10, 60));
    await scan();
    const [a] = await listAnomalies(w.cdb);
    expect(a).toMatchObject({ rule: 'refused-ip', ip: '203.0.113.9', evidence: [1, 2], count: 2, detail: expect.objectContaining({ refused: 5 }) });
  });
  it('does not trigger below the threshold, or for refusals of listed addresses (capacity, bans)', async () => {
    await add({ type: 'connection.refused', ip: '203.0.113.9', detail: { count: 4, reasons: { 'ip.not-allowed': 4 } } }, TUE_10);
    await add({ type: 'connection.refused', ip: '10.0.0.1', detail: { count: 50, reasons: { capacity: 40, banned: 10 } } }, TUE_10);
    await scan();
    expect(await rules()).toEqual([]);
  });
});

describe('R7.1 repeated failed logins', () => {
  const fail = (when: string, ip = '198.51.100.7') => add({ type: 'auth.failed', agency: 'A001', linkId: 7, actor: 'a001', ip, detail: { method: 'publickey', reason: 'key.unknown' } }, when);
  it('triggers on threshold failures within the window, also when split across scans, stored once', async () => {
    for (let i = 0; i < 3; i++) await fail(at(TUE_10, i));
    await scan();
    for (let i = 3; i < 5; i++) await fail(at(TUE_10, i));
    await scan();
    await scan();
    await fail(at(TUE_10, 6));
    await scan();
    const list = await listAnomalies(w.cdb);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ rule: 'failed-logins', ip: '198.51.100.7', linkId: 7, count: 6, evidence: [1, 2, 3, 4, 5, 6] });
  });
  it('does not trigger when the failures are spread out, or come from different addresses', async () => {
    for (let i = 0; i < 5; i++) await fail(at(TUE_10, i * 16));
    for (let i = 0; i < 4; i++) await fail(at(TUE_10, i), `192.0.2.${i + 1}`);
    await scan();
    expect(await rules()).toEqual([]);
  });
});

describe("R7.1 download volume far above the link's baseline", () => {
  // A download every day of the 30 days before: the trailing daily average.
  const history = async (perDay: number) => {
    for (let d = 30; d >= 1; d--) await download(at(TUE_10, -d * 1440), {}, perDay);
  };
  it('triggers when a day exceeds factor × the trailing daily average and minBytes', async () => {
    await history(MiB);
    await download(TUE_10, {}, 8 * MiB);
    await download(at(TUE_10, 30), {}, 8 * MiB);
    await scan();
    expect((await listAnomalies(w.cdb)).filter((a) => a.rule === 'volume')).toMatchObject([{ key: 'volume:7:2026-03-10', linkId: 7, evidence: [31, 32], detail: expect.objectContaining({ bytes: 16 * MiB, baselinePerDay: MiB }) }]);
  });
  it('does not trigger within the factor, below minBytes, or without any history', async () => {
    await history(3 * MiB);
    await download(TUE_10, {}, 12 * MiB); // 4× the average
    await download(at(TUE_10, 1440), { linkId: 8, object: 'x' }, 50 * MiB); // link 8 has no history
    await download(at(TUE_10, 1440), {}, 9 * MiB); // below minBytes
    await scan();
    expect((await rules()).filter((r) => r === 'volume')).toEqual([]);
  });
});

describe('R7.1 downloads outside business hours (Asia/Taipei)', () => {
  it('triggers at night and at the weekend', async () => {
    await download('2026-03-10T15:30:00.000Z'); // 23:30 Tuesday in Taipei
    await download('2026-03-14T02:00:00.000Z'); // 10:00 Saturday
    await scan();
    expect((await listAnomalies(w.cdb)).map((a) => [a.rule, a.key]).sort()).toEqual([
      ['off-hours', 'off-hours:7:2026-03-10'],
      ['off-hours', 'off-hours:7:2026-03-14'],
    ]);
  });
  it('does not trigger inside business hours (also when UTC says otherwise), or when the zone is configured so', async () => {
    await download(TUE_10);
    await download('2026-03-10T09:59:00.000Z'); // 17:59 Taipei
    await scan();
    expect(await rules()).toEqual([]);
    settings = { ...settings, businessHours: { ...settings.businessHours, timeZone: 'UTC', start: '00:00', end: '23:59', weekdays: [0, 1, 2, 3, 4, 5, 6] } };
    await download('2026-03-14T02:00:00.000Z');
    await scan();
    expect(await rules()).toEqual([]);
  });
});

describe('R7.1 the same file downloaded many times', () => {
  it('triggers on threshold downloads of one file within the window', async () => {
    for (let i = 0; i < 3; i++) await download(at(TUE_10, i * 60), { object: 'entry_exit-D1.csv.pgp' });
    await scan();
    expect(await listAnomalies(w.cdb)).toMatchObject([{ rule: 'repeated-download', key: 'repeated-download:7:entry_exit-D1.csv.pgp', count: 3 }]);
  });
  it('R7.1 counts the downloads a summed record stands for (its opens), not records', async () => {
    await download(TUE_10, { object: 'summed.csv.pgp', detail: { bytes: 3000, result: 'complete', opens: 3 } });
    await scan();
    expect(await listAnomalies(w.cdb)).toMatchObject([{ rule: 'repeated-download', key: 'repeated-download:7:summed.csv.pgp', detail: { downloads: 3 } }]);
  });
  it('does not trigger for fewer downloads, or the same count spread over days', async () => {
    await download(TUE_10, { object: 'a.csv.pgp' });
    await download(at(TUE_10, 60), { object: 'a.csv.pgp' });
    for (let i = 0; i < 3; i++) await download(at(TUE_10, i * 1500), { object: 'b.csv.pgp' });
    await scan();
    expect((await rules()).filter((r) => r === 'repeated-download')).toEqual([]);
  });
});

describe('R7.1 attempts on a suspended or ended link', () => {
  it('triggers on logins refused because the link may not be used, and on use while the log shows it suspended', async () => {
    await add({ type: 'auth.failed', agency: 'A001', linkId: 7, actor: 'a001', ip: '10.0.0.1', detail: { method: 'publickey', reason: 'link.not-active' } }, TUE_10);
    await add({ type: 'link.approved', agency: 'A002', linkId: 9, actor: 'nia' }, at(TUE_10, -10000));
    await add({ type: 'link.suspended', agency: 'A002', linkId: 9, actor: 'nia' }, at(TUE_10, -5000));
    await download(at(TUE_10, 5), { agency: 'A002', linkId: 9 });
    await scan();
    expect((await listAnomalies(w.cdb)).map((a) => [a.rule, a.linkId, a.detail.status]).sort()).toEqual([
      ['inactive-link', 7, 'link.not-active'],
      ['inactive-link', 9, 'suspended'],
    ]);
  });
  it('does not trigger for failures of other kinds, or use after the link was resumed', async () => {
    await add({ type: 'auth.failed', agency: 'A001', linkId: 7, actor: 'a001', ip: '10.0.0.1', detail: { method: 'publickey', reason: 'key.unknown' } }, TUE_10);
    await add({ type: 'link.approved', agency: 'A002', linkId: 9, actor: 'nia' }, at(TUE_10, -10000));
    await add({ type: 'link.suspended', agency: 'A002', linkId: 9, actor: 'nia' }, at(TUE_10, -5000));
    await add({ type: 'link.resumed', agency: 'A002', linkId: 9, actor: 'nia' }, at(TUE_10, -100));
    await download(at(TUE_10, 5), { agency: 'A002', linkId: 9 });
    await scan();
    expect(await rules()).toEqual([]);
  });
});

// An answered online look-up of link 7: `ids` identifiers with the keyed hashes h<first>…, `found` of them known
// (undefined: a record written before look-ups said how many were found).
const lookup = (when: string, ids: number, found: number | undefined, o: Partial<LogEntry> = {}, first = 0) =>
  add(
    {
      type: 'query.answered',
      agency: 'A001',
      linkId: 7,
      actor: 'cert:0123456789abcdef',
      ip: '10.0.0.1',
      channel: 'online-query',
      object: 'entry_exit',
      detail: { ids, ...(found === undefined ? {} : { found }), returned: found ?? 0, reference: '移署字第1150001號', idHashes: Array.from({ length: ids }, (_, i) => `h${first + i}`), cert: '0123456789abcdef', idsToday: 0 },
      ...o,
    },
    when,
  );
const ofRule = async (rule: string) => (await listAnomalies(w.cdb)).filter((a) => a.rule === rule);

describe("R3.5, R7.1 identifiers looked up far above the link's baseline", () => {
  // 20 identifiers every day of the 30 days before: the trailing daily average.
  const history = async (perDay: number, linkId = 7) => {
    for (let d = 30; d >= 1; d--) await lookup(at(TUE_10, -d * 1440), perDay, perDay, { linkId });
  };
  it('R7.1 query-volume: a day with more than factor × the trailing daily average (and minIds) is an anomaly, also when split across scans', async () => {
    await history(20);
    await lookup(TUE_10, 50, 50, {}, 1000);
    await lookup(at(TUE_10, 10), 50, 50, {}, 2000);
    await scan();
    expect(await ofRule('query-volume')).toEqual([]); // 100 = 5 × 20: not above the factor
    await lookup(at(TUE_10, 20), 50, 50, {}, 3000);
    await scan();
    expect(await ofRule('query-volume')).toMatchObject([{ key: 'query-volume:7:2026-03-10', linkId: 7, agency: 'A001', count: 3, evidence: [31, 32, 33], detail: expect.objectContaining({ ids: 150, baselinePerDay: 20, baselineDays: 30 }) }]);
  });
  it('R7.1 query-volume: within the factor, below minIds, or without any history is no anomaly', async () => {
    await history(20);
    await lookup(TUE_10, 90, 90); // 4.5× the average
    await history(10, 8);
    await lookup(TUE_10, 60, 60, { linkId: 8 }); // 6× the average, but below minIds
    await lookup(TUE_10, 400, 400, { linkId: 9 }); // link 9 has no history
    await scan();
    expect(await ofRule('query-volume')).toEqual([]);
  });
});

describe('R3.5, R7.1 many distinct identifiers looked up by one link in a day', () => {
  it('R7.1 query-distinct: perDay distinct identifiers in a Taipei day is an anomaly', async () => {
    for (let i = 0; i < 5; i++) await lookup(at(TUE_10, i * 30), 100, 100, {}, i * 100);
    await scan();
    expect(await ofRule('query-distinct')).toMatchObject([{ key: 'query-distinct:7:2026-03-10', linkId: 7, count: 5, detail: expect.objectContaining({ distinct: 500, perDay: 500 }) }]);
  });
  it('R7.1 query-distinct: the same persons asked again, fewer than perDay, or spread over days is no anomaly', async () => {
    for (let i = 0; i < 6; i++) await lookup(at(TUE_10, i * 30), 100, 100); // one case list checked six times
    for (let i = 0; i < 5; i++) await lookup(at(TUE_10, i * 30), i < 4 ? 100 : 99, 50, { linkId: 8 }, i * 100); // 499
    for (let i = 0; i < 5; i++) await lookup(at(TUE_10, i * 1440), 100, 100, { linkId: 9 }, i * 100); // 500 over five days
    await scan();
    expect(await ofRule('query-distinct')).toEqual([]);
  });
});

describe('R3.5, R7.1 look-ups outside business hours (Asia/Taipei)', () => {
  it('R7.1 query-off-hours: a look-up at night or at the weekend is an anomaly', async () => {
    await lookup('2026-03-10T15:30:00.000Z', 1, 1); // 23:30 Tuesday in Taipei
    await lookup('2026-03-14T02:00:00.000Z', 1, 1); // 10:00 Saturday
    await scan();
    expect((await listAnomalies(w.cdb)).map((a) => [a.rule, a.key]).sort()).toEqual([
      ['query-off-hours', 'query-off-hours:7:2026-03-10'],
      ['query-off-hours', 'query-off-hours:7:2026-03-14'],
    ]);
    expect((await ofRule('query-off-hours'))[0].summary).toMatch(/look-up\(s\) outside business hours on 2026-03-1\d \(first at \d\d:\d\d Asia\/Taipei; hours 08:00–18:00\)/);
  });
  it('R7.1 query-off-hours: look-ups inside business hours (also when UTC says otherwise), or with the rule off, are no anomaly', async () => {
    await lookup(TUE_10, 1, 1);
    await lookup('2026-03-10T09:59:00.000Z', 1, 1); // 17:59 Taipei
    await scan();
    expect(await rules()).toEqual([]);
    settings = { ...settings, queryOffHours: { enabled: false } };
    await lookup('2026-03-10T15:30:00.000Z', 1, 1);
    await scan();
    expect(await rules()).toEqual([]);
  });
});

describe('R3.5, R7.1 look-ups of identifiers that match nobody (enumeration)', () => {
  it('R7.1 query-not-found: a day where most identifiers asked are unknown is an anomaly', async () => {
    await lookup(TUE_10, 20, 2, {}, 0);
    await lookup(at(TUE_10, 5), 20, 1, {}, 20);
    await lookup(at(TUE_10, 10), 20, 3, {}, 40);
    await scan();
    expect(await ofRule('query-not-found')).toMatchObject([{ key: 'query-not-found:7:2026-03-10', linkId: 7, ip: '10.0.0.1', evidence: [1, 2, 3], detail: expect.objectContaining({ ids: 60, found: 6, notFound: 54, share: 0.9 }) }]);
    expect((await ofRule('query-not-found'))[0].summary).toBe('link 7: 54 of 60 identifiers looked up on 2026-03-10 matched no record (90%; threshold 80%), as when identifiers are guessed');
  });
  it('R7.1 query-not-found: a normal share of misses, a few misses, or records that do not say what was found are no anomaly', async () => {
    await lookup(TUE_10, 60, 30); // half found: case work
    await lookup(TUE_10, 10, 0, { linkId: 8 }); // every one unknown, but only 10 asked
    await lookup(TUE_10, 60, undefined, { linkId: 9 }); // written before `found` was: unknown, not none
    await lookup(at(TUE_10, 1), 10, 0, { linkId: 9 });
    await scan();
    expect(await ofRule('query-not-found')).toEqual([]);
  });
});

describe('the scan', () => {
  it('resumes where it stopped, and a switched-off rule finds nothing', async () => {
    await download('2026-03-10T15:30:00.000Z');
    settings = { ...settings, offHours: { enabled: false } };
    expect(await scan()).toMatchObject({ scanned: 1, through: 1, detected: 0 });
    expect(await scan()).toMatchObject({ scanned: 0, through: 1 });
    settings = loadConfig({ dataDir: w.dataDir }, {}).anomaly;
    await download('2026-03-11T15:30:00.000Z');
    expect(await scan()).toMatchObject({ scanned: 1, through: 2, detected: 1 });
  });
  it('rules are configured in config.json, partly given rules keep their other defaults, bad values are refused', () => {
    writeFileSync(`${w.dataDir}/config.json`, JSON.stringify({ anomaly: { failedLogins: { threshold: 3 }, businessHours: { timeZone: 'Europe/Berlin' } } }));
    const c = loadConfig({ dataDir: w.dataDir }, {});
    expect(c.anomaly.failedLogins).toEqual({ enabled: true, threshold: 3, windowMinutes: 15 });
    expect(c.anomaly.businessHours).toMatchObject({ timeZone: 'Europe/Berlin', start: '08:00' });
    writeFileSync(`${w.dataDir}/config.json`, JSON.stringify({ anomaly: { businessHours: { timeZone: 'Mars/Olympus' } } }));
    expect(() => loadConfig({ dataDir: w.dataDir }, {})).toThrow(/anomaly.businessHours.timeZone/);
    writeFileSync(`${w.dataDir}/config.json`, JSON.stringify({ anomaly: { businessHours: { start: '8am' } } }));
    expect(() => loadConfig({ dataDir: w.dataDir }, {})).toThrow(/anomaly.businessHours.start/);
  });
  it('R7.1 the look-up rules are configured like the others: defaults, partly given rules keep the rest, a share above 1 is refused', () => {
    expect(settings).toMatchObject({
      queryVolume: { enabled: true, factor: 5, baselineDays: 30, minIds: 100 },
      queryDistinct: { enabled: true, perDay: 500 },
      queryOffHours: { enabled: true },
      queryNotFound: { enabled: true, share: 0.8, minIds: 50 },
    });
    writeFileSync(`${w.dataDir}/config.json`, JSON.stringify({ anomaly: { queryNotFound: { minIds: 200 }, queryDistinct: { enabled: false } } }));
    const c = loadConfig({ dataDir: w.dataDir }, {});
    expect(c.anomaly.queryNotFound).toEqual({ enabled: true, share: 0.8, minIds: 200 });
    expect(c.anomaly.queryDistinct).toEqual({ enabled: false, perDay: 500 });
    writeFileSync(`${w.dataDir}/config.json`, JSON.stringify({ anomaly: { queryNotFound: { share: 1.5 } } }));
    expect(() => loadConfig({ dataDir: w.dataDir }, {})).toThrow(/anomaly.queryNotFound.share/);
  });
});
