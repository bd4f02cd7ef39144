import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { listLog } from '../../src/usagelog';
import { consoleWorld, OPERATORS, type ConsoleWorld } from '../helpers/console';
import { cli, tmpDir } from '../helpers/world';

const ORIGIN = 'http://localhost:80';
const MAX_ATTEMPTS = 3;

/** A failed login from `remoteAddress` carrying the given X-Forwarded-For, as a client can send it. */
const failedLogin = (cw: ConsoleWorld, remoteAddress: string, xff?: string) =>
  cw.app.inject({
    method: 'POST',
    url: '/login',
    remoteAddress,
    headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded', ...(xff ? { 'x-forwarded-for': xff } : {}) },
    payload: new URLSearchParams({ username: OPERATORS.operator, password: 'not the password' }).toString(),
  });

/** The address the usage log recorded for the newest failed login. */
const lastFailedIp = async (cw: ConsoleWorld) => (await listLog(cw.w.cdb.db, { type: 'auth.failed' })).at(-1)?.ip;

describe('http.trustProxy = ["127.0.0.1"]: only the listed proxy is believed', () => {
  let cw: ConsoleWorld;
  beforeAll(async () => {
    cw = await consoleWorld({}, { http: { trustProxy: ['127.0.0.1'], login: { ipMaxAttempts: MAX_ATTEMPTS, maxFailures: 100 } } });
  });
  afterAll(async () => {
    await cw?.close();
  });

  it('a spoofed X-Forwarded-For "1.2.3.4, 5.6.7.8" through the proxy is recorded as 5.6.7.8 (right-most untrusted), not the client-written 1.2.3.4', async () => {
    expect(cw.config.http.trustProxy).toEqual(['127.0.0.1']);
    const res = await failedLogin(cw, '127.0.0.1', '1.2.3.4, 5.6.7.8');
    expect(res.statusCode).toBe(401);
    expect(await lastFailedIp(cw)).toBe('5.6.7.8');
  });

  it('rotating the left-most X-Forwarded-For entry does not escape the per-address login limit', async () => {
    const statuses: number[] = [];
    for (let i = 0; i <= MAX_ATTEMPTS; i++) statuses.push((await failedLogin(cw, '127.0.0.1', `198.51.100.${i}, 203.0.113.9`)).statusCode);
    expect(statuses).toEqual([...Array(MAX_ATTEMPTS).fill(401), 429]);
    const limited = (await listLog(cw.w.cdb.db, { type: 'auth.failed' })).filter((r) => JSON.parse(r.detail).reason === 'rate-limited');
    expect(limited.map((r) => r.ip)).toEqual(['203.0.113.9']);
  });

  it('X-Forwarded-For from a peer that is not a listed proxy is ignored', async () => {
    await failedLogin(cw, '192.0.2.77', '1.2.3.4');
    expect(await lastFailedIp(cw)).toBe('192.0.2.77');
  });
});

describe('http.trustProxy unset: X-Forwarded-For is ignored', () => {
  let cw: ConsoleWorld;
  beforeAll(async () => {
    cw = await consoleWorld({}, { http: { login: { ipMaxAttempts: MAX_ATTEMPTS, maxFailures: 100 } } });
  });
  afterAll(async () => {
    await cw?.close();
  });

  it('the peer address is recorded whatever X-Forwarded-For says, and the limit counts it', async () => {
    expect(cw.config.http.trustProxy).toEqual([]);
    const statuses: number[] = [];
    for (let i = 0; i <= MAX_ATTEMPTS; i++) {
      statuses.push((await failedLogin(cw, '192.0.2.10', `1.2.3.${i}, 5.6.7.${i}`)).statusCode);
      if (i === 0) expect(await lastFailedIp(cw)).toBe('192.0.2.10');
    }
    expect(statuses).toEqual([...Array(MAX_ATTEMPTS).fill(401), 429]);
    expect((await listLog(cw.w.cdb.db, { type: 'auth.failed' })).every((r) => r.ip === '192.0.2.10')).toBe(true);
  });
});

describe('http.trustProxy configuration', () => {
  let dir: string;
  beforeEach(() => (dir = tmpDir()));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const load = (file: Record<string, unknown>, env: Record<string, string> = {}) => {
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify(file));
    return loadConfig({ dataDir: dir }, env);
  };

  it('true (which would believe every hop) is refused by loadConfig with one line naming http.trustProxy', () => {
    for (const [file, env] of [
      [{ http: { trustProxy: true } }, {}],
      [{ http: { trustProxy: 'true' } }, {}],
      [{}, { NIA_LINK_HTTP_TRUST_PROXY: 'true' }],
    ] as const) {
      let message = '';
      try {
        load(file, env);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/^invalid configuration: http\.trustProxy: list the addresses or CIDRs of the proxies/);
      expect(message.split('\n')).toHaveLength(1);
    }
  });

  it('a list (array or comma-separated) of addresses/CIDRs is taken; false or unset is no proxy; a non-address is refused', () => {
    expect(load({ http: { trustProxy: ['10.0.0.5', '10.1.0.0/16', '::1'] } }).http.trustProxy).toEqual(['10.0.0.5', '10.1.0.0/16', '::1']);
    expect(load({}, { NIA_LINK_HTTP_TRUST_PROXY: '10.0.0.5, 10.0.0.6' }).http.trustProxy).toEqual(['10.0.0.5', '10.0.0.6']);
    expect(load({ http: { trustProxy: false } }).http.trustProxy).toEqual([]);
    expect(load({}, { NIA_LINK_HTTP_TRUST_PROXY: 'false' }).http.trustProxy).toEqual([]);
    expect(load({}).http.trustProxy).toEqual([]);
    expect(() => load({ http: { trustProxy: ['proxy.example'] } })).toThrow(/^invalid configuration: http\.trustProxy\.0: each entry must be an IP address or CIDR/);
  });

  it('the command refuses NIA_LINK_HTTP_TRUST_PROXY=true with one line and a non-zero exit', () => {
    const r = cli(dir, ['agency', 'list'], { NIA_LINK_HTTP_TRUST_PROXY: 'true' });
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/http\.trustProxy/);
  });
});
