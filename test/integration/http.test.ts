import type { LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { OperatorService, type RouteInfo } from '../../src/http';
import { hotp, totpStep } from '../../src/http/totp';
import { listLog } from '../../src/usagelog';
import { consoleWorld, type ConsoleWorld, EVIL_PURPOSE, OPERATORS, PASSWORD } from '../helpers/console';
import { application, approvedLink, eventually, makeLegacyScopeIn, tmpDir } from '../helpers/world';

const ORIGIN = 'http://localhost:80';
const METRICS_TOKEN = 'm'.repeat(40);

let cw: ConsoleWorld;
type Role = keyof typeof OPERATORS;
const sessions = {} as Record<Role, { cookie: string; csrf: string }>;

const cookieOf = (res: LightMyRequestResponse) => {
  const set = [res.headers['set-cookie']].flat().find((c) => c && /nia-session=/.test(c));
  return set ? set.split(';')[0] : undefined;
};

async function login(username: string, password = PASSWORD, extra: Record<string, string> = {}) {
  return cw.app.inject({ method: 'POST', url: '/login', headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ username, password, ...extra }).toString() });
}

async function sessionOf(username: string): Promise<{ cookie: string; csrf: string }> {
  const res = await login(username);
  expect(res.statusCode).toBe(303);
  const cookie = cookieOf(res)!;
  const s = await cw.app.inject({ url: '/api/session', headers: { cookie } });
  return { cookie, csrf: s.json().csrfToken };
}

/** A request as a logged-in browser would send it: cookie, our Origin, and the CSRF token on changes. */
function as(role: Role, method: string, url: string, payload?: Record<string, string>) {
  const s = sessions[role];
  const form = payload ? new URLSearchParams({ _csrf: s.csrf, ...payload }).toString() : undefined;
  return cw.app.inject({ method: method as 'GET', url, headers: { cookie: s.cookie, origin: ORIGIN, 'x-csrf-token': s.csrf, ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) }, payload: form });
}

const logOf = (type: string) => listLog(cw.w.cdb.db, { type });

beforeAll(async () => {
  // Many logins from 127.0.0.1 in this file: the per-address limit is tried from another address.
  cw = await consoleWorld({ NIA_LINK_METRICS_TOKEN: METRICS_TOKEN }, { http: { login: { ipMaxAttempts: 40 } } });
  for (const role of Object.keys(OPERATORS) as Role[]) sessions[role] = await sessionOf(OPERATORS[role]);
});
afterAll(async () => {
  await cw?.close();
});

/** Route patterns with their parameters filled in. */
function sampleUrl(r: RouteInfo): string {
  return r.url
    .replace(/:id\b/, String(cw.delivered.deliveryId))
    .replace(':username', OPERATORS.auditor)
    .replace(':queueName', 'deliver')
    .replace(':jobId', '1')
    .replace(':queueStatus', 'failed')
    .replace(':schedulerId', 'none')
    .replace(':name', 'none')
    .replace('*', 'none');
}

describe('route inventory', () => {
  const routes = () => cw.app.inventory.filter((r) => r.method !== 'HEAD');

  it('only /healthz, the login page and the stylesheet are public; every other route names its roles', () => {
    const pub = routes().filter((r) => r.public).map((r) => `${r.method} ${r.url}`).sort();
    expect(pub).toEqual(['GET /healthz', 'GET /login', 'GET /static/:name', 'POST /login']);
    for (const r of routes().filter((x) => !x.public)) expect({ route: `${r.method} ${r.url}`, roles: Array.isArray(r.roles) }).toEqual({ route: `${r.method} ${r.url}`, roles: true });
    // The console is all there: pages, API, both boards and metrics.
    const urls = new Set(routes().map((r) => r.url));
    for (const u of ['/', '/links/:id', '/deliveries/:id', '/log', '/api/links', '/api/links/:id', '/api/deliveries', '/api/usage-log', '/api/findings', '/api/anomalies', '/queues', '/queues/read-only', '/metrics']) expect(urls).toContain(u);
  });

  it('without a session every protected route answers 401 or sends to the login page', async () => {
    for (const r of routes().filter((x) => !x.public)) {
      const res = await cw.app.inject({ method: r.method as 'GET', url: sampleUrl(r), headers: { origin: ORIGIN } });
      expect({ route: `${r.method} ${r.url}`, status: [401, 303].includes(res.statusCode) }).toEqual({ route: `${r.method} ${r.url}`, status: true });
      if (res.statusCode === 303) expect(res.headers.location).toMatch(/^\/login\?next=/);
    }
  });

  it('a role that may not use a route gets 403; one that may gets past the guard', async () => {
    let refusals = 0;
    for (const r of routes().filter((x) => !x.public)) {
      for (const role of Object.keys(OPERATORS) as Role[]) {
        const allowed = r.roles!.includes(role);
        // Only refusals and reads are tried for every role: the allowed writes are tried one by one below.
        if (allowed && r.method !== 'GET') continue;
        if (allowed && role === 'auditor' && r.url.startsWith('/queues') && !r.url.startsWith('/queues/read-only') && !r.url.includes('/api/') && !r.url.includes('/static/')) continue; // sent to the read-only board
        if (r.url === '/logout') continue;
        const res = await as(role, r.method, sampleUrl(r), r.method === 'GET' ? undefined : {});
        const label = `${role} ${r.method} ${r.url}`;
        if (!allowed) {
          refusals++;
          expect({ label, status: res.statusCode }).toEqual({ label, status: 403 });
        } else {
          expect({ label, ok: ![401, 403].includes(res.statusCode) && res.statusCode < 500 }).toEqual({ label, ok: true });
        }
      }
    }
    expect(refusals).toBeGreaterThan(40);
    // Refused changes are on record with who tried, from where.
    await eventually(async () => {
      const denied = await logOf('operator.denied');
      expect(denied.length).toBeGreaterThan(0);
      expect(denied[0]).toMatchObject({ channel: 'console', ip: '127.0.0.1' });
    });
  });

  it('registering a protected route without roles fails at start-up', async () => {
    const Fastify = (await import('fastify')).default;
    const { protect } = await import('../../src/http/auth');
    const app = Fastify();
    const start = async () => {
      await app.register(async (scope) => {
        protect(scope, { cdb: cw.w.cdb, clock: cw.w.clock, log: { error() {}, warn() {} } as never }, { kind: 'api' });
        scope.get('/forgotten', async () => 'x');
      });
      await app.ready();
    };
    await expect(start()).rejects.toThrow(/GET \/forgotten says no roles/);
  });
});

describe('login and sessions', () => {
  it('health says only whether the database and Redis answer', async () => {
    const res = await cw.app.inject('/healthz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', db: 'ok', redis: 'ok' });
  });

  it('the session cookie is HttpOnly and SameSite=Strict; Secure only over TLS', async () => {
    const res = await login(OPERATORS.auditor);
    const set = [res.headers['set-cookie']].flat().join('\n');
    expect(set).toMatch(/nia-session=[^;]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Strict/);
    expect(set).not.toMatch(/Secure/);
  });

  it('a wrong password is refused with one message, and logged with the address', async () => {
    const before = (await logOf('auth.failed')).length;
    const res = await login(OPERATORS.auditor, 'wrong password here');
    expect(res.statusCode).toBe(401);
    expect(cookieOf(res)).toBeUndefined();
    const unknown = await login('nobody', 'wrong password here');
    expect(unknown.statusCode).toBe(401);
    expect(unknown.body).toBe(res.body.replace('value="audrey"', 'value="nobody"'));
    const failed = (await logOf('auth.failed')).slice(before);
    expect(failed.map((r) => JSON.parse(r.detail).reason)).toEqual(['bad-password', 'unknown-operator']);
    expect(failed[0]).toMatchObject({ actor: 'audrey', ip: '127.0.0.1', channel: 'console' });
    const ok = (await logOf('auth.succeeded')).filter((r) => r.channel === 'console');
    expect(ok.length).toBeGreaterThanOrEqual(3);
  });

  it('consecutive failures lock the operator; an admin unlocks', async () => {
    const ops = new OperatorService(cw.w.cdb, cw.w.clock, cw.config.http);
    await ops.add({ username: 'lou', role: 'auditor', password: PASSWORD }, 'test');
    for (let i = 0; i < cw.config.http.login.maxFailures; i++) expect((await login('lou', 'not the password!')).statusCode).toBe(401);
    expect((await logOf('operator.locked')).at(-1)).toMatchObject({ actor: 'lou', object: 'operator:lou' });
    expect((await login('lou')).statusCode).toBe(401);
    expect(JSON.parse((await logOf('auth.failed')).at(-1)!.detail).reason).toBe('locked');
    const page = await as('admin', 'GET', '/operators');
    expect(page.body).toContain('/operators/lou/unlock');
    expect((await as('admin', 'POST', '/operators/lou/unlock', {})).statusCode).toBe(303);
    expect((await login('lou')).statusCode).toBe(303);
  });

  it('a TOTP operator needs a fresh code; a code works once', async () => {
    const ops = new OperatorService(cw.w.cdb, cw.w.clock, cw.config.http);
    await ops.add({ username: 'tina', role: 'auditor', password: PASSWORD }, 'test');
    const { secret } = await ops.enableTotp('tina', 'test');
    expect((await login('tina')).statusCode).toBe(401);
    const code = hotp(secret, totpStep(cw.w.clock.now()));
    expect((await login('tina', PASSWORD, { code })).statusCode).toBe(303);
    expect((await login('tina', PASSWORD, { code })).statusCode).toBe(401);
  });

  it('sessions end when idle too long, and at logout', async () => {
    const s = await sessionOf('lou');
    expect((await cw.app.inject({ url: '/', headers: { cookie: s.cookie } })).statusCode).toBe(200);
    cw.w.clock.advanceDays(1 / 24); // 60 minutes, past the 30-minute idle limit
    try {
      const res = await cw.app.inject({ url: '/', headers: { cookie: s.cookie } });
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe('/login?next=%2F');
    } finally {
      cw.w.clock.advanceDays(-1 / 24);
    }
    for (const role of Object.keys(OPERATORS) as Role[]) sessions[role] = await sessionOf(OPERATORS[role]);
    const t = await sessionOf('lou');
    const out = await cw.app.inject({ method: 'POST', url: '/logout', headers: { cookie: t.cookie, origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' }, payload: `_csrf=${t.csrf}` });
    expect(out.statusCode).toBe(303);
    expect((await cw.app.inject({ url: '/api/session', headers: { cookie: t.cookie } })).statusCode).toBe(401);
    expect((await logOf('session.closed')).at(-1)).toMatchObject({ actor: 'lou', channel: 'console' });
  });

  it('logins from one address are limited', async () => {
    let last: LightMyRequestResponse | undefined;
    for (let i = 0; i < cw.config.http.login.ipMaxAttempts + 1; i++) last = await cw.app.inject({ method: 'POST', url: '/login', remoteAddress: '10.9.8.7', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'username=nobody&password=x' });
    expect(last!.statusCode).toBe(429);
    expect(last!.headers['retry-after']).toMatch(/^\d+$/);
    expect((await logOf('auth.failed')).filter((r) => r.ip === '10.9.8.7' && JSON.parse(r.detail).reason === 'rate-limited')).toHaveLength(1);
  });

  it('the way back after login stays on this site', async () => {
    for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example']) {
      const res = await login(OPERATORS.auditor, PASSWORD, { next });
      expect(res.headers.location).toBe('/');
    }
    expect((await login(OPERATORS.auditor, PASSWORD, { next: '/links?status=active' })).headers.location).toBe('/links?status=active');
  });
});

describe('state-changing requests', () => {
  it('need the session CSRF token and our own origin', async () => {
    const s = sessions.operator;
    const url = `/deliveries/${cw.delivered.deliveryId}/retry`;
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    expect((await cw.app.inject({ method: 'POST', url, headers: { cookie: s.cookie, origin: ORIGIN, ...form }, payload: '' })).statusCode).toBe(403);
    expect((await cw.app.inject({ method: 'POST', url, headers: { cookie: s.cookie, origin: ORIGIN, ...form }, payload: '_csrf=wrong' })).statusCode).toBe(403);
    expect((await cw.app.inject({ method: 'POST', url, headers: { cookie: s.cookie, origin: 'https://evil.example', ...form }, payload: `_csrf=${s.csrf}` })).statusCode).toBe(403);
    expect((await cw.app.inject({ method: 'POST', url: '/login', headers: { origin: 'https://evil.example', ...form }, payload: `username=ada&password=${encodeURIComponent(PASSWORD)}` })).statusCode).toBe(403);
    expect((await cw.services.extracts.get(cw.delivered.deliveryId))!.channels['sftp-push']).toMatchObject({ status: 'failed' });
  });

  it('an auditor may not retry a push; an operator may, and it is logged with who and from where', async () => {
    const url = `/deliveries/${cw.delivered.deliveryId}/retry`;
    const page = await as('auditor', 'GET', `/deliveries/${cw.delivered.deliveryId}`);
    expect(page.body).not.toContain(url);
    expect((await as('auditor', 'POST', url, {})).statusCode).toBe(403);
    expect((await cw.services.extracts.get(cw.delivered.deliveryId))!.channels['sftp-push']).toMatchObject({ status: 'failed' });
    const res = await as('operator', 'POST', url, {});
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(`/deliveries/${cw.delivered.deliveryId}?done=retried`);
    expect((await cw.services.extracts.get(cw.delivered.deliveryId))!.channels['sftp-push']).toMatchObject({ status: 'queued' });
    // The record is written as the response goes out (on PostgreSQL it commits a moment after).
    await eventually(async () => {
      const rec = (await logOf('operator.action')).at(-1)!;
      expect(rec).toMatchObject({ actor: OPERATORS.operator, ip: '127.0.0.1', channel: 'console', linkId: cw.delivered.linkId, agency: 'A001', object: `delivery:${cw.delivered.deliveryId}` });
      expect(JSON.parse(rec.detail)).toMatchObject({ action: 'delivery.retry', channels: ['sftp-push'], status: 303 });
    });
    // Nothing left to retry: refused with a reason, as JSON on the API.
    const again = await as('operator', 'POST', `/api/deliveries/${cw.delivered.deliveryId}/retry`);
    expect(again.statusCode).toBe(422);
    expect(again.json()).toEqual({ error: `delivery ${cw.delivered.deliveryId} has no failed or refused channel to retry`, code: 'delivery.nothing-to-retry', kind: 'refused' });
  });

  it('an admin approves a change request after confirming; the link page shows the difference', async () => {
    const { changeId, linkId } = cw.delivered;
    expect((await as('operator', 'GET', `/changes/${changeId}/approve`)).statusCode).toBe(403);
    const confirm = await as('admin', 'GET', `/changes/${changeId}/approve`);
    expect(confirm.body).toContain(`action="/changes/${changeId}/approve"`);
    expect(confirm.body).toContain('name="confirm" value="yes"');
    expect((await as('admin', 'POST', `/changes/${changeId}/approve`, {})).statusCode).toBe(400);
    // R-F9: the approval records NIA's reply letter; without one nothing is approved.
    expect(confirm.body).toContain('name="letterNo"');
    const unlettered = await as('admin', 'POST', `/changes/${changeId}/approve`, { confirm: 'yes' });
    // A missing input is the request's fault (400); the page words it without the CLI's flags.
    expect([unlettered.statusCode, unlettered.body]).toEqual([400, expect.stringContaining('without NIA&#39;s reply letter: give its number and date')]);
    expect(unlettered.body).not.toContain('--letter');
    const res = await as('admin', 'POST', `/changes/${changeId}/approve`, { confirm: 'yes', letterNo: '移署資字第1150000009號', letterDate: '2026-03-01' });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(`/links/${linkId}?done=done`);
    const api = (await as('auditor', 'GET', `/api/links/${linkId}`)).json();
    expect(api.link.revision).toBe(2);
    expect(api.revisions[0]).toMatchObject({ number: 2, changeRequestId: changeId, changes: [{ item: 'officer', before: '王小明', after: '林小華' }] });
    const page = await as('auditor', 'GET', `/links/${linkId}?lang=en`);
    expect(page.body).toMatch(/<td>Case officer<\/td><td>王小明<\/td><td>林小華<\/td>/);
    expect((await logOf('change.approved')).at(-1)).toMatchObject({ actor: OPERATORS.admin, linkId, revision: 2 });
  });

  it('an admin disables an operator after confirming, but not themselves', async () => {
    const self = await as('admin', 'POST', `/operators/${OPERATORS.admin}/disable`, { confirm: 'yes' });
    expect(self.statusCode).toBe(422);
    expect(self.body).toContain('you cannot disable yourself');
    expect((await as('admin', 'GET', '/operators/lou/disable')).body).toContain('action="/operators/lou/disable"');
    expect((await as('admin', 'POST', '/operators/lou/disable', { confirm: 'yes' })).statusCode).toBe(303);
    expect((await login('lou')).statusCode).toBe(401);
    await eventually(async () => {
      expect(JSON.parse((await logOf('operator.action')).at(-1)!.detail)).toMatchObject({ action: 'operator.disable', status: 303 });
      expect(JSON.parse((await logOf('operator.action')).at(-2)!.detail)).toMatchObject({ action: 'operator.disable', status: 422, error: 'you cannot disable yourself' });
    });
  });
});

describe('what pages show', () => {
  it('markup in a link purpose is shown as text, on every page that shows it', async () => {
    const page = await as('admin', 'GET', `/links/${cw.evilLinkId}`);
    expect(page.statusCode).toBe(200);
    expect(page.body).not.toContain('<script>alert');
    expect(page.body).not.toContain('<b>bold</b>');
    expect(page.body).toContain('&lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt; 稽核 &amp; &lt;b&gt;bold&lt;/b&gt;');
    for (const url of ['/links', `/links/${cw.evilLinkId}/approve`]) expect((await as('admin', 'GET', url)).body).not.toContain('<script>alert');
    expect((await as('admin', 'GET', `/api/links/${cw.evilLinkId}`)).json().link.purpose).toBe(EVIL_PURPOSE);
  });

  it('every page carries a strict CSP and no inline script or style', async () => {
    for (const url of ['/', '/links', `/links/${cw.delivered.linkId}`, `/deliveries/${cw.delivered.deliveryId}`, '/log', '/compliance', '/anomalies', '/agencies', '/operators']) {
      const res = await as('admin', 'GET', url);
      expect({ url, status: res.statusCode }).toEqual({ url, status: 200 });
      expect(res.headers['content-security-policy']).toMatch(/default-src 'none';script-src 'self';style-src 'self'/);
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).not.toMatch(/<script|<style|\sstyle\s*=|\son[a-z]+\s*=/i);
    }
  });

  it('a delivery page shows rows, fields, hashes, who downloaded it and the push outcome', async () => {
    const d = (await cw.services.extracts.get(cw.delivered.deliveryId))!;
    const body = (await as('auditor', 'GET', `/deliveries/${d.id}?lang=en`)).body;
    expect(body).toContain(d.sha256!);
    expect(body).toContain(d.plainSha256!);
    expect(body).toContain(d.fields.join(', '));
    expect(body).toMatch(/<td>a001<\/td><td>127\.0\.0\.1<\/td>/);
    expect(body).toContain('sftp-push');
    const api = (await as('auditor', 'GET', `/api/deliveries/${d.id}`)).json();
    expect(api.downloads).toEqual([expect.objectContaining({ account: 'a001', ip: '127.0.0.1', result: 'complete' })]);
  });

  it('pages are in Traditional Chinese by default and in English on request (remembered)', async () => {
    const zh = await as('auditor', 'GET', '/');
    expect(zh.body).toContain('<html lang="zh-TW">');
    expect(zh.body).toContain('今日交付');
    const en = await as('auditor', 'GET', '/?lang=en');
    expect(en.body).toContain('Deliveries today');
    expect([en.headers['set-cookie']].flat().join()).toMatch(/lang=en; Path=\//);
  });

  it('the usage log filters, pages and verifies on the server; exports are logged', async () => {
    const first = await as('auditor', 'GET', '/api/usage-log?type=auth.failed&limit=2');
    const page1 = first.json();
    expect(page1.records).toHaveLength(2);
    expect(page1.records.every((r: { type: string }) => r.type === 'auth.failed')).toBe(true);
    const page2 = (await as('auditor', 'GET', `/api/usage-log?type=auth.failed&limit=2&before=${page1.before}`)).json();
    expect(page2.records[0].seq).toBeLessThan(page1.records[1].seq);
    expect((await as('auditor', 'GET', `/api/usage-log?agency=A001&link=${cw.delivered.linkId}&type=file.*`)).json().records.map((r: { type: string }) => r.type)).toEqual(['file.downloaded']);
    expect((await as('auditor', 'GET', '/api/usage-log?from=2026-02-30')).statusCode).toBe(400);
    const verify = await as('auditor', 'GET', '/log?verify=1&lang=en');
    expect(verify.body).toContain('The chain verifies');
    const status = (await as('auditor', 'GET', '/api/usage-log/status')).json();
    expect(status).toMatchObject({ checkpoint: null, verified: { actor: OPERATORS.auditor, ok: true } });
    expect(status.headSeq).toBeGreaterThan(0);
    const csv = await as('auditor', 'GET', '/log/export.csv?type=auth.failed');
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    expect(csv.body.split('\r\n')[0]).toBe('seq,at,type,agency,link_id,revision,actor,ip,channel,object,detail,hash');
    expect((await logOf('usage-log.exported')).at(-1)).toMatchObject({ actor: OPERATORS.auditor, ip: '127.0.0.1' });
    expect((await as('operator', 'GET', '/log')).statusCode).toBe(403);
  });

  it('R3.4 R3.5 the link page shows the scope in words and the daily cap; a scope change shows in words among the differences', async () => {
    const dir = tmpDir();
    let id: number;
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj', '/CN=agency', '-keyout', path.join(dir, 'c.key'), '-out', path.join(dir, 'c.crt')], { stdio: 'ignore' });
      id = await approvedLink(cw.w, cw.keys, {
        account: undefined,
        sshKeys: [],
        methods: ['online-query'],
        clientCerts: [readFileSync(path.join(dir, 'c.crt'), 'utf8')],
        maxIdsPerDay: 2500,
        scope: { text: 'nationality in VNM,IDN; direction in entry; crossed_at within-days 400' },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const zh = (await as('auditor', 'GET', `/links/${id}?lang=zh-TW`)).body;
    expect(zh).toContain('<tr><th>資料範圍</th><td><span class="scope">國籍：越南、印尼；出入境別：入境；出入境時間：製檔或查詢日前400日內</span></td></tr>');
    expect(zh).toContain('<tr><th>每日查詢上限</th><td><span class="ids-per-day">2,500</span> 筆身分識別碼／日</td></tr>');
    expect(zh).not.toContain('須檢視資料範圍');
    const en = (await as('auditor', 'GET', `/links/${id}?lang=en`)).body;
    expect(en).toContain('<span class="scope">Nationality: Vietnam, Indonesia; Direction (entry/exit): Entry; Time of crossing: within the 400 days up to the day of delivery or look-up</span>');
    // A file-only link has no look-up cap to show.
    expect((await as('auditor', 'GET', `/links/${cw.delivered.linkId}`)).body).not.toContain('<tr><th>每日查詢上限</th>');

    const cr = await cw.services.registry.fileChange(id, 'scope', { value: 'nationality in VNM; direction in entry; crossed_at within-days 400' }, 'agency:A001');
    await cw.services.registry.approveChange(cr.id, 'nia');
    const diff = (await as('auditor', 'GET', `/links/${id}?lang=zh-TW`)).body;
    expect(diff).toContain('<td>資料範圍</td><td>國籍：越南、印尼；出入境別：入境；出入境時間：製檔或查詢日前400日內</td><td>國籍：越南；出入境別：入境；出入境時間：製檔或查詢日前400日內</td>');
    expect((await as('auditor', 'GET', `/links/${id}?lang=en`)).body).toContain('<td>Records (scope)</td><td>Nationality: Vietnam, Indonesia; ');
  });

  it('R3.4 a link recorded before scopes existed is marked for a scope review on the link list, its page and the overview', async () => {
    const before = (await as('auditor', 'GET', '/')).body;
    expect(before).not.toContain('須檢視資料範圍之連結案</h2>');
    const id = await approvedLink(cw.w, cw.keys, { account: 'a00legacy' });
    await makeLegacyScopeIn({ dataDir: cw.w.dataDir, url: cw.w.database.url }, id);
    const page = (await as('auditor', 'GET', `/links/${id}`)).body;
    expect(page).toContain('<span class="scope">全部資料（理由：recorded before scopes existed）</span> <span class="badge pending scope-review">須檢視資料範圍</span>');
    expect(page).toContain(`nia-link link change ${id} --kind scope`);
    const row = (body: string, linkId: number) => new RegExp(`<tr><td><a href="/links/${linkId}">#${linkId}</a></td>.*?</tr>`).exec(body)?.[0] ?? '';
    const list = (await as('auditor', 'GET', '/links')).body;
    expect(row(list, id)).toContain('須檢視資料範圍');
    expect(row(list, cw.delivered.linkId)).not.toContain('須檢視資料範圍'); // a justified whole-dataset scope is a choice, not a gap
    const overview = (await as('auditor', 'GET', '/')).body;
    expect(overview).toContain('<h2>須檢視資料範圍之連結案</h2>');
    expect(overview).toContain(`<a href="/links/${id}">#${id}</a> <span class="badge pending scope-review">`);
    expect((await as('auditor', 'GET', '/api/overview')).json().scopeReviews).toEqual([expect.objectContaining({ id, status: 'active' })]);
  });

  it('unknown routes are 404 and errors carry no stack trace', async () => {
    expect((await as('admin', 'GET', '/no/such/page')).statusCode).toBe(404);
    const missing = await as('admin', 'GET', '/api/links/999999');
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: 'link 999999 does not exist', code: 'link.unknown', kind: 'not-found' });
    const bad = await as('admin', 'GET', '/api/links/abc');
    expect(bad.statusCode).toBe(400);
    expect(bad.body).not.toMatch(/at .*\.(js|ts):\d+/);
  });
});

describe('queues and metrics', () => {
  it('bull-board is behind the login; auditors get the read-only board and cannot change anything', async () => {
    const ui = await as('auditor', 'GET', '/queues');
    expect(ui.statusCode).toBe(303);
    expect(ui.headers.location).toBe('/queues/read-only');
    const ro = await as('auditor', 'GET', '/queues/read-only/api/queues');
    expect(ro.statusCode).toBe(200);
    expect(ro.json().queues.map((q: { name: string; readOnlyMode: boolean }) => [q.name, q.readOnlyMode]).sort()).toEqual([['deliver', true], ['extract', true], ['maintenance', true]]);
    expect((await as('auditor', 'PUT', '/queues/api/queues/deliver/pause')).statusCode).toBe(403);
    expect((await as('auditor', 'PUT', '/queues/read-only/api/queues/deliver/pause')).statusCode).toBe(403);
  });

  it('operators pause and resume a queue from the board; emptying one is refused to everyone', async () => {
    const s = sessions.operator;
    // bull-board's own UI sends no CSRF token: a same-origin browser request is enough there, a cross-site one is refused.
    const put = (url: string, origin = ORIGIN) => cw.app.inject({ method: 'PUT', url, headers: { cookie: s.cookie, origin } });
    expect((await put('/queues/api/queues/deliver/pause', 'https://evil.example')).statusCode).toBe(403);
    expect((await put('/queues/api/queues/deliver/pause')).statusCode).toBe(200);
    const depths = (await as('operator', 'GET', '/api/queues')).json();
    expect(depths.find((q: { queue: string }) => q.queue === 'deliver').paused).toBe(true);
    expect((await put('/queues/api/queues/deliver/resume')).statusCode).toBe(200);
    expect((await as('admin', 'PUT', '/queues/api/queues/deliver/empty')).statusCode).toBe(403);
    await eventually(async () => expect((await logOf('operator.action')).some((r) => r.actor === OPERATORS.operator && r.object === 'PUT /queues/api/queues/:queueName/pause')).toBe(true));
  });

  it('/metrics needs an admin or auditor session, or the bearer token', async () => {
    cw.w.clock.advanceDays(10 / 86400); // past the figures' cache of earlier scrapes
    expect((await cw.app.inject('/metrics')).statusCode).toBe(401);
    expect((await cw.app.inject({ url: '/metrics', headers: { authorization: 'Bearer wrong' } })).statusCode).toBe(401);
    expect((await as('operator', 'GET', '/metrics')).statusCode).toBe(403);
    const res = await cw.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.statusCode).toBe(200);
    const text = res.body;
    expect(text).toMatch(/^nia_deliveries\{status="built"\} 1$/m);
    expect(text).toMatch(/^nia_delivered_rows_total 3$/m);
    expect(text).toMatch(/^nia_push_channels\{channel="sftp-push",status="(queued|failed)"\} 1$/m);
    expect(text).toMatch(/^nia_queue_jobs\{queue="deliver",state="waiting"\} \d+$/m);
    expect(text).toMatch(/^nia_auth_failures\{channel="console"\} [1-9]\d*$/m);
    expect(text).toMatch(/^nia_sftp_sessions 1$/m);
    expect(text).toMatch(/^nia_usage_log_records [1-9]\d*$/m);
    expect(text).toMatch(/^nia_control_db_bytes [1-9]\d*$/m);
    expect((await as('auditor', 'GET', '/metrics')).statusCode).toBe(200);
  });
});
