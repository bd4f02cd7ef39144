import Database from 'better-sqlite3';
import type { Worker as ClusterWorker } from 'node:cluster';
import { EventEmitter } from 'node:events';
import { statSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { startCheckpointer } from '../../src/db/checkpoint';
import { createLogger } from '../../src/logger';
import { listLog, LogAppender, type LogEntry, serveClusterAppends, verifyLog } from '../../src/usagelog';
import { openWorld, type TestWorld } from '../helpers/world';

let w: TestWorld;
let appender: LogAppender;
beforeEach(() => {
  w = openWorld();
  appender = new LogAppender(w.cdb.file);
});
afterEach(async () => {
  await appender.close();
  w.close();
});

const entry = (object: string): LogEntry => ({ type: 'query.answered', agency: 'A001', linkId: null, actor: 'cert:0123456789abcdef', ip: '127.0.0.1', channel: 'online-query', object, detail: { ids: 1, reference: 'ref' } });
const objects = async () => (await listLog(w.cdb.db, {})).map((r) => r.object);
const turn = () => new Promise((resolve) => setImmediate(resolve));
// (turn: lets the appends of one turn leave as a batch before the next ones are made)

describe('usage-log appender thread (group commit for the online query)', () => {
  it('R6.1 a record is committed before its append settles; records keep the order they were appended in; the chain verifies', async () => {
    await appender.append(entry('r0'), w.clock.now());
    expect(await objects()).toEqual(['r0']);

    // Several turns of the event loop, several batches in flight at once.
    const pending: Promise<void>[] = [];
    for (let t = 0; t < 5; t++) {
      for (let i = 0; i < 40; i++) pending.push(appender.append(entry(`r${1 + t * 40 + i}`), w.clock.now()));
      await turn();
    }
    await Promise.all(pending);
    expect(await objects()).toEqual(Array.from({ length: 201 }, (_, i) => `r${i}`));
    expect(await verifyLog(w.cdb)).toMatchObject({ ok: true, records: 201, firstSeq: 1, lastSeq: 201 });
  });

  it('R6.1 a batch that cannot be written fails every append in it and leaves nothing of it behind', async () => {
    await appender.append(entry('before'), w.clock.now());
    const good = appender.append(entry('same-batch'), w.clock.now());
    const bad = appender.append({ ...entry('bad'), type: undefined as unknown as string }, w.clock.now()); // type is NOT NULL
    await expect(bad).rejects.toThrow(/usage log could not be written/);
    await expect(good).rejects.toThrow(/usage log could not be written/);
    await appender.append(entry('after'), w.clock.now());
    expect(await objects()).toEqual(['before', 'after']);
    expect((await verifyLog(w.cdb)).ok).toBe(true);
  });

  it('R6.1 when the thread dies, what it had not committed is reported failed, and the next append starts a new thread', async () => {
    await appender.append(entry('first'), w.clock.now());
    // (`w.cdb.sqlite` only reads: another connection to the file takes the lock)
    const elsewhere = new Database(w.cdb.file);
    elsewhere.exec('BEGIN IMMEDIATE'); // the write lock is held elsewhere: the thread waits for it
    const lost = appender.append(entry('lost'), w.clock.now());
    await new Promise((r) => setTimeout(r, 200));
    await (appender as unknown as { worker: Worker }).worker.terminate();
    await expect(lost).rejects.toThrow(/usage-log thread stopped/);
    elsewhere.exec('ROLLBACK');
    elsewhere.close();

    await appender.append(entry('next'), w.clock.now());
    expect(await objects()).toEqual(['first', 'next']);
    expect((await verifyLog(w.cdb)).ok).toBe(true);
  });

  it('ready() fails when the thread cannot open the database, and so does every append', async () => {
    const broken = new LogAppender(`${w.dataDir}/no-such.db`);
    await expect(broken.ready()).rejects.toThrow(/usage-log thread/);
    await expect(broken.append(entry('x'), w.clock.now())).rejects.toThrow();
    await broken.close();
  });

  it('the primary answering a worker that died meanwhile is not an error that ends the primary', async () => {
    // As node:cluster's Worker does: a failed send goes to the callback if there is one, else it is an
    // 'error' event, which ends the process when nothing listens.
    class DyingWorker extends EventEmitter {
      isConnected = () => true;
      send(_m: unknown, _h?: unknown, _o?: unknown, cb?: (err: Error | null) => void): boolean {
        const err = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
        if (cb) setImmediate(cb, err);
        else setImmediate(() => this.emit('error', err));
        return false;
      }
    }
    const worker = new DyingWorker();
    serveClusterAppends(worker as unknown as ClusterWorker, appender);
    const uncaught: Error[] = [];
    const onUncaught = (err: Error) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      worker.emit('message', { appendLog: { batch: 1, records: [{ entry: entry('from-worker'), at: w.clock.now().getTime() }] } });
      for (let i = 0; i < 50 && (await objects()).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    expect(await objects()).toEqual(['from-worker']); // committed, though nobody was left to tell
    expect(uncaught).toEqual([]);
  });

  it('close() commits everything appended before it, then stops the thread; later appends are refused', async () => {
    const pending = Array.from({ length: 50 }, (_, i) => appender.append(entry(`c${i}`), w.clock.now()));
    await appender.close();
    await Promise.all(pending);
    expect(await objects()).toHaveLength(50);
    await expect(appender.append(entry('late'), w.clock.now())).rejects.toThrow(/closed/);
  });

  it('the appender never checkpoints; the checkpointer thread copies its WAL into the database file', async () => {
    const size = () => statSync(w.cdb.file).size;
    const before = size();
    // 200 commits, well past SQLite's automatic checkpoint at 1000 WAL pages.
    for (let t = 0; t < 200; t++) await Promise.all(Array.from({ length: 20 }, (_, i) => appender.append({ ...entry(`k${t}.${i}`), detail: { pad: 'x'.repeat(200) } }, w.clock.now())));
    expect(statSync(`${w.cdb.file}-wal`).size).toBeGreaterThan(1000 * 4096);
    expect(size()).toBe(before); // all of it is still in the WAL
    const checkpointer = startCheckpointer(w.cdb.file, 20, createLogger('silent'));
    try {
      // A checkpoint writes pages one by one: wait for it to be through, not just started.
      for (let i = 0; i < 250 && size() <= before + 500_000; i++) await new Promise((r) => setTimeout(r, 20));
      expect(size()).toBeGreaterThan(before + 500_000);
    } finally {
      await checkpointer.stop();
    }
  });
});
