import { canonicalJson, chainHash, GENESIS_HASH, recordDigest } from '../../src/usagelog';
import { outsideBusinessHours } from '../../src/usagelog';
import { recordDigestGeneric, type LogRecordBody } from '../../src/usagelog/chain';
import { retentionFloor } from '../../src/usagelog/archive';
import { ChainWalker } from '../../src/usagelog/walk';

const body = (over: Partial<LogRecordBody> = {}): LogRecordBody => ({
  seq: 1, at: '2026-03-10T02:00:00.000Z', type: 'file.downloaded', agency: 'A001', linkId: 7, revision: 2, actor: 'a001', ip: '10.0.0.1', channel: 'sftp-pull', object: 'f.csv.pgp', detail: canonicalJson({ bytes: 1, result: 'complete' }),
  ...over,
});

describe('record digest', () => {
  it('the written-out digest equals SHA-256 of the canonical JSON, for awkward values too', () => {
    const samples: LogRecordBody[] = [
      body(),
      body({ agency: null, linkId: null, revision: null, actor: null, ip: null, channel: null, object: null }),
      body({ seq: 9007199254740991, actor: '王小明 "quoted" \\ back\nslash \u0000 \u2028', object: '😀 emoji', detail: canonicalJson({ z: [1, { b: 2, a: null }], a: 'é' }) }),
      body({ linkId: 0, revision: 0, type: '' }),
    ];
    for (const s of samples) expect(recordDigest(s)).toBe(recordDigestGeneric(s));
  });
  it('every field is covered', () => {
    const base = recordDigest(body());
    for (const [k, v] of Object.entries({ seq: 2, at: '2026-03-10T02:00:00.001Z', type: 'x', agency: 'A002', linkId: 8, revision: 3, actor: 'b', ip: '10.0.0.2', channel: 'email', object: 'g', detail: '{}' })) {
      expect(recordDigest(body({ [k]: v } as Partial<LogRecordBody>))).not.toBe(base);
    }
  });
});

describe('chain walker', () => {
  const chain = (n: number) => {
    let prev = GENESIS_HASH;
    return Array.from({ length: n }, (_, i) => {
      const b = body({ seq: i + 1 });
      const digest = recordDigest(b);
      const r = { ...b, digest, prevHash: prev, hash: chainHash(prev, digest) };
      prev = r.hash;
      return r;
    });
  };
  it('accepts full and digest-only records on one chain and remembers watched hashes', () => {
    const rs = chain(5);
    const w = new ChainWalker({ seq: 1, prevHash: GENESIS_HASH }, new Set([3]));
    w.fullRecord(rs[0]);
    w.digestOnly(2, rs[1].digest);
    w.fullRecord(rs[2]);
    w.digestOnly(4, rs[3].digest);
    w.fullRecord(rs[4]);
    expect(w).toMatchObject({ ok: true, count: 5, first: 1, last: 5, prevHash: rs[4].hash });
    expect(w.hashes.get(3)).toBe(rs[2].hash);
  });
  it('names a gap, a wrong link and a wrong digest', () => {
    const rs = chain(4);
    const gap = new ChainWalker({ seq: 1, prevHash: GENESIS_HASH });
    [rs[0], rs[2]].forEach((r) => gap.fullRecord(r));
    expect(gap.bad).toEqual({ seq: 2, reason: 'record 2 is missing (next present is 3)' });
    const wrong = new ChainWalker({ seq: 1, prevHash: GENESIS_HASH });
    wrong.fullRecord(rs[0]);
    wrong.digestOnly(2, 'f'.repeat(64));
    wrong.fullRecord(rs[2]);
    expect(wrong.bad).toMatchObject({ seq: 3, reason: /prev_hash/ });
    const short = new ChainWalker({ seq: 1, prevHash: GENESIS_HASH });
    short.fullRecord(rs[0]);
    short.expectEnd(4);
    expect(short.bad).toEqual({ seq: 2, reason: 'record 2 is missing' });
  });
});

describe('time rules', () => {
  it('R6.2 the retention floor is whole years back on the Taipei calendar', () => {
    expect(retentionFloor('2026-11-28', 5)).toBe('2021-11-28');
    expect(retentionFloor('2028-02-29', 5)).toBe('2023-02-28');
  });
  it('business hours are judged in the configured zone', () => {
    const bh = { timeZone: 'Asia/Taipei', start: '08:00', end: '18:00', weekdays: [1, 2, 3, 4, 5] };
    expect(outsideBusinessHours('2026-03-10T00:00:00Z', bh)).toBe(false); // Tue 08:00
    expect(outsideBusinessHours('2026-03-09T23:59:00Z', bh)).toBe(true); // Tue 07:59
    expect(outsideBusinessHours('2026-03-10T10:00:00Z', bh)).toBe(true); // Tue 18:00
    expect(outsideBusinessHours('2026-03-13T16:30:00Z', bh)).toBe(true); // Sat 00:30
    expect(outsideBusinessHours('2026-03-13T16:30:00Z', { ...bh, timeZone: 'UTC' })).toBe(false); // Fri 16:30 UTC
  });
});
