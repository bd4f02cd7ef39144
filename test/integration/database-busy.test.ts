import Database from 'better-sqlite3';
import pg from 'pg';
import { controlDbFile } from '../../src/db';
import { WRITE_LOCK } from '../../src/db/pg/control';
import { cliAsync, openTestWorld, type AnyWorld } from '../helpers/world';

// Another process holding the control database's write lock (a stalled process in the middle of a
// write, a long migration) makes a write wait up to the busy timeout (10 s). Past it, the command
// says so in one line and writes nothing.

let w: AnyWorld;
beforeAll(async () => void (w = await openTestWorld()));
afterAll(async () => w?.close());

/** Takes the write lock the way another process's write would; resolves to its release. */
async function holdWriteLock(): Promise<() => Promise<void>> {
  if (!w.database.url) {
    const other = new Database(controlDbFile(w.dataDir));
    other.exec('BEGIN IMMEDIATE');
    return async () => {
      other.exec('ROLLBACK');
      other.close();
    };
  }
  const other = new pg.Client({ connectionString: w.database.url });
  await other.connect();
  await other.query('BEGIN');
  await other.query(`SELECT pg_advisory_xact_lock(${WRITE_LOCK})`);
  return async () => {
    await other.query('ROLLBACK');
    await other.end();
  };
}

it('a write kept waiting past the busy timeout by another process fails in one line, exit 1, with nothing written', async () => {
  const release = await holdWriteLock();
  let r;
  try {
    r = await cliAsync(w.dataDir, ['agency', 'add', '--code', 'B777', '--name', '忙碌測試機關']);
  } finally {
    await release();
  }
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/^nia-link: the control database is busy: another process has held its write lock for more than 10 s, so this change was not written; try again\n$/);
  expect((await w.registry.listAgencies()).some((a) => a.code === 'B777')).toBe(false);
  // Once the lock is free, the same command goes through.
  expect((await cliAsync(w.dataDir, ['agency', 'add', '--code', 'B777', '--name', '忙碌測試機關'])).code).toBe(0);
}, 40_000);
