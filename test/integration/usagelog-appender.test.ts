import { statSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { startCheckpointer } from '../../src/db/checkpoint';
import { createLogger } from '../../src/logger';
import { listLog, LogAppender, type LogEntry, verifyLog } from '../../src/usagelog';
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
const objects = () => listLog(w.cdb.db, {}).map((r) => r.object);
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('usage-log appender thread (group commit for the online query)', () => {
  it('R6.1 a record is committed before its append settles; records keep the order they were appended in; the chain verifies', async () => {
    const first = appender.append(entry('r0'), w.clock.now());
    expect(objects()).toEqual([]); // nothing is written on the caller's thread
    await first;
    expect(objects()).toEqual(['r0']);

    // Several turns of the event loop, several batches in flight at once.
    const pending: Promise<void>[] = [];
    for (let t = 0; t < 5; t++) {
      for (let i = 0; i < 40; i++) pending.push(appender.append(entry(`r${1 + t * 40 + i}`), w.clock.now()));
      await turn();
    }
    await Promise.all(pending);
    expect(objects()).toEqual(Array.from({ length: 201 }, (_, i) => `r${i}`));
    expect(verifyLog(w.cdb)).toMatchObject({ ok: true, records: 201, firstSeq: 1, lastSeq: 201 });
  });

  it('R6.1 a batch that cannot be written fails every append in it and leaves nothing of it behind', async () => {
    await appender.append(entry('before'), w.clock.now());
    const good = appender.append(entry('same-batch'), w.clock.now());
    const bad = appender.append({ ...entry('bad'), type: undefined as unknown as string }, w.clock.now()); // type is NOT NULL
    await expect(bad).rejects.toThrow(/usage log could not be written/);
    await expect(good).rejects.toThrow(/usage log could not be written/);
    await appender.append(entry('after'), w.clock.now());
    expect(objects()).toEqual(['before', 'after']);
    expect(verifyLog(w.cdb).ok).toBe(true);
  });

  it('R6.1 when the thread dies, what it had not committed is reported failed, and the next append starts a new thread', async () => {
    w.cdb.sqlite.exec('BEGIN IMMEDIATE'); // the write lock is held elsewhere: the thread waits for it
    const lost = appender.append(entry('lost'), w.clock.now());
    await turn();
    await (appender as unknown as { worker: Worker }).worker.terminate();
    await expect(lost).rejects.toThrow(/usage-log thread stopped/);
    w.cdb.sqlite.exec('ROLLBACK');

    await appender.append(entry('next'), w.clock.now());
    expect(objects()).toEqual(['next']);
    expect(verifyLog(w.cdb).ok).toBe(true);
  });

  it('close() commits everything appended before it, then stops the thread; later appends are refused', async () => {
    const pending = Array.from({ length: 50 }, (_, i) => appender.append(entry(`c${i}`), w.clock.now()));
    await appender.close();
    await Promise.all(pending);
    expect(objects()).toHaveLength(50);
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
      for (let i = 0; i < 100 && size() === before; i++) await new Promise((r) => setTimeout(r, 20));
      expect(size()).toBeGreaterThan(before + 500_000);
    } finally {
      await checkpointer.stop();
    }
  });
});
