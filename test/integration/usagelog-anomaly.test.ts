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
const rules = () => listAnomalies(w.cdb).map((a) => a.rule);
const add = (e: LogEntry, when: string) => w.append(e, when);
const download = (when: string, o: Partial<LogEntry> = {}, bytes = 1000) =>
  add({ type: 'file.downloaded', agency: 'A001', linkId: 7, actor: 'a001', ip: '10.0.0.1', channel: 'sftp-pull', object: `f-${when}.csv.pgp`, detail: { bytes, result: 'complete' }, ...o }, when);
const MiB = 1024 * 1024;

describe('R7.1 refused connections from unlisted addresses', () => {
  it('triggers on perDay refusals of one address in a day (aggregated records count)', async () => {
    add({ type: 'connection.refused', ip: '203.0.113.9', detail: { count: 3, reasons: { 'ip.not-allowed': 3 } } }, TUE_10);
    await scan();
    expect(rules()).toEqual([]);
    add({ type: 'connection.refused', ip: '203.0.113.9', detail: { count: 2, reasons: { 'ip.not-allowed': 2 } } }, at(TUE_10, 60));
    await scan();
    const [a] = listAnomalies(w.cdb);
    expect(a).toMatchObject({ rule: 'refused-ip', ip: '203.0.113.9', evidence: [1, 2], count: 2, detail: expect.objectContaining({ refused: 5 }) });
  });
  it('does not trigger below the threshold, or for refusals of listed addresses (capacity, bans)', async () => {
    add({ type: 'connection.refused', ip: '203.0.113.9', detail: { count: 4, reasons: { 'ip.not-allowed': 4 } } }, TUE_10);
    add({ type: 'connection.refused', ip: '10.0.0.1', detail: { count: 50, reasons: { capacity: 40, banned: 10 } } }, TUE_10);
    await scan();
    expect(rules()).toEqual([]);
  });
});

describe('R7.1 repeated failed logins', () => {
  const fail = (when: string, ip = '198.51.100.7') => add({ type: 'auth.failed', agency: 'A001', linkId: 7, actor: 'a001', ip, detail: { method: 'publickey', reason: 'key.unknown' } }, when);
  it('triggers on threshold failures within the window, also when split across scans, stored once', async () => {
    for (let i = 0; i < 3; i++) fail(at(TUE_10, i));
    await scan();
    for (let i = 3; i < 5; i++) fail(at(TUE_10, i));
    await scan();
    await scan();
    fail(at(TUE_10, 6));
    await scan();
    const list = listAnomalies(w.cdb);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ rule: 'failed-logins', ip: '198.51.100.7', linkId: 7, count: 6, evidence: [1, 2, 3, 4, 5, 6] });
  });
  it('does not trigger when the failures are spread out, or come from different addresses', async () => {
    for (let i = 0; i < 5; i++) fail(at(TUE_10, i * 16));
    for (let i = 0; i < 4; i++) fail(at(TUE_10, i), `192.0.2.${i + 1}`);
    await scan();
    expect(rules()).toEqual([]);
  });
});

describe("R7.1 download volume far above the link's baseline", () => {
  // A download every day of the 30 days before: the trailing daily average.
  const history = (perDay: number) => {
    for (let d = 30; d >= 1; d--) download(at(TUE_10, -d * 1440), {}, perDay);
  };
  it('triggers when a day exceeds factor × the trailing daily average and minBytes', async () => {
    history(MiB);
    download(TUE_10, {}, 8 * MiB);
    download(at(TUE_10, 30), {}, 8 * MiB);
    await scan();
    expect(listAnomalies(w.cdb).filter((a) => a.rule === 'volume')).toMatchObject([{ key: 'volume:7:2026-03-10', linkId: 7, evidence: [31, 32], detail: expect.objectContaining({ bytes: 16 * MiB, baselinePerDay: MiB }) }]);
  });
  it('does not trigger within the factor, below minBytes, or without any history', async () => {
    history(3 * MiB);
    download(TUE_10, {}, 12 * MiB); // 4× the average
    download(at(TUE_10, 1440), { linkId: 8, object: 'x' }, 50 * MiB); // link 8 has no history
    download(at(TUE_10, 1440), {}, 9 * MiB); // below minBytes
    await scan();
    expect(rules().filter((r) => r === 'volume')).toEqual([]);
  });
});

describe('R7.1 downloads outside business hours (Asia/Taipei)', () => {
  it('triggers at night and at the weekend', async () => {
    download('2026-03-10T15:30:00.000Z'); // 23:30 Tuesday in Taipei
    download('2026-03-14T02:00:00.000Z'); // 10:00 Saturday
    await scan();
    expect(listAnomalies(w.cdb).map((a) => [a.rule, a.key]).sort()).toEqual([
      ['off-hours', 'off-hours:7:2026-03-10'],
      ['off-hours', 'off-hours:7:2026-03-14'],
    ]);
  });
  it('does not trigger inside business hours (also when UTC says otherwise), or when the zone is configured so', async () => {
    download(TUE_10);
    download('2026-03-10T09:59:00.000Z'); // 17:59 Taipei
    await scan();
    expect(rules()).toEqual([]);
    settings = { ...settings, businessHours: { ...settings.businessHours, timeZone: 'UTC', start: '00:00', end: '23:59', weekdays: [0, 1, 2, 3, 4, 5, 6] } };
    download('2026-03-14T02:00:00.000Z');
    await scan();
    expect(rules()).toEqual([]);
  });
});

describe('R7.1 the same file downloaded many times', () => {
  it('triggers on threshold downloads of one file within the window', async () => {
    for (let i = 0; i < 3; i++) download(at(TUE_10, i * 60), { object: 'entry_exit-D1.csv.pgp' });
    await scan();
    expect(listAnomalies(w.cdb)).toMatchObject([{ rule: 'repeated-download', key: 'repeated-download:7:entry_exit-D1.csv.pgp', count: 3 }]);
  });
  it('does not trigger for fewer downloads, or the same count spread over days', async () => {
    download(TUE_10, { object: 'a.csv.pgp' });
    download(at(TUE_10, 60), { object: 'a.csv.pgp' });
    for (let i = 0; i < 3; i++) download(at(TUE_10, i * 1500), { object: 'b.csv.pgp' });
    await scan();
    expect(rules().filter((r) => r === 'repeated-download')).toEqual([]);
  });
});

describe('R7.1 attempts on a suspended or ended link', () => {
  it('triggers on logins refused because the link may not be used, and on use while the log shows it suspended', async () => {
    add({ type: 'auth.failed', agency: 'A001', linkId: 7, actor: 'a001', ip: '10.0.0.1', detail: { method: 'publickey', reason: 'link.not-active' } }, TUE_10);
    add({ type: 'link.approved', agency: 'A002', linkId: 9, actor: 'nia' }, at(TUE_10, -10000));
    add({ type: 'link.suspended', agency: 'A002', linkId: 9, actor: 'nia' }, at(TUE_10, -5000));
    download(at(TUE_10, 5), { agency: 'A002', linkId: 9 });
    await scan();
    expect(listAnomalies(w.cdb).map((a) => [a.rule, a.linkId, a.detail.status]).sort()).toEqual([
      ['inactive-link', 7, 'link.not-active'],
      ['inactive-link', 9, 'suspended'],
    ]);
  });
  it('does not trigger for failures of other kinds, or use after the link was resumed', async () => {
    add({ type: 'auth.failed', agency: 'A001', linkId: 7, actor: 'a001', ip: '10.0.0.1', detail: { method: 'publickey', reason: 'key.unknown' } }, TUE_10);
    add({ type: 'link.approved', agency: 'A002', linkId: 9, actor: 'nia' }, at(TUE_10, -10000));
    add({ type: 'link.suspended', agency: 'A002', linkId: 9, actor: 'nia' }, at(TUE_10, -5000));
    add({ type: 'link.resumed', agency: 'A002', linkId: 9, actor: 'nia' }, at(TUE_10, -100));
    download(at(TUE_10, 5), { agency: 'A002', linkId: 9 });
    await scan();
    expect(rules()).toEqual([]);
  });
});

describe('the scan', () => {
  it('resumes where it stopped, and a switched-off rule finds nothing', async () => {
    download('2026-03-10T15:30:00.000Z');
    settings = { ...settings, offHours: { enabled: false } };
    expect(await scan()).toMatchObject({ scanned: 1, through: 1, detected: 0 });
    expect(await scan()).toMatchObject({ scanned: 0, through: 1 });
    settings = loadConfig({ dataDir: w.dataDir }, {}).anomaly;
    download('2026-03-11T15:30:00.000Z');
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
});
