import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type ControlDb, openControlDb } from '../../src/db';
import { isUniqueViolation } from '../../src/db/dialect';
import { agencies } from '../../src/db/repositories';

// The control database's transaction runner is asynchronous: a write's callback may await between
// its statements. Writes of one process therefore take turns, and nothing another task of the
// process does while a write is open may land inside it, see it before it commits, or survive its
// rollback as if it had been part of it.

let dir: string;
let cdb: ControlDb;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'nia-write-runner-'));
  cdb = openControlDb(dir, { create: true });
});
afterAll(() => {
  cdb?.close();
  rmSync(dir, { recursive: true, force: true });
});

const row = (code: string) => ({ code, nameZh: '測試機關', nameEn: null, government: true, sponsorId: null, createdAt: new Date().toISOString(), emails: [] });
const tick = () => new Promise((r) => setTimeout(r, 5));
const exists = async (code: string) => (await agencies.byCode(cdb.db, code)) !== undefined;

it('a write started while another is open runs after it, so a rollback of the first takes nothing of the second', async () => {
  const order: string[] = [];
  const first = cdb.write(async (tx) => {
    await agencies.insert(tx, row('TURN1'));
    order.push('first inserted');
    await tick();
    order.push('first fails');
    throw new Error('first rolled back');
  });
  const second = cdb.write(async (tx) => {
    order.push('second runs');
    await agencies.insert(tx, row('TURN2'));
  });
  await expect(first).rejects.toThrow('first rolled back');
  await second;
  expect(order).toEqual(['first inserted', 'first fails', 'second runs']);
  expect(await exists('TURN1')).toBe(false);
  expect(await exists('TURN2')).toBe(true);
});

it('reads outside the write see only what has committed', async () => {
  let seenInside: boolean | undefined;
  await cdb.write(async (tx) => {
    await agencies.insert(tx, row('READ1'));
    seenInside = await exists('READ1');
  });
  expect(seenInside).toBe(false);
  expect(await exists('READ1')).toBe(true);
});

it('the reading connection refuses to write, so every change goes through a write transaction', async () => {
  await expect(agencies.insert(cdb.db, row('RO1'))).rejects.toMatchObject({ message: expect.stringMatching(/readonly/) });
  expect(await exists('RO1')).toBe(false);
});

it('a nested write that fails rolls back alone and the outer write commits the rest', async () => {
  await cdb.write(async (tx) => {
    await agencies.insert(tx, row('NEST1'));
    await expect(
      cdb.write(async (inner) => {
        await agencies.insert(inner, row('NEST2'));
        throw new Error('inner rolled back');
      }),
    ).rejects.toThrow('inner rolled back');
    await agencies.insert(tx, row('NEST3'));
  });
  expect([await exists('NEST1'), await exists('NEST2'), await exists('NEST3')]).toEqual([true, false, true]);
});

it('work begun inside a write that outlives it writes in a transaction of its own', async () => {
  let late: Promise<void> | undefined;
  await cdb.write(async (tx) => {
    await agencies.insert(tx, row('LATE1'));
    late = tick().then(() => cdb.write(async (t2) => void (await agencies.insert(t2, row('LATE2')))));
  });
  // The late write comes while this one is open: taken for a part of it, it would go with its rollback.
  await expect(
    cdb.write(async (tx) => {
      await agencies.insert(tx, row('LATE3'));
      await tick();
      await tick();
      throw new Error('third rolled back');
    }),
  ).rejects.toThrow('third rolled back');
  await late;
  expect([await exists('LATE1'), await exists('LATE2'), await exists('LATE3')]).toEqual([true, true, false]);
});

it('a failed write leaves the runner usable and no transaction open', async () => {
  await expect(cdb.write(() => Promise.reject(new Error('nothing done')))).rejects.toThrow('nothing done');
  await cdb.write(async (tx) => void (await agencies.insert(tx, row('AFTER1'))));
  expect(await exists('AFTER1')).toBe(true);
});

it('a refused statement says what the database said, never the values it was given', async () => {
  await cdb.write(async (tx) => void (await agencies.insert(tx, row('DUP1'))));
  const secret = { ...row('DUP1'), nameZh: 'A123456789-身分證號' };
  const err = await cdb.write((tx) => agencies.insert(tx, secret)).catch((e: unknown) => e);
  expect(isUniqueViolation(err)).toBe(true);
  expect((err as Error).message).toMatch(/UNIQUE constraint failed: agency\.code/);
  expect((err as Error).message).not.toContain('A123456789');
});

it('closing waits for the writes already begun, which commit', async () => {
  const dir2 = mkdtempSync(path.join(os.tmpdir(), 'nia-write-runner-close-'));
  const c2 = openControlDb(dir2, { create: true });
  const pending = [1, 2, 3].map((i) =>
    c2.write(async (tx) => {
      await tick();
      await agencies.insert(tx, row(`CLOSE${i}`));
    }),
  );
  await c2.close();
  await Promise.all(pending);
  const again = openControlDb(dir2);
  try {
    expect((await agencies.all(again.db)).map((a) => a.code)).toEqual(['CLOSE1', 'CLOSE2', 'CLOSE3']);
  } finally {
    await again.close();
    rmSync(dir2, { recursive: true, force: true });
  }
});
