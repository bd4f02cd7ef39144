import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { loadConfig } from '../../src/config';
import { ComplianceService } from '../../src/compliance';
import { afterCommit } from '../../src/db';
import { agencies } from '../../src/db/repositories';
import { approvedLink, cleanupKeys, makeAgencyKeys, openTestWorld, type AgencyKeys, type AnyWorld } from '../helpers/world';

// What a transaction changed is announced (to schedules, to SFTP sessions in other processes) only
// once it has committed — never before others can read it, never for a change that rolled back —
// and every change of what a link may do announces itself, so no caller can forget to.

let keys: AgencyKeys;
let w: AnyWorld;

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = await openTestWorld();
});
afterAll(async () => {
  await w?.close();
  cleanupKeys(keys);
});

/**
 * A reader on another connection that answers at once (a hook runs synchronously): on SQLite a
 * read-only connection to the file, on PostgreSQL psql in a process of its own.
 */
function otherConnection(): { visible(code: string): boolean; close(): void } {
  const cdb = w.cdb;
  if (cdb.dialect === 'sqlite') {
    const other = new Database(cdb.file, { readonly: true });
    return { visible: (code) => other.prepare('SELECT count(*) FROM agency WHERE code = ?').pluck().get(code) === 1, close: () => other.close() };
  }
  return {
    visible(code) {
      expect(code).toMatch(/^[A-Z0-9]+$/);
      const r = spawnSync('psql', ['-w', '-X', '-At', '-c', `SELECT count(*) FROM agency WHERE code = '${code}'`, w.database.url!], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
      return r.stdout.trim() === '1';
    },
    close: () => undefined,
  };
}

it('hooks run after the commit, in order, and not at all when the transaction rolls back', async () => {
  // Another connection (another process would use one) sees the change when the first hook runs.
  const other = otherConnection();
  const visible = (code: string) => other.visible(code);
  const seen: string[] = [];
  try {
    await w.cdb.write(async (tx) => {
      await agencies.insert(tx, { code: 'HOOK1', nameZh: '測試機關', nameEn: null, government: true, sponsorId: null, createdAt: new Date().toISOString(), emails: [] });
      afterCommit(tx, () => seen.push(`first, committed: ${visible('HOOK1')}`));
      afterCommit(tx, () => seen.push('second'));
      seen.push(`in the transaction, committed: ${visible('HOOK1')}`);
    });
    expect(seen).toEqual(['in the transaction, committed: false', 'first, committed: true', 'second']);
    seen.length = 0;
    await expect(
      w.cdb.write(async (tx) => {
        await agencies.insert(tx, { code: 'HOOK2', nameZh: '測試機關', nameEn: null, government: true, sponsorId: null, createdAt: new Date().toISOString(), emails: [] });
        afterCommit(tx, () => seen.push('must not run'));
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(seen).toEqual([]);
    expect(visible('HOOK2')).toBe(false);
  } finally {
    other.close();
  }
});

it('a write nested in another runs its hooks when the outer one commits, and not at all when the outer one rolls back', async () => {
  const seen: string[] = [];
  await w.cdb.write(async (tx) => {
    await w.cdb.write((inner) => afterCommit(inner, () => seen.push('inner')));
    seen.push('outer still open');
    afterCommit(tx, () => seen.push('outer'));
  });
  expect(seen).toEqual(['outer still open', 'inner', 'outer']);
  seen.length = 0;
  await expect(
    w.cdb.write(async () => {
      await w.cdb.write((inner) => afterCommit(inner, () => seen.push('must not run')));
      throw new Error('outer rolled back');
    }),
  ).rejects.toThrow('outer rolled back');
  expect(seen).toEqual([]);
  // A nested write that rolls back inside an outer one that commits: only the outer's notices go out.
  await w.cdb.write(async (tx) => {
    await expect(
      w.cdb.write((inner) => {
        afterCommit(inner, () => seen.push('rolled-back savepoint'));
        throw new Error('inner rolled back');
      }),
    ).rejects.toThrow('inner rolled back');
    afterCommit(tx, () => seen.push('outer committed'));
  });
  expect(seen).toEqual(['outer committed']);
  seen.length = 0;
  // And the runner is usable again afterwards.
  await w.cdb.write((tx) => afterCommit(tx, () => seen.push('again')));
  expect(seen).toEqual(['again']);
});

it('a write started elsewhere while another is open waits its turn: no savepoint of it, its hooks its own', async () => {
  const seen: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const first = w.cdb.write(async (tx) => {
    afterCommit(tx, () => seen.push('first'));
    await gate;
  });
  const second = w.cdb.write((tx) => afterCommit(tx, () => seen.push('second')));
  await new Promise((r) => setImmediate(r));
  expect(seen).toEqual([]);
  release();
  await Promise.all([first, second]);
  expect(seen).toEqual(['first', 'second']);
});

it('afterCommit outside a write transaction is refused', () => {
  expect(() => afterCommit(w.cdb.db, () => undefined)).toThrow(/not inside a write transaction/);
});

it('a suspension is announced once, after its commit, and the listener reads the committed state', async () => {
  const id = await approvedLink(w, keys, { account: 'ac1' });
  // Each announcement is counted when it is made; what the listener then reads is awaited below.
  const heard: Promise<string>[] = [];
  w.registry.onLinkChange((linkId) => heard.push(w.registry.state(linkId).then((s) => `${linkId}:${s.link.status}`)));
  const config = { ...loadConfig({ dataDir: w.dataDir }, { NIA_LINK_LOG_LEVEL: 'silent' }), database: w.database };
  const compliance = new ComplianceService({ cdb: w.cdb, registry: w.registry, clock: w.clock, config });
  await compliance.suspend(id, 'an audit found the data on a shared drive', 'auditor');
  expect(await Promise.all(heard)).toEqual([`${id}:suspended`]);
  // A refused action (the link is suspended already) rolls back and announces nothing.
  await expect(compliance.suspend(id, 'again', 'auditor')).rejects.toThrow();
  expect(await Promise.all(heard)).toEqual([`${id}:suspended`]);
  // Approving another link announces it once.
  heard.length = 0;
  const other = await approvedLink(w, keys, { account: 'ac2' });
  expect(await Promise.all(heard)).toEqual([`${other}:active`]);
});
