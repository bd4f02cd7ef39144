import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { consoleWorld, EVIL_PURPOSE, OPERATORS, PASSWORD, type ConsoleWorld } from '../helpers/console';
import { ROOT, tmpDir } from '../helpers/world';

/**
 * The console in a real headless Chromium (Debian's, driven by playwright-core): log in, follow a
 * delivered link to its deliveries, retry a failed push as an operator, be refused as an auditor,
 * open bull-board, and see markup in a purpose stay text. Screenshots of the overview and a link
 * page go to docs/screenshots/ with UPDATE_SCREENSHOTS=1 (to a scratch directory otherwise).
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = process.env.UPDATE_SCREENSHOTS ? path.join(ROOT, 'docs', 'screenshots') : tmpDir('nia-link-shots-');

let cw: ConsoleWorld;
let browser: Browser;
let base: string;
/** Every CSP violation or script error any page reported. */
const problems: string[] = [];
// bull-board's page asks for Google's web fonts; the CSP keeps the browser from fetching them, as it should.
const expected = (text: string) => /Content Security Policy/.test(text) && /fonts\.googleapis\.com/.test(text);

async function loggedIn(username: string, lang = 'en'): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: lang });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text()) && !expected(m.text())) problems.push(`${username} ${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${username} ${page.url()}: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`a dialog opened: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto(`${base}/`);
  expect(new URL(page.url()).pathname).toBe('/login');
  await page.fill('#username', username);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  expect(new URL(page.url()).pathname).toBe('/');
  return { context, page };
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (bash .ci/run does), or set CHROMIUM_PATH`);
  mkdirSync(SHOTS, { recursive: true });
  cw = await consoleWorld();
  await cw.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(cw.app.server.address() as { port: number }).port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
afterAll(async () => {
  await browser?.close();
  await cw?.close();
});

it('an admin sees the overview and a delivered link with its revision history (screenshots)', async () => {
  const { context, page } = await loggedIn(OPERATORS.admin);
  await page.goto(`${base}/?lang=en`);
  await expect(page.locator('h1').textContent()).resolves.toContain('Overview');
  await expect(page.locator('.card', { hasText: 'Deliveries today' }).locator('.n').textContent()).resolves.toBe('1');
  await page.screenshot({ path: path.join(SHOTS, 'overview.png') });

  await page.click('nav >> text=Links');
  const row = page.locator('tr', { hasText: `#${cw.delivered.linkId}` });
  await expect(row.locator('.badge').first().textContent()).resolves.toBe('active');
  await Promise.all([page.waitForNavigation(), row.locator(`a[href="/links/${cw.delivered.linkId}"]`).click()]);
  await expect(page.locator('h1').textContent()).resolves.toContain(`Link #${cw.delivered.linkId}`);

  // Zh-TW is the default language; the switch is remembered.
  await page.click('text=中文');
  await expect(page.locator('html').getAttribute('lang')).resolves.toBe('zh-TW');
  await expect(page.locator('h2').first().textContent()).resolves.toBe('異動申請');
  await page.screenshot({ path: path.join(SHOTS, 'link.png'), fullPage: true });
  await context.close();
});

it('markup in a purpose is shown as text and never runs', async () => {
  const { context, page } = await loggedIn(OPERATORS.admin);
  await page.goto(`${base}/links/${cw.evilLinkId}`);
  await expect(page.locator('.purpose').textContent()).resolves.toBe(EVIL_PURPOSE);
  await expect(page.locator('script, b').count()).resolves.toBe(0);
  await context.close();
});

it('an operator opens the link\'s deliveries and retries the failed push; an auditor is refused', async () => {
  const op = await loggedIn(OPERATORS.operator);
  await op.page.goto(`${base}/links/${cw.delivered.linkId}`);
  await Promise.all([op.page.waitForNavigation(), op.page.click(`text=All deliveries`)]);
  await Promise.all([op.page.waitForNavigation(), op.page.click(`a[href="/deliveries/${cw.delivered.deliveryId}"]`)]);
  const push = op.page.locator('tr', { hasText: 'sftp-push' });
  await expect(push.locator('.badge').textContent()).resolves.toBe('failed');
  await expect(op.page.locator('td', { hasText: '127.0.0.1' }).count()).resolves.toBeGreaterThan(0); // who downloaded it

  const auditor = await loggedIn(OPERATORS.auditor);
  await auditor.page.goto(`${base}/deliveries/${cw.delivered.deliveryId}`);
  await expect(auditor.page.locator('#retry').count()).resolves.toBe(0);
  // The form is not shown to an auditor; sent anyway (with a valid CSRF token), it is refused.
  const token = await auditor.page.inputValue('input[name=_csrf]');
  const res = await auditor.page.request.post(`${base}/deliveries/${cw.delivered.deliveryId}/retry`, { form: { _csrf: token }, headers: { origin: base, 'accept-language': 'en' }, maxRedirects: 0 });
  const refused = { status: res.status(), text: await res.text() };
  expect(refused.status).toBe(403);
  expect(refused.text).toContain('Your role may not do this');

  await Promise.all([op.page.waitForNavigation(), op.page.click('#retry')]);
  await expect(op.page.locator('.flash.ok').textContent()).resolves.toBe('Queued again for pushing.');
  await expect(push.locator('.badge').textContent()).resolves.toBe('queued');
  await op.context.close();
  await auditor.context.close();
});

it('bull-board opens behind the login, read-only for an auditor', async () => {
  const op = await loggedIn(OPERATORS.operator);
  await op.page.goto(`${base}/queues`);
  await op.page.waitForSelector('text=deliver', { timeout: 15000 });
  await expect(op.page.title()).resolves.toBe('nia-link queues');
  await op.page.click('text=deliver');
  await op.page.waitForLoadState('networkidle');
  await op.page.screenshot({ path: path.join(SHOTS, 'queues.png') });
  const auditor = await loggedIn(OPERATORS.auditor);
  await auditor.page.goto(`${base}/queues`);
  expect(new URL(auditor.page.url()).pathname).toBe('/queues/read-only');
  await auditor.page.waitForSelector('text=deliver', { timeout: 15000 });
  await expect(auditor.page.title()).resolves.toBe('nia-link queues (read-only)');
  await op.context.close();
  await auditor.context.close();
});

it('no page reported a CSP violation, a script error or a dialog', () => {
  expect(problems).toEqual([]);
});
