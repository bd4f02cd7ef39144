import { loadConfig } from '../../src/config';
import { OperatorService } from '../../src/http/operators';
import { openTestWorld, type AnyWorld } from '../helpers/world';

// Someone must always be able to approve links and manage operators: two changes made at once (two
// console requests) cannot each count on the other admin and leave none.

let w: AnyWorld;
beforeAll(async () => void (w = await openTestWorld()));
afterAll(async () => w?.close());

it('of two admins disabled at the same moment, one stays enabled and the other change is refused', async () => {
  const ops = new OperatorService(w.cdb, w.clock, loadConfig({ dataDir: w.dataDir }, {}).http);
  await ops.add({ username: 'ada', role: 'admin', password: 'correct horse battery staple' }, 'test');
  await ops.add({ username: 'grace', role: 'admin', password: 'correct horse battery staple' }, 'test');
  const results = await Promise.allSettled([ops.disable('ada', 'test'), ops.disable('grace', 'test')]);
  expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
  expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason.message).toMatch(/last enabled admin/);
  expect((await ops.list()).filter((o) => o.role === 'admin' && !o.disabled)).toHaveLength(1);
  // Making the last one an auditor is refused the same way.
  const last = (await ops.list()).find((o) => o.role === 'admin' && !o.disabled)!;
  await expect(ops.setRole(last.username, 'auditor', 'test')).rejects.toThrow(/last enabled admin/);
});
