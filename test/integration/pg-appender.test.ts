import { openPostgresControlDb } from '../../src/db/pg/control';
import type { PostgresControlDb } from '../../src/db';
import { listLog, TxLogAppender, verifyLog } from '../../src/usagelog';
import { createScratchDb, type ScratchDb } from '../helpers/pg';

// The online query's group commit on a PostgreSQL control database (TxLogAppender): every caller's
// record is committed before its promise resolves, in the order appended, one chain; a batch that
// cannot be written fails each of its callers, and nothing of it is in the log.

let scratch: ScratchDb;
let cdb: PostgresControlDb;

beforeAll(async () => {
  scratch = await createScratchDb();
  cdb = await openPostgresControlDb(scratch.url);
});
afterAll(async () => {
  await cdb?.close();
  await scratch?.drop();
});

it('R6.1 every look-up appended in a burst is committed before its caller hears so, in order, on one verifying chain', async () => {
  const appender = new TxLogAppender(cdb);
  const n = 600;
  const committed: number[] = [];
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      appender.append({ type: 'query.answered', agency: 'A001', linkId: 1, actor: 'cert', detail: { i } }, new Date()).then(async () => {
        // Committed means readable by anyone else now.
        const seen = (await listLog(cdb.db, { type: 'query.answered' })).some((r) => JSON.parse(r.detail).i === i);
        if (seen) committed.push(i);
      }),
    ),
  );
  await appender.close();
  expect(committed.length).toBe(n);
  const rows = await listLog(cdb.db, { type: 'query.answered' });
  expect(rows.map((r) => JSON.parse(r.detail).i)).toEqual(Array.from({ length: n }, (_, i) => i));
  expect(await verifyLog(cdb)).toMatchObject({ ok: true, records: n });
});

it('a batch that cannot be written fails each of its callers and leaves nothing in the log', async () => {
  const before = (await listLog(cdb.db, {})).length;
  // The database refuses the record inside the append's transaction (a record type it cannot store).
  const appender = new TxLogAppender(cdb);
  const results = await Promise.allSettled([1, 2, 3].map((i) => appender.append({ type: 'query.answered\u0000', detail: { i } }, new Date())));
  await appender.close();
  expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
  for (const r of results) expect((r as PromiseRejectedResult).reason.message).toMatch(/^the usage log could not be written: /);
  expect((await listLog(cdb.db, {})).length).toBe(before);
  await expect(appender.append({ type: 'query.answered' }, new Date())).rejects.toThrow(/closed/);
});
