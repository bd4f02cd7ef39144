import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openControlDb } from '../../src/db';
import { openPgControlDb, type PgControlDb } from '../../src/db/pg/connect';
import { appendLogBatchPg, appendLogPg } from '../../src/db/pg/usage-log';
import type { UsageLogRow } from '../../src/db/repositories/usageLog';
import { chainHash, GENESIS_HASH, recordDigest } from '../../src/usagelog/chain';
import { appendLog, chained, type LogEntry } from '../../src/usagelog/log';
import { createScratchDb, type ScratchDb } from '../helpers/pg';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const SELECT = 'SELECT seq, at, type, agency, link_id AS "linkId", revision, actor, ip, channel, object, detail, digest, prev_hash AS "prevHash", hash FROM usage_log';

async function rows(cdb: PgControlDb): Promise<UsageLogRow[]> {
  return (await cdb.pool.query<UsageLogRow>(`${SELECT} ORDER BY seq`)).rows.map((r) => ({ ...r, seq: Number(r.seq) }));
}

/** Recompute every digest and hash with chain.ts from `start`; the first problem found, or null. */
function verify(rs: UsageLogRow[], start = { seq: 1, prevHash: GENESIS_HASH }): string | null {
  let prev = start.prevHash;
  let prevAt: string | null = null;
  for (const [i, r] of rs.entries()) {
    if (r.seq !== start.seq + i) return `seq ${r.seq} where ${start.seq + i} was due`;
    if (r.prevHash !== prev) return `seq ${r.seq}: prev_hash is not the previous hash`;
    if (r.digest !== recordDigest(r)) return `seq ${r.seq}: digest does not match`;
    if (r.hash !== chainHash(prev, r.digest)) return `seq ${r.seq}: hash does not match`;
    if (!ISO.test(r.at)) return `seq ${r.seq}: time ${r.at} is not an ISO instant`;
    if (prevAt !== null && r.at < prevAt) return `seq ${r.seq}: dated before the previous record`;
    prev = r.hash;
    prevAt = r.at;
  }
  return null;
}

describe('the usage log on PostgreSQL', () => {
  let scratch: ScratchDb;
  let cdb: PgControlDb;
  beforeAll(async () => {
    scratch = await createScratchDb();
    cdb = await openPgControlDb(scratch.url, { max: 8 });
  });
  afterAll(async () => {
    await cdb?.close();
    await scratch?.drop();
  });

  it('appends from several connections at once get contiguous seqs and form one chain that verifies with chain.ts', async () => {
    const writers = 8;
    const perWriter = 15;
    await Promise.all(
      Array.from({ length: writers }, (_, w) =>
        (async () => {
          for (let i = 0; i < perWriter; i++) {
            await cdb.transaction(async (client) => {
              if (i % 3 === 2) {
                await appendLogBatchPg(client, [
                  { type: 'test.batch', actor: `w${w}`, detail: { i, n: 0 } },
                  { type: 'test.batch', actor: `w${w}`, detail: { i, n: 1 } },
                ]);
              } else {
                await appendLogPg(client, { type: 'test.one', actor: `w${w}`, linkId: w, detail: { i } });
              }
              // Hold the transaction open a little, so other writers queue behind its lock.
              await client.query('SELECT pg_sleep(0.002)');
            });
          }
        })(),
      ),
    );
    const rs = await rows(cdb);
    const expected = writers * (perWriter + Math.floor(perWriter / 3));
    expect(rs).toHaveLength(expected);
    expect(rs[rs.length - 1].seq).toBe(expected);
    expect(verify(rs)).toBeNull();
    // Every writer's records are there: no append was lost to a race.
    for (let w = 0; w < writers; w++) expect(rs.filter((r) => r.actor === `w${w}`)).toHaveLength(perWriter + Math.floor(perWriter / 3));
  });

  it('a record that rolls back with its action leaves no gap: the next record takes its seq', async () => {
    const before = (await rows(cdb)).length;
    await expect(
      cdb.transaction(async (client) => {
        await appendLogPg(client, { type: 'test.rolled-back' });
        throw new Error('the action failed');
      }),
    ).rejects.toThrow('the action failed');
    const r = await cdb.transaction((client) => appendLogPg(client, { type: 'test.after-rollback' }));
    expect(r.seq).toBe(before + 1);
    expect(verify(await rows(cdb))).toBeNull();
  });

  it("a record's time comes from the database inside the transaction, not from the process's clock, written as toISOString writes it", async () => {
    // The process's clock says 2001; the database's does not.
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'queueMicrotask', 'hrtime', 'performance'] });
    jest.setSystemTime(new Date('2001-01-01T00:00:00.000Z'));
    let row: UsageLogRow;
    let inTx: { before: number; after: number };
    try {
      ({ row, inTx } = await cdb.transaction(async (client) => {
        const ms = async () => Number((await client.query<{ ms: string }>('SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint::text AS ms')).rows[0].ms);
        const before = await ms();
        const row = await appendLogPg(client, { type: 'test.time' });
        const after = await ms();
        return { row, inTx: { before, after } };
      }));
    } finally {
      jest.useRealTimers();
    }
    expect(row.at).toMatch(ISO);
    expect(row.at.startsWith('2001')).toBe(false);
    expect(Date.parse(row.at)).toBeGreaterThanOrEqual(inTx.before);
    expect(Date.parse(row.at)).toBeLessThanOrEqual(inTx.after);
    expect(new Date(row.at).toISOString()).toBe(row.at);
  });

  it('a record is never dated before the previous one, even when the database clock is behind it', async () => {
    // A head dated in the future (a clock stepped back, a fail-over to a host whose clock is behind).
    const head = (await rows(cdb)).at(-1)!;
    const ahead = chained(head, { type: 'test.ahead' }, new Date('2999-01-01T00:00:00.000Z'));
    await cdb.pool.query(`INSERT INTO usage_log (seq, at, type, agency, link_id, revision, actor, ip, channel, object, detail, digest, prev_hash, hash)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
      [ahead.seq, ahead.at, ahead.type, ahead.agency, ahead.linkId, ahead.revision, ahead.actor, ahead.ip, ahead.channel, ahead.object, ahead.detail, ahead.digest, ahead.prevHash, ahead.hash]);
    const one = await cdb.transaction((client) => appendLogPg(client, { type: 'test.after-ahead' }));
    const batch = await cdb.transaction((client) => appendLogBatchPg(client, [{ type: 'test.b1' }, { type: 'test.b2' }]));
    expect(Date.now()).toBeLessThan(Date.parse('2999-01-01T00:00:00.000Z'));
    expect(one.at).toBe('2999-01-01T00:00:00.000Z');
    expect(batch.map((r) => r.at)).toEqual(['2999-01-01T00:00:00.000Z', '2999-01-01T00:00:00.000Z']);
    expect(verify(await rows(cdb))).toBeNull();
  });

  it('UPDATE of any record is refused by a trigger', async () => {
    await expect(cdb.pool.query("UPDATE usage_log SET actor = 'someone else' WHERE seq = 1")).rejects.toThrow('usage_log is append-only');
    await expect(cdb.pool.query("UPDATE usage_log SET detail = '{}'")).rejects.toThrow('usage_log is append-only');
    expect(verify(await rows(cdb))).toBeNull();
  });

  it('DELETE is refused for records no archive anchor covers, allowed for archived seqs only, and the log continues from the anchor', async () => {
    await expect(cdb.pool.query('DELETE FROM usage_log WHERE seq = 1')).rejects.toThrow('usage_log is append-only; archive records with nia-link log archive');
    const all = await rows(cdb);
    const cut = 10;
    const last = all[cut - 1];
    await cdb.transaction(async (client) => {
      await client.query(
        `INSERT INTO log_archive (from_seq, to_seq, prev_hash, last_hash, records, file_name, sha256, manifest, signature, created_at)
         VALUES (1, $1, $2, $3, $1, 'archive-1', 's', 'm', 'sig', $4)`,
        [cut, GENESIS_HASH, last.hash, last.at],
      );
      await client.query('DELETE FROM usage_log WHERE seq <= $1', [cut]);
    });
    // Anything past the anchor stays.
    await expect(cdb.pool.query('DELETE FROM usage_log WHERE seq = $1', [cut + 1])).rejects.toThrow('usage_log is append-only');
    await expect(cdb.pool.query('DELETE FROM usage_log')).rejects.toThrow('usage_log is append-only');
    const live = await rows(cdb);
    expect(live[0].seq).toBe(cut + 1);
    expect(verify(live, { seq: cut + 1, prevHash: last.hash })).toBeNull();
  });

  it('when every record is archived, the next record continues from the archive anchor (seq and hash)', async () => {
    const live = await rows(cdb);
    const last = live.at(-1)!;
    await cdb.transaction(async (client) => {
      await client.query(
        `INSERT INTO log_archive (from_seq, to_seq, prev_hash, last_hash, records, file_name, sha256, manifest, signature, created_at)
         VALUES ($1, $2, $3, $4, $5, 'archive-2', 's', 'm', 'sig', $6)`,
        [live[0].seq, last.seq, live[0].prevHash, last.hash, live.length, last.at],
      );
      await client.query('DELETE FROM usage_log WHERE seq <= $1', [last.seq]);
    });
    const next = await cdb.transaction((client) => appendLogPg(client, { type: 'test.after-archive' }));
    expect(next.seq).toBe(last.seq + 1);
    expect(next.prevHash).toBe(last.hash);
    expect(verify([next], { seq: last.seq + 1, prevHash: last.hash })).toBeNull();
  });
});

describe('the same inputs make the same records on SQLite and PostgreSQL', () => {
  let scratch: ScratchDb;
  let cdb: PgControlDb;
  let dir: string;
  beforeAll(async () => {
    scratch = await createScratchDb();
    cdb = await openPgControlDb(scratch.url);
    dir = mkdtempSync(path.join(os.tmpdir(), 'nia-pg-usagelog-'));
  });
  afterAll(async () => {
    await cdb?.close();
    await scratch?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const entries: LogEntry[] = [
    { type: 'link.approved', agency: 'MOI', linkId: 1, revision: 2, actor: 'admin', ip: '10.0.0.1', channel: 'console', object: 'link:1', detail: { z: 1, a: [3, 1, { y: null, b: '中文' }] } },
    { type: 'query.lookup', agency: '衛福部', linkId: 2, actor: 'svc', ip: '2001:db8::1', channel: 'online-query', detail: { ids: 5, note: 'tab\there "quoted" \\ back' } },
    // A name from the network with a lone surrogate: both dialects store (and hash) U+FFFD.
    { type: 'sftp.login', actor: 'bad\uD800name', ip: '192.0.2.7', channel: 'sftp', object: 'file\uDFFF.csv' },
    { type: 'bare' },
    { type: 'detail.empty', detail: {} },
    { type: 'detail.nested', detail: { b: { d: 1, c: [true, false, 1.5, -0, 1e21] }, a: 'x' } },
  ];

  it('records appended on PostgreSQL (one by one and batched) equal, hash for hash and byte for byte, the records SQLite appends for the same inputs at the same times', async () => {
    const pgRows: UsageLogRow[] = [];
    for (const e of entries.slice(0, 3)) pgRows.push(await cdb.transaction((client) => appendLogPg(client, e)));
    pgRows.push(...(await cdb.transaction((client) => appendLogBatchPg(client, entries.slice(3)))));

    const lite = openControlDb(dir, { create: true });
    try {
      const liteRows: UsageLogRow[] = [];
      for (const [i, r] of pgRows.entries()) liteRows.push(await lite.write((tx) => appendLog(tx, entries[i], new Date(r.at))));
      expect(pgRows).toEqual(liteRows);
      // What each database stored, read back: the same text in every column.
      const storedLite = lite.sqlite.prepare(`${SELECT} ORDER BY seq`).all() as UsageLogRow[];
      const storedPg = await rows(cdb);
      expect(storedPg).toEqual(storedLite);
      expect(storedPg[2].actor).toBe('bad\uFFFDname');
      expect(verify(storedPg)).toBeNull();
    } finally {
      await lite.close();
    }
  });

  it('on a production installation a claimed time is ignored: the database dates the record', async () => {
    const before = Date.now();
    const r = await cdb.transaction((client) => appendLogPg(client, { type: 'test.claimed' }, new Date('2001-01-01T00:00:00.000Z')));
    expect(Date.parse(r.at)).toBeGreaterThanOrEqual(before - 5000);
  });

  it('on a drill installation every PostgreSQL record is marked drill, as on SQLite', async () => {
    await cdb.pool.query("INSERT INTO installation (id, mode, created_at) VALUES (1, 'drill', 'now')");
    const r = await cdb.transaction((client) => appendLogPg(client, { type: 'test.drill', detail: { k: 1 } }));
    expect(JSON.parse(r.detail)).toEqual({ drill: true, k: 1 });
    // A drill's clock may be moved (--at, NIA_LINK_CLOCK): its records are dated by it, never before the head.
    const moved = new Date(Date.parse(r.at) + 400 * 86_400_000);
    const later = await cdb.transaction((client) => appendLogPg(client, { type: 'test.drill' }, moved));
    expect(later.at).toBe(moved.toISOString());
    const back = await cdb.transaction((client) => appendLogPg(client, { type: 'test.drill' }, new Date(Date.parse(r.at) - 86_400_000)));
    expect(back.at).toBe(moved.toISOString());
    expect(verify(await rows(cdb))).toBeNull();
  });

});
