import { AllowSet } from '../../src/sftp/gate';

// The SFTP gate's in-memory allow-list: a change announced while the list is being read must not
// be lost behind that read (the old list would stand until the next periodic rebuild).

function controlled() {
  const reads: { resolve: (cidrs: string[]) => void }[] = [];
  const set = new AllowSet(
    () => new Promise<string[]>((resolve) => reads.push({ resolve })),
    (err) => {
      throw err;
    },
  );
  return { set, reads };
}

const turn = () => new Promise((r) => setImmediate(r));

it('a change announced while the allow-list is being read is not lost: the next connection reads it again', async () => {
  const { set, reads } = controlled();
  const first = set.allows('10.0.0.1', 'v1');
  await turn();
  expect(reads).toHaveLength(1);
  // The account's address is withdrawn while the first read is still under way.
  set.invalidate();
  reads[0].resolve(['10.0.0.1/32']); // read before the change
  expect(await first).toBe(true); // the connection that was waiting is answered from it
  const second = set.allows('10.0.0.1', 'v1');
  await turn();
  expect(reads).toHaveLength(2); // not answered from the stale list
  reads[1].resolve([]);
  expect(await second).toBe(false);
  expect(await set.allows('10.0.0.1', 'v1')).toBe(false);
  expect(reads).toHaveLength(2); // and the fresh list stands
});

it('a connection after the change does not wait on the read begun before it, and an older read finishing last does not replace the newer list', async () => {
  const { set, reads } = controlled();
  const before = set.allows('10.0.0.2', 'v1');
  await turn();
  set.invalidate();
  const after = set.allows('10.0.0.2', 'v1');
  await turn();
  expect(reads).toHaveLength(2);
  reads[1].resolve([]); // the newer read: the address is gone
  expect(await after).toBe(false);
  reads[0].resolve(['10.0.0.0/24']); // the older read ends last
  await before;
  expect(await set.allows('10.0.0.2', 'v1')).toBe(false);
  expect(reads).toHaveLength(2);
});

it('a new registry version (the key) is read once however many connections ask at the same time', async () => {
  const { set, reads } = controlled();
  const asks = [set.allows('10.0.0.3', 'v2'), set.allows('10.0.0.4', 'v2'), set.allows('10.0.0.3', 'v2')];
  await turn();
  expect(reads).toHaveLength(1);
  reads[0].resolve(['10.0.0.3/32']);
  expect(await Promise.all(asks)).toEqual([true, false, true]);
});
