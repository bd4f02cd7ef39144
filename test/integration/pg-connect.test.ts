import { readFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../../src/errors';
import { openPgControlDb, PG_MIGRATIONS_DIR, redactDatabaseUrl } from '../../src/db/pg/connect';
import { createScratchDb, type ScratchDb } from '../helpers/pg';

describe('PostgreSQL connection', () => {
  it('redactDatabaseUrl removes the password from the user info and from query parameters', () => {
    const shown = redactDatabaseUrl('postgres://nia:s3cr3t-pw@db.example:5432/nia?sslmode=verify-full&password=other-pw');
    expect(shown).not.toContain('s3cr3t-pw');
    expect(shown).not.toContain('other-pw');
    expect(shown).toContain('nia@db.example:5432/nia');
    expect(shown).toContain('sslmode=verify-full');
  });

  it('a URL that does not parse is not shown at all (it may hold a password)', () => {
    expect(redactDatabaseUrl('postgres://nia:pw@[bad')).not.toContain('pw');
  });

  it('a server that is down at start-up is a one-line UserError that names the URL without its password', async () => {
    // Port 1 on the loopback: nothing listens there.
    const err = await openPgControlDb('postgres://nia:s3cr3t-pw@127.0.0.1:1/nia', { connectTimeoutMs: 3000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    const msg = (err as UserError).message;
    expect(msg).not.toContain('s3cr3t-pw');
    expect(msg).not.toContain('\n');
    expect(msg).toContain('127.0.0.1:1');
    expect((err as UserError).code).toBe('database-unreachable');
  });

  describe('on a scratch database', () => {
    let scratch: ScratchDb;
    beforeAll(async () => {
      scratch = await createScratchDb();
    });
    afterAll(async () => {
      await scratch.drop();
    });

    it('migrations apply once: a second start, and two starting at once, find nothing left to do', async () => {
      const first = await openPgControlDb(scratch.url);
      await first.close();
      const [a, b] = await Promise.all([openPgControlDb(scratch.url), openPgControlDb(scratch.url)]);
      const applied = await a.pool.query<{ n: string }>('SELECT count(*)::text AS n FROM drizzle.__drizzle_migrations');
      const version = await a.pool.query<{ n: string }>('SELECT count(*)::text AS n FROM registry_version');
      await Promise.all([a.close(), b.close()]);
      const journal = JSON.parse(readFileSync(path.join(PG_MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] };
      expect(Number(applied.rows[0].n)).toBe(journal.entries.length);
      expect(version.rows[0].n).toBe('1');
    });

    it('a transaction that throws leaves nothing behind', async () => {
      const cdb = await openPgControlDb(scratch.url);
      try {
        await expect(
          cdb.transaction(async (client) => {
            await client.query(`INSERT INTO operator (username, role, password_hash, disabled, failed_logins, password_changed_at, created_at, created_by)
              VALUES ('rollback-me', 'admin', 'x', false, 0, 'now', 'now', 'test')`);
            throw new Error('the action failed');
          }),
        ).rejects.toThrow('the action failed');
        const r = await cdb.pool.query("SELECT 1 FROM operator WHERE username = 'rollback-me'");
        expect(r.rowCount).toBe(0);
      } finally {
        await cdb.close();
      }
    });
  });
});
