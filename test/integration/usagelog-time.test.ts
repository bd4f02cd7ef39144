import { appendLog, chainHash, GENESIS_HASH, listLog, verifyLog, verifyUsageLog } from '../../src/usagelog';
import { appendLogBatch } from '../../src/usagelog/log';
import { recordDigestOf } from '../../src/usagelog/chain';
import { ChainWalker } from '../../src/usagelog/walk';
import { dropGuards, logWorld, rawWrite, type LogWorld, type Raw } from './usagelog-world';

/** R6.6: a record's time is the time it was written; the log's times follow its order. */
let w: LogWorld;
beforeEach(async () => {
  w = await logWorld();
});
afterEach(() => w.close());

/** As someone holding the file: set one record's time, then recompute every digest and hash from there. */
async function backDate(seq: number, at: string): Promise<void> {
  await dropGuards(w.cdb);
  await rawWrite(w.cdb, (db) => {
    db.prepare('UPDATE usage_log SET at = ? WHERE seq = ?').run(at, seq);
    let prev = seq === 1 ? GENESIS_HASH : (db.prepare('SELECT hash FROM usage_log WHERE seq = ?').get(seq - 1) as { hash: string }).hash;
    for (const r of db.prepare('SELECT * FROM usage_log WHERE seq >= ? ORDER BY seq').all(seq) as Raw[]) {
      const digest = recordDigestOf(r.seq as number, r.at as string, r.type as string, r.agency as string | null, r.link_id as number | null, r.revision as number | null, r.actor as string | null, r.ip as string | null, r.channel as string | null, r.object as string | null, r.detail as string);
      const hash = chainHash(prev, digest);
      db.prepare('UPDATE usage_log SET digest = ?, prev_hash = ?, hash = ? WHERE seq = ?').run(digest, prev, hash, r.seq);
      prev = hash;
    }
  });
}

describe('usage-log times (R6.6)', () => {
  it('R6.6 appendLog and appendLogBatch never write a record dated before the one in front of it', async () => {
    const entry = { type: 'test.event', actor: 'test' };
    await w.cdb.write((tx) => appendLog(tx, entry, new Date('2026-12-06T04:00:00.000Z')));
    const back = await w.cdb.write((tx) => appendLog(tx, entry, new Date('2025-01-10T04:00:00.000Z')));
    expect(back.at).toBe('2026-12-06T04:00:00.000Z');
    await w.cdb.write((tx) => appendLogBatch(tx, [{ entry, now: new Date('2026-12-06T05:00:00.000Z') }, { entry, now: new Date('2026-12-01T00:00:00.000Z') }]));
    expect((await listLog(w.cdb.db, {})).map((r) => r.at)).toEqual(['2026-12-06T04:00:00.000Z', '2026-12-06T04:00:00.000Z', '2026-12-06T05:00:00.000Z', '2026-12-06T05:00:00.000Z']);
    expect((await verifyLog(w.cdb)).ok).toBe(true);
  });

  it('R6.6 log verify names a record older than the one before it, though every hash was recomputed, in one thread or several', async () => {
    await w.fill(3000, '2026-12-01T00:00:00.000Z');
    await backDate(1500, '2025-01-10T04:00:00.000Z');
    const reason = /record 1500 is dated 2025-01-10T04:00:00.000Z, before record 1499 .*back-dated/;
    expect(await verifyLog(w.cdb)).toMatchObject({ ok: false, bad: { seq: 1500, reason: expect.stringMatching(reason) } });
    for (const threads of [1, 2, 3]) expect((await verifyUsageLog(w.cdb, { keysDir: w.keysDir, threads })).bad).toMatchObject({ seq: 1500, reason: expect.stringMatching(reason) });
  });

  it('R6.6 a back-dated record at the first seq of a thread’s range is found where the ranges are joined', async () => {
    await w.fill(3000, '2026-12-01T00:00:00.000Z');
    // Two threads split 1–1500 and 1501–3000: the record is compared with the other range's last.
    await backDate(1501, '2026-11-30T00:00:00.000Z');
    const r = await verifyUsageLog(w.cdb, { keysDir: w.keysDir, threads: 2 });
    expect(r.bad).toMatchObject({ seq: 1501, reason: expect.stringMatching(/before record 1500/) });
  });

  it('R6.6 the walker checks archives and evidence records for time order too, and takes a record without a valid time as bad', () => {
    const walker = new ChainWalker({ seq: 1, prevHash: GENESIS_HASH });
    const rec = (seq: number, at: string, prevHash: string) => {
      const digest = recordDigestOf(seq, at, 't', null, null, null, null, null, null, null, '{}');
      return { seq, at, type: 't', agency: null, linkId: null, revision: null, actor: null, ip: null, channel: null, object: null, detail: '{}', digest, prevHash, hash: chainHash(prevHash, digest) };
    };
    const a = rec(1, '2026-12-06T04:00:00.000Z', GENESIS_HASH);
    const b = rec(2, '2026-12-06T03:59:59.999Z', a.hash);
    expect(walker.fullRecord(a)).toBe(true);
    expect(walker.fullRecord(b)).toBe(false);
    expect(walker.bad).toMatchObject({ seq: 2, reason: expect.stringMatching(/before record 1/) });
    const other = new ChainWalker({ seq: 1, prevHash: GENESIS_HASH });
    expect(other.fullRecord(rec(1, 'yesterday', GENESIS_HASH))).toBe(false);
    expect(other.bad).toMatchObject({ seq: 1, reason: expect.stringMatching(/no valid time/) });
  });
});
