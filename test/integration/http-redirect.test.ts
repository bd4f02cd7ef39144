import type { LightMyRequestResponse } from 'fastify';
import { consoleWorld, OPERATORS, PASSWORD, type ConsoleWorld } from '../helpers/console';

const ORIGIN = 'http://localhost:80';
let cw: ConsoleWorld;
let cookie: string;

const cookieOf = (res: LightMyRequestResponse) => {
  const set = [res.headers['set-cookie']].flat().find((c) => c && /nia-session=/.test(c));
  return set ? set.split(';')[0] : undefined;
};

/** The login form as posted by a browser that rendered /login?next=… (the hidden field carries `next`). */
const postLogin = (next: string) =>
  cw.app.inject({
    method: 'POST',
    url: '/login',
    headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ username: OPERATORS.auditor, password: PASSWORD, next }).toString(),
  });

/** The attacker's link opened by an operator who is already logged in: /login sends them on at once. */
const openLink = (rawQuery: string) => cw.app.inject({ method: 'GET', url: `/login?next=${rawQuery}`, headers: { cookie } });

beforeAll(async () => {
  cw = await consoleWorld({}, { http: { login: { ipMaxAttempts: 100 } } });
  const res = await postLogin('/');
  cookie = cookieOf(res)!;
  expect(cookie).toBeDefined();
});
afterAll(async () => {
  await cw?.close();
});

/**
 * The `next` values of the attack, as they appear in the attacker's link (raw query text), and as
 * the login form posts them back (decoded once by the query parser, then posted as form fields).
 */
const ATTACKS: { raw: string; decoded: string }[] = [
  { raw: '/%09/evil.example/phish', decoded: '/\t/evil.example/phish' },
  { raw: '//evil.example', decoded: '//evil.example' },
  { raw: '/%5Cevil.example', decoded: '/\\evil.example' },
  { raw: 'https://evil.example', decoded: 'https://evil.example' },
  { raw: '/%2F%2Fevil.example', decoded: '///evil.example' },
  { raw: '/%252F%252Fevil.example', decoded: '/%2F%2Fevil.example' },
  { raw: '/%0D%0A/evil.example', decoded: '/\r\n/evil.example' },
  { raw: '/%E3%80%80/evil.example', decoded: '/\u3000/evil.example' },
  { raw: '/links/..%2F..%2F%2Fevil.example', decoded: '/links/../..//evil.example' },
  { raw: '/not-a-console-page', decoded: '/not-a-console-page' },
];

describe('open redirect after login (next=)', () => {
  it.each(ATTACKS)('a logged-in operator following /login?next=$raw stays on the console (Location: /)', async ({ raw }) => {
    const res = await openLink(raw);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/');
  });

  it.each(ATTACKS)('the login form posting next=$raw (as sent, and as decoded) sends the operator to / only', async ({ raw, decoded }) => {
    for (const next of [raw, decoded]) {
      const res = await postLogin(next);
      expect({ next, status: res.statusCode, location: res.headers.location }).toEqual({ next, status: 303, location: '/' });
    }
  });

  it('the login page does not carry a refused next into its form', async () => {
    const res = await cw.app.inject({ method: 'GET', url: '/login?next=/%09/evil.example/phish' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/<input type="hidden" name="next" value="\/">/);
  });

  it('a same-origin path of a console page is kept, with its query', async () => {
    expect((await openLink('/links/1')).headers.location).toBe('/links/1');
    expect((await postLogin('/links/1')).headers.location).toBe('/links/1');
    expect((await postLogin('/deliveries?link=1')).headers.location).toBe('/deliveries?link=1');
    expect((await openLink('%2Flog%3Fverify%3D1')).headers.location).toBe('/log?verify=1');
  });
});
