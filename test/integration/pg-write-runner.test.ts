import { afterCommit, type PostgresControlDb } from '../../src/db';
import pg from 'pg';
import { BUSY_TIMEOUT_MS, DatabaseBusy } from '../../src/db/busy';
import { openPostgresControlDb, WRITE_LOCK } from '../../src/db/pg/control';
import { DatabaseError, isUniqueViolation } from '../../src/db/dialect';
import { agencies } from '../../src/db/repositories';
import { createScratchDb, type ScratchDb } from '../helpers/pg';

// The write runner on PostgreSQL: writes of every process run one at a time (an advisory lock) and,
// within a process, take turns before they take a pooled connection, so a write holding the lock
// can always read; nested writes are savepoints; notices follow commits only.

let scratch: ScratchDb;
let cdb: PostgresControlDb;

beforeAll(async () => {
  scratch = await createScratchDb();
  // A small pool that gives up quickly: a write starved of a connection fails within the test.
  cdb = await openPostgresControlDb(scratch.url, { max: 2, connectTimeoutMs: 3000 });
});
afterAll(async () => {
  await cdb?.close();
  await scratch?.drop();
});

const row = (code: string) => ({ code, nameZh: '測試機關', nameEn: null, government: true, sponsorId: null, createdAt: new Date().toISOString(), emails: [] });
const exists = async (code: string) => (await agencies.byCode(cdb.db, code)) !== undefined;

it('many concurrent writes that read while they hold the write lock all commit, however small the pool', async () => {
  const n = 12;
  const t0 = Date.now();
  const results = await Promise.allSettled(
    Array.from({ length: n }, (_, i) =>
      cdb.write(async (tx) => {
        await agencies.insert(tx, row(`POOL${i}`));
        // A read outside the transaction, as services make inside writes: it needs a second connection.
        return agencies.all(cdb.db);
      }),
    ),
  );
  expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
  expect(Date.now() - t0).toBeLessThan(3000);
  for (let i = 0; i < n; i++) expect(await exists(`POOL${i}`)).toBe(true);
});

it('a nested write that fails rolls back alone; notices run after the commit, none for what rolled back', async () => {
  const seen: string[] = [];
  await cdb.write(async (tx) => {
    await agencies.insert(tx, row('PGNEST1'));
    afterCommit(tx, () => seen.push('outer'));
    await expect(
      cdb.write(async (inner) => {
        await agencies.insert(inner, row('PGNEST2'));
        afterCommit(inner, () => seen.push('inner, rolled back'));
        throw new Error('inner rolled back');
      }),
    ).rejects.toThrow('inner rolled back');
    await agencies.insert(tx, row('PGNEST3'));
    seen.push(`in the transaction, committed: ${await exists('PGNEST1')}`);
  });
  expect(seen).toEqual(['in the transaction, committed: false', 'outer']);
  expect([await exists('PGNEST1'), await exists('PGNEST2'), await exists('PGNEST3')]).toEqual([true, false, true]);
});

it('a write that fails leaves nothing, and the next one runs', async () => {
  await expect(
    cdb.write(async (tx) => {
      await agencies.insert(tx, row('PGFAIL1'));
      throw new Error('rolled back');
    }),
  ).rejects.toThrow('rolled back');
  await cdb.write(async (tx) => void (await agencies.insert(tx, row('PGFAIL2'))));
  expect([await exists('PGFAIL1'), await exists('PGFAIL2')]).toEqual([false, true]);
});

it('a refused statement says what PostgreSQL said, never the values it was given', async () => {
  await cdb.write(async (tx) => void (await agencies.insert(tx, row('PGDUP1'))));
  const secret = { ...row('PGDUP1'), nameZh: 'A123456789-身分證號' };
  const err = await cdb.write((tx) => agencies.insert(tx, secret)).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(DatabaseError);
  expect(isUniqueViolation(err)).toBe(true);
  expect((err as Error).message).toMatch(/duplicate key value violates unique constraint/);
  expect((err as Error).message).not.toContain('A123456789');
});

it('a write waiting for another process that holds the write lock gives up after the busy timeout, as on SQLite', async () => {
  const holder = new pg.Client({ connectionString: scratch.url });
  await holder.connect();
  try {
    await holder.query('SELECT pg_advisory_lock($1)', [WRITE_LOCK.toString()]);
    const t0 = Date.now();
    const err = await cdb.write(async (tx) => agencies.insert(tx, row('PGWAIT1'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseBusy);
    expect((err as Error).message).toMatch(/^the control database is busy/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(BUSY_TIMEOUT_MS - 100);
    expect(Date.now() - t0).toBeLessThan(BUSY_TIMEOUT_MS + 5000);
  } finally {
    await holder.end();
  }
  // The holder gone, writes go through again.
  await cdb.write(async (tx) => void (await agencies.insert(tx, row('PGWAIT2'))));
  expect([await exists('PGWAIT1'), await exists('PGWAIT2')]).toEqual([false, true]);
}, 30_000);
