import type { LightMyRequestResponse } from 'fastify';
import { inbox } from '../../src/db/repositories';
import { consoleWorld, OPERATORS, PASSWORD, type ConsoleWorld } from '../helpers/console';

const ORIGIN = 'http://localhost:80';
let cw: ConsoleWorld;
let cookie: string;

const cookieOf = (res: LightMyRequestResponse) => {
  const c = res.headers['set-cookie'];
  const first = Array.isArray(c) ? c[0] : c;
  return first?.split(';')[0];
};

beforeAll(async () => {
  cw = await consoleWorld();
  const res = await cw.app.inject({ method: 'POST', url: '/login', headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ username: OPERATORS.auditor, password: PASSWORD }).toString() });
  expect(res.statusCode).toBe(303);
  cookie = cookieOf(res)!;
  const linkId = cw.delivered.linkId;
  const at = cw.w.clock.now().toISOString();
  await cw.w.cdb.write(async (tx) => {
    const a = await inbox.insertUpload(tx, { linkId, account: 'a001', ip: '127.0.0.1', name: 'req-007.csv.pgp', kind: 'batch', bytes: 1234, sha256: 'a'.repeat(64), spool: '/nonexistent/a', receivedAt: at });
    await inbox.setState(tx, a, 'answered', { code: null, outcome: { reference: '健保承字第1150000007號', valid: 42, matched: 17, rows: 99, file: 'req-007.result.csv.pgp' }, at });
    const b = await inbox.insertUpload(tx, { linkId, account: 'a001', ip: '127.0.0.1', name: 'req-008.csv.pgp', kind: 'batch', bytes: 10, sha256: 'b'.repeat(64), spool: '/nonexistent/b', receivedAt: at });
    await inbox.setState(tx, b, 'refused', { code: 'signature.missing', outcome: { code: 'signature.missing', message: 'not signed' }, at });
  });
});
afterAll(async () => cw?.close());

describe('R2.2 the console lists batch requests and their outcome', () => {
  it('R2.2: /batches shows each upload with its state, counts, reference, result file or refusal code', async () => {
    const res = await cw.app.inject({ url: '/batches', headers: { cookie } });
    expect(res.statusCode).toBe(200);
    for (const s of ['req-007.csv.pgp', 'req-007.result.csv.pgp', '健保承字第1150000007號', '>42<', '>17<', '>99<', 'req-008.csv.pgp', 'signature.missing']) expect(res.body).toContain(s);
    const other = await cw.app.inject({ url: `/batches?link=${cw.delivered.linkId + 1000}`, headers: { cookie } });
    expect(other.statusCode).toBe(200);
    expect(other.body).not.toContain('req-007.csv.pgp');
  });

  it('R2.2: /batches needs a logged-in operator', async () => {
    const res = await cw.app.inject({ url: '/batches' });
    expect([302, 303, 401]).toContain(res.statusCode);
    expect(res.body).not.toContain('req-007');
  });
});
