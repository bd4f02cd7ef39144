import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { ensureKeys } from '../../src/crypto';
import type { ControlDb, Db } from '../../src/db';
import { deliveries } from '../../src/db/repositories';
import { ExtractService, SqliteSource, SupersededAttempt, sourceDbPath, type ExtractSource } from '../../src/extract';
import { openOutbox, stageFile } from '../../src/outbox';
import { publishDelivery } from '../../src/outbox/publish';
import { listLog, verifyLog } from '../../src/usagelog';
import { person, writeEntryExitSource } from '../helpers/source';
import { approvedLink, cleanupKeys, makeAgencyKeys, openTestWorld, type AgencyKeys, type AnyWorld } from '../helpers/world';

// A worker that stalls past its job lock (GC, a frozen VM) loses the job to another worker. When it
// wakes it must publish nothing: not a second file, not a second delivery row, not a second
// extract.built, and it must not overwrite or fail what the other attempt published.

let keys: AgencyKeys;
let w: AnyWorld;
let config: ReturnType<typeof loadConfig>;

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = await openTestWorld();
  config = loadConfig({ dataDir: w.dataDir }, { NIA_LINK_LOG_LEVEL: 'silent' });
  await ensureKeys(config.keysDir, new Date());
  writeEntryExitSource(w.dataDir, Array.from({ length: 500 }, (_, i) => person(i + 1)), '2026-01-01T00:00:00.000Z');
});
afterAll(async () => {
  await w?.close();
  cleanupKeys(keys);
});

/** A source whose read waits at a gate, standing for a worker frozen in the middle of a build. */
function frozenSource(): { open: () => ExtractSource; reached: Promise<void>; thaw: (failWith?: Error) => void } {
  let reachedResolve!: () => void;
  const reached = new Promise<void>((r) => (reachedResolve = r));
  let thaw!: (failWith?: Error) => void;
  const gate = new Promise<void>((resolve, reject) => (thaw = (e) => (e ? reject(e) : resolve())));
  gate.catch(() => undefined);
  const open = (): ExtractSource => {
    const inner = new SqliteSource(sourceDbPath(w.dataDir));
    return {
      watermark: (d) => inner.watermark(d),
      async *batches(d, cols, range, n) {
        reachedResolve();
        await gate;
        yield* inner.batches(d, cols, range, n);
      },
      close: () => inner.close(),
    };
  };
  return { open, reached, thaw };
}

function service(openSource: () => ExtractSource): ExtractService {
  return new ExtractService({ cdb: w.cdb, registry: w.registry, clock: w.clock, outbox: openOutbox(config), keysDir: config.keysDir, retentionDays: 30, openSource });
}
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const records = async (linkId: number, type: string) => (await listLog(w.cdb.db, { limit: 10000 })).filter((r) => r.linkId === linkId && r.type === type);

async function stalledThenTakenOver(account: string, thawWith?: Error) {
  const linkId = await approvedLink(w, keys, { account, fields: [{ name: 'person_id' }, { name: 'name_en' }] });
  const stalled = frozenSource();
  const req = { key: `extract:${account}`, linkId, full: true, trigger: 'manual' as const };
  const first = service(stalled.open).run(req, { finalAttempt: true });
  first.catch(() => undefined);
  await stalled.reached;
  // The job's lock has expired: another worker runs the same job and finishes it.
  const second = await service(() => new SqliteSource(sourceDbPath(w.dataDir))).run(req, { finalAttempt: false });
  const dir = path.dirname(second.path!);
  const published = { file: sha(second.path!), manifest: readFileSync(second.manifest!), signature: readFileSync(`${second.manifest!}.asc`) };
  stalled.thaw(thawWith);
  await expect(first).rejects.toBeInstanceOf(SupersededAttempt);
  return { linkId, second, dir, published };
}

it('a worker that wakes after losing its job to another publishes nothing: one delivery, one file, one extract.built', async () => {
  const { linkId, second, dir, published } = await stalledThenTakenOver('fence1');
  const rows = await deliveries.list(w.cdb.db, linkId);
  expect(rows).toHaveLength(1);
  expect(rows[0]).toMatchObject({ id: second.id, status: 'built', error: null });
  // The files are the ones the second attempt recorded, byte for byte.
  expect(sha(second.path!)).toBe(published.file);
  expect(sha(second.path!)).toBe(rows[0].cipherSha256);
  expect(readFileSync(second.manifest!)).toEqual(published.manifest);
  expect(readFileSync(`${second.manifest!}.asc`)).toEqual(published.signature);
  expect(createHash('sha256').update(published.manifest).digest('hex')).toBe(rows[0].manifestSha256);
  expect(readdirSync(dir).filter((f) => f.endsWith('.csv.pgp'))).toEqual([path.basename(second.path!)]);
  expect(readdirSync(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
  expect(await records(linkId, 'extract.built')).toHaveLength(1);
  expect(await records(linkId, 'extract.failed')).toHaveLength(0);
  expect((await verifyLog(w.cdb)).ok).toBe(true);
});

it('a superseded attempt that fails on its last try neither fails the delivery nor logs a failure', async () => {
  const { linkId, second } = await stalledThenTakenOver('fence2', new Error('source connection lost'));
  const rows = await deliveries.list(w.cdb.db, linkId);
  expect(rows).toHaveLength(1);
  expect(rows[0]).toMatchObject({ id: second.id, status: 'built', error: null });
  expect(await records(linkId, 'extract.built')).toHaveLength(1);
  expect(await records(linkId, 'extract.failed')).toHaveLength(0);
});

it('a job that runs again after its delivery was built returns that delivery and builds nothing', async () => {
  const linkId = await approvedLink(w, keys, { account: 'fence3', fields: [{ name: 'person_id' }] });
  const svc = service(() => new SqliteSource(sourceDbPath(w.dataDir)));
  const req = { key: 'extract:fence3', linkId, full: true, trigger: 'manual' as const };
  const a = await svc.run(req, { finalAttempt: false });
  const b = await svc.run(req, { finalAttempt: false });
  expect(b.id).toBe(a.id);
  expect(b.sha256).toBe(a.sha256);
  expect(await records(linkId, 'extract.built')).toHaveLength(1);
});

it('a publishing transaction that fails leaves no published file and no temporary one', async () => {
  const linkId = await approvedLink(w, keys, { account: 'fence4', fields: [{ name: 'person_id' }] });
  const outbox = openOutbox(config);
  const claimed = await w.cdb.write((tx) => deliveries.claim(tx, 'extract:fence4', 'attempt-1', () => ({ linkId, revision: 1, trigger: 'manual', mode: 'full', dataset: 'entry_exit', fields: ['person_id'], createdAt: new Date().toISOString() })));
  const row = 'row' in claimed ? claimed.row : claimed.done;
  const temp = stageFile(outbox, linkId, 'fence4.csv.pgp', 'ciphertext');
  await expect(
    publishDelivery(w.cdb, row.id, 'attempt-1', [temp], async (tx) => {
      await deliveries.update(tx, row.id, { status: 'built', fileName: 'fence4.csv.pgp' });
      throw new Error('disk full');
    }),
  ).rejects.toThrow('disk full');
  expect(outbox.stat(linkId, 'fence4.csv.pgp')).toBeNull();
  expect(readdirSync(path.dirname(outbox.pathOf(linkId, 'fence4.csv.pgp'))).filter((f) => f.includes('fence4'))).toEqual([]);
  expect(await deliveries.byId(w.cdb.db, row.id)).toMatchObject({ status: 'building', fileName: null });
});

describe('a commit whose outcome the worker does not hear (a connection lost at COMMIT)', () => {
  const claim = async (account: string) => {
    const linkId = await approvedLink(w, keys, { account, fields: [{ name: 'person_id' }] });
    const claimed = await w.cdb.write((tx) => deliveries.claim(tx, `extract:${account}`, 'attempt-1', () => ({ linkId, revision: 1, trigger: 'manual', mode: 'full', dataset: 'entry_exit', fields: ['person_id'], createdAt: new Date().toISOString() })));
    return { linkId, row: 'row' in claimed ? claimed.row : claimed.done };
  };
  const build = (id: number, name: string) => async (tx: Db) => void (await deliveries.update(tx, id, { status: 'built', fileName: name }));

  it('that did not commit: the published file is taken back', async () => {
    const { linkId, row } = await claim('fence5');
    const outbox = openOutbox(config);
    const temp = stageFile(outbox, linkId, 'fence5.csv.pgp', 'ciphertext');
    // The transaction rolls back after the callback ran, as a COMMIT that never reached the server.
    const lost: ControlDb = { ...w.cdb, write: (fn) => w.cdb.write(async (tx) => (await fn(tx), Promise.reject(new Error('connection lost at COMMIT')))) } as ControlDb;
    await expect(publishDelivery(lost, row.id, 'attempt-1', [temp], build(row.id, 'fence5.csv.pgp'))).rejects.toThrow('connection lost at COMMIT');
    expect(outbox.stat(linkId, 'fence5.csv.pgp')).toBeNull();
    expect(await deliveries.byId(w.cdb.db, row.id)).toMatchObject({ status: 'building' });
  });

  it('that did commit: the file stays, published with its row', async () => {
    const { linkId, row } = await claim('fence6');
    const outbox = openOutbox(config);
    const temp = stageFile(outbox, linkId, 'fence6.csv.pgp', 'ciphertext');
    const lost: ControlDb = { ...w.cdb, write: async (fn) => (await w.cdb.write(fn), Promise.reject(new Error('connection lost after COMMIT'))) } as ControlDb;
    await expect(publishDelivery(lost, row.id, 'attempt-1', [temp], build(row.id, 'fence6.csv.pgp'))).rejects.toThrow('connection lost after COMMIT');
    expect(outbox.stat(linkId, 'fence6.csv.pgp')).not.toBeNull();
    expect(await deliveries.byId(w.cdb.db, row.id)).toMatchObject({ status: 'built', fileName: 'fence6.csv.pgp' });
  });
});
