import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The admin connection the PostgreSQL tests create their scratch databases with. */
export const PG_ADMIN_URL = process.env.NIA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const SCRATCH = /^nia_test_[0-9a-f]{12}$/;

export interface ScratchDb {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** A new, empty database `nia_test_<random>` on the test server; `drop` removes it and nothing else. */
export async function createScratchDb(): Promise<ScratchDb> {
  const name = `nia_test_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return {
    name,
    url: u.toString(),
    drop: async () => {
      if (!SCRATCH.test(name)) throw new Error(`refusing to drop ${name}: not a scratch database`);
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
