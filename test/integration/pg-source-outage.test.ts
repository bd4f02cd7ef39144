import { createHash } from 'node:crypto';
import { compileScope, PgSource } from '../../src/extract';
import { loadCatalogs } from '../../src/registry';
import { seedPgSource } from '../../src/seed/postgres';
import pg from 'pg';
import { createScratchDb, pgProxy, type PgProxy, type ScratchDb } from '../helpers/pg';

// The PostgreSQL source restarts (or the network between us drops every connection) while look-ups
// and extracts run: a request caught in it fails cleanly, and the source recovers by itself — the next
// look-up and the next extract succeed with no restart of nia-link. A proxy in front of the test
// server stands for the restart, so no other test's connections are touched.

const catalogs = loadCatalogs();
let scratch: ScratchDb;
let proxy: PgProxy;
let source: PgSource;

const all = () => compileScope({ all: true, justification: 'test' }, catalogs.get('entry_exit')!, '2026-12-06');


async function extract(onFirstChunk: () => void = () => undefined): Promise<{ rows: number; sha256: string }> {
  const csv = source.csvStream('entry_exit', [{ name: 'person_id' }, { name: 'name_en' }], 'ab'.repeat(32), { since: null, until: '2999-01-01T00:00:00.000Z', scope: all() })!;
  const hash = createHash('sha256');
  let first = true;
  for await (const chunk of csv.stream as unknown as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    if (first) onFirstChunk();
    first = false;
  }
  const done = await csv.done;
  expect(done.sha256).toBe(hash.digest('hex'));
  return done;
}

beforeAll(async () => {
  scratch = await createScratchDb();
  await seedPgSource({ url: scratch.url, dataset: 'entry_exit', rows: 20_000, seed: 3, catalog: catalogs.get('entry_exit')!, now: new Date('2026-12-01T00:00:00Z') });
  proxy = await pgProxy(scratch.url);
  source = new PgSource(proxy.url);
}, 120_000);
afterAll(async () => {
  await source?.close();
  await proxy?.close();
  await scratch?.drop();
});

it('look-ups and extracts recover by themselves after the source restarts; a request caught in it fails cleanly', async () => {
  const c = new pg.Client({ connectionString: scratch.url });
  await c.connect();
  const person = (await c.query("SELECT person_id FROM entry_exit WHERE person_id <> '' ORDER BY record_id LIMIT 1")).rows[0].person_id as string;
  await c.end();
  const q = { dataset: 'entry_exit', fields: ['name_en'], keyField: 'person_id', ids: [person], scope: all(), limit: 10 };
  const baseline = await extract();
  expect(baseline.rows).toBe(20_000);

  // A look-up's pooled connections die with the server.
  const ids = (await source.lookup(q)).length;
  expect(ids).toBeGreaterThan(0);
  await proxy.restart(300);
  let failures = 0;
  let answered: number | undefined;
  for (let i = 0; i < 20 && answered === undefined; i++) {
    try {
      answered = (await source.lookup(q)).length;
    } catch (err) {
      failures++;
      expect((err as Error).message.split('\n')).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  expect(answered).toBe(ids);
  expect(failures).toBeLessThanOrEqual(1);

  // An extract cut off in the middle fails (no partial success); the next one is whole and the same.
  let restarted: Promise<void> | undefined;
  await expect(extract(() => (restarted = proxy.restart(300)))).rejects.toThrow();
  await restarted;
  expect(await extract()).toEqual(baseline);
}, 60_000);
