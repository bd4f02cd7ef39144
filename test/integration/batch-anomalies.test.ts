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

// Tuesday 2026-03-10 in Asia/Taipei, 10:00 local.
const TUE_10 = '2026-03-10T02:00:00.000Z';
const at = (minutes: number) => new Date(Date.parse(TUE_10) + minutes * 60_000).toISOString();
const scan = () => scanAnomalies(w.cdb, settings, new Date('2026-03-20T00:00:00Z'));
const ofRule = async (rule: string) => (await listAnomalies(w.cdb)).filter((a) => a.rule === rule);
const add = async (e: LogEntry, when: string) => w.append(e, when);
const received = (ids: number, when: string) => add({ type: 'batch.received', agency: 'A001', linkId: 7, actor: 'b001', ip: '10.0.0.1', channel: 'batch-query', object: `req-${when}.csv.pgp`, detail: { ids, reference: '函第1號', idHashes: [] } }, when);
const refused = (code: string, when: string, linkId = 7) => add({ type: 'batch.refused', agency: 'A001', linkId, actor: 'b001', ip: '10.0.0.1', channel: 'batch-query', object: `r-${when}.csv.pgp`, detail: { code } }, when);

describe('R3.5 anomaly rules over batch requests', () => {
  it('R3.5 batch-large: a request naming at least anomaly.batchLarge.minIds identifiers is an anomaly; smaller ones are not', async () => {
    await received(settings.batchLarge.minIds - 1, at(0));
    await scan();
    expect(await ofRule('batch-large')).toEqual([]);
    await received(settings.batchLarge.minIds, at(5));
    await scan();
    const [a] = await ofRule('batch-large');
    expect(a).toMatchObject({ linkId: 7, ip: '10.0.0.1', evidence: [2], detail: expect.objectContaining({ ids: settings.batchLarge.minIds, reference: '函第1號' }) });
    expect(a.summary).toContain(`named ${settings.batchLarge.minIds} identifiers`);
  });

  it('R3.5 batch-refused: threshold refused uploads of one link within the window, counted across scans, stored once', async () => {
    const n = settings.batchRefused.threshold;
    for (let i = 0; i < n - 1; i++) await refused(i % 2 ? 'signature.missing' : 'signature.unknown-key', at(i));
    await scan();
    expect(await ofRule('batch-refused')).toEqual([]);
    await refused('format.invalid', at(n));
    await scan();
    await scan();
    const list = await ofRule('batch-refused');
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ linkId: 7, count: n, detail: expect.objectContaining({ refused: n, codes: expect.arrayContaining(['signature.missing', 'signature.unknown-key', 'format.invalid']) }) });
  });

  it('R3.5 batch-refused: refusals spread beyond the window, or over different links, are no anomaly', async () => {
    const n = settings.batchRefused.threshold;
    for (let i = 0; i < n; i++) await refused('signature.missing', at(i * (settings.batchRefused.windowHours * 60 + 1)));
    for (let i = 0; i < n - 1; i++) await refused('signature.missing', at(i), 8);
    await refused('signature.missing', at(1), 9);
    await scan();
    expect(await ofRule('batch-refused')).toEqual([]);
  });
});
