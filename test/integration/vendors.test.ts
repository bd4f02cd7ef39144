import { rmSync } from 'node:fs';
import { allowListWithout, checkVendorMachines, mayUseChannel, type Method } from '../../src/domain';
import { queries } from '../../src/db/repositories';
import { AccountService } from '../../src/registry/accounts';
import { appendLog, listLog, reportHtml, usageReport } from '../../src/usagelog';
import { taipeiDate } from '../../src/domain';
import { approvedLink, cleanupKeys, cli, makeAgencyKeys, openTestWorld, REVIEW_ARGS, rewriteRevisions, RULES_TEXT, servicesOn, STAMPED_FORM, testDatabase, tmpDir, writeTemp, type AgencyKeys, type AnyWorld, type TestDatabase } from '../helpers/world';

let keys: AgencyKeys;
let w: AnyWorld;
beforeAll(() => (keys = makeAgencyKeys()));
afterAll(() => cleanupKeys(keys));
beforeEach(async () => (w = await openTestWorld()));
afterEach(async () => w?.close());

/** Make a link's revisions carry `allowIps` as a list recorded before the /24 rule did. */
const recordedAllowIps = (linkId: number, allowIps: string[]): Promise<void> => rewriteRevisions(w.cdb, linkId, { allowIps });
const vendor = (linkId: number, name: string, machines: string[], parentId?: number) =>
  w.vendors.add({ linkId, name, contact: '02-2345-6789 王經理', machines, parentId }, 'agency');

describe('outsourced vendors (R8.1, R9.1)', () => {
  it("R8.1 a vendor machine outside the link's allow-list is refused with the reason, and nothing is written", async () => {
    const id = await approvedLink(w, keys, { allowIps: ['10.1.2.0/24', '127.0.0.1/32'] });
    const logBefore = (await listLog(w.cdb.db, {})).length;
    await expect(vendor(id, '某資訊公司', ['10.9.9.9/32'])).rejects.toThrow(/vendor machine 10\.9\.9\.9\/32 is outside the link's allow-list \(10\.1\.2\.0\/24, 127\.0\.0\.1\/32\)/);
    // A range wider than the allowed one is outside too, even though it overlaps.
    await expect(vendor(id, '某資訊公司', ['10.1.2.0/23'])).rejects.toThrow(/10\.1\.2\.0\/23 is outside/);
    await expect(vendor(id, '某資訊公司', ['10.1.2.7/32', 'not-an-ip'])).rejects.toThrow(/'not-an-ip' is not an IP address or CIDR/);
    expect(await w.vendors.list({ linkId: id })).toEqual([]);
    expect((await listLog(w.cdb.db, {})).length).toBe(logBefore);
  });

  it('R8.2 a vendor machine wider than a /24 (IPv4) or /56 (IPv6) is refused, even inside a wide allow-list recorded before the rule', async () => {
    const id = await approvedLink(w, keys, { allowIps: ['10.1.2.0/24', '2001:db8:0:100::/56'] });
    await recordedAllowIps(id, ['0.0.0.0/0', '::/0']);
    const fresh = servicesOn(w.cdb, w.clock);
    for (const wide of ['0.0.0.0/0', '10.0.0.0/16', '::/0', '2001:db8::/48']) {
      await expect(fresh.vendors.add({ linkId: id, name: '某資訊公司', contact: '02', machines: [wide] }, 'agency')).rejects.toThrow(/wider than a \/(24|56)/);
    }
    expect((await fresh.vendors.add({ linkId: id, name: '某資訊公司', contact: '02', machines: ['10.1.2.0/24', '10.1.3.4/32', '2001:db8:0:100::/56', '2001:db8::9/128'] }, 'agency')).machines).toEqual([
      '10.1.2.0/24',
      '10.1.3.4/32',
      '2001:db8:0:100::/56',
      '2001:db8::9/128',
    ]);
  });

  it('R8.2 removing a vendor from a link with a wide allow-list recorded before the rule still files the change that cuts it off', async () => {
    const id = await approvedLink(w, keys, { allowIps: ['127.0.0.1/32', '10.1.2.0/24'] });
    await recordedAllowIps(id, ['127.0.0.1/32', '10.0.0.0/8']);
    const fresh = servicesOn(w.cdb, w.clock);
    const v = await fresh.vendors.add({ linkId: id, name: '某資訊公司', contact: '02', machines: ['10.1.2.7/32'] }, 'agency');
    const r = await fresh.vendors.remove(v.id, 'contract ended', 'agency');
    expect(r.changeId).not.toBeNull();
    expect((await fresh.registry.approveChange(r.changeId!, 'nia')).link.allowIps).not.toContain('10.0.0.0/8');
  });

  it('R8.1 R9.1 contractors and sub-contractors inside the allow-list are recorded, shown on the link and logged', async () => {
    const id = await approvedLink(w, keys, { allowIps: ['10.1.2.0/24', '127.0.0.1/32'] });
    const main = await vendor(id, '某資訊公司', ['10.1.2.7', '10.1.2.8/31']);
    expect(main.machines).toEqual(['10.1.2.7/32', '10.1.2.8/31']);
    const sub = await vendor(id, '某外包工作室', ['10.1.2.20/32'], main.id);
    expect(sub.parentId).toBe(main.id);
    await expect(vendor(id, '某資訊公司', ['10.1.2.9/32'])).rejects.toThrow(/already recorded/);
    await expect(vendor(id, '孤兒公司', ['10.1.2.30/32'], 999)).rejects.toThrow(/the contractor 999 named as parent is not a current vendor of link/);
    expect((await w.registry.show(id)).vendors).toEqual([
      { id: main.id, name: '某資訊公司', contact: '02-2345-6789 王經理', machines: ['10.1.2.7/32', '10.1.2.8/31'], parentId: null },
      { id: sub.id, name: '某外包工作室', contact: '02-2345-6789 王經理', machines: ['10.1.2.20/32'], parentId: main.id },
    ]);
    expect((await listLog(w.cdb.db, { linkId: id, type: 'vendor.added' })).map((r) => r.object)).toEqual([`vendor:${main.id}`, `vendor:${sub.id}`]);
    // A contractor with sub-contractors stays until they are gone.
    await expect(w.vendors.remove(main.id, undefined, 'agency')).rejects.toThrow(/has sub-contractors/);
  });

  it('R8.1 R5.1 removing a vendor files an ips change dropping its machines; the allow-list changes by a new revision', async () => {
    const id = await approvedLink(w, keys, { allowIps: ['127.0.0.1/32', '10.1.2.0/30', '10.5.0.9/32'] });
    const v = await vendor(id, '某資訊公司', ['10.1.2.1/32', '10.5.0.9/32']);
    const r = await w.vendors.remove(v.id, 'contract ended', 'agency');
    expect(r.allowIps).toEqual(['127.0.0.1/32', '10.1.2.0/32', '10.1.2.2/31']);
    expect(r.vendor).toMatchObject({ removedBy: 'agency', removalChangeId: r.changeId });
    // Nothing changes before NIA approves the change request.
    expect(await w.registry.show(id)).toMatchObject({ revision: 1, allowIps: ['127.0.0.1/32', '10.1.2.0/30', '10.5.0.9/32'], vendors: [] });
    const { link } = await w.registry.approveChange(r.changeId!, 'nia');
    expect(link).toMatchObject({ revision: 2, allowIps: ['127.0.0.1/32', '10.1.2.0/32', '10.1.2.2/31'] });
    const { revisions } = await w.registry.history(id);
    expect((revisions[0].content as { allowIps: string[] }).allowIps).toEqual(['127.0.0.1/32', '10.1.2.0/30', '10.5.0.9/32']);
    expect(await w.vendors.list({ linkId: id, removed: true })).toHaveLength(1);
    const removed = await listLog(w.cdb.db, { linkId: id, type: 'vendor.removed' });
    expect(JSON.parse(removed[0].detail)).toMatchObject({ reason: 'contract ended', change: r.changeId });
    await expect(w.vendors.remove(v.id, undefined, 'agency')).rejects.toThrow(/removed already/);
  });

  it("R8.2 a removed vendor's machines fail every channel's address check at once, before NIA decides the ips change, and stay cut off until NIA approves a list", async () => {
    const id = await approvedLink(w, keys, { allowIps: ['127.0.0.1/32', '10.1.2.0/30'] });
    const v = await vendor(id, '某資訊公司', ['10.1.2.1/32']);
    const today = taipeiDate(w.clock.now());
    const account = (await w.registry.state(id)).content.account!;
    const accounts = new AccountService(w.cdb, w.registry, w.clock);
    const pull = async (ip: string) => accounts.mayPull((await accounts.find(account))!, ip, w.clock.now());
    expect(await pull('10.1.2.1')).toMatchObject({ ok: true });
    const version = await queries.registryVersion(w.cdb.db);
    const r = await w.vendors.remove(v.id, 'contract ended', 'agency');
    // The vendor row moved the registry version: whoever kept an allow-list reads it again.
    expect(await queries.registryVersion(w.cdb.db)).toBeGreaterThan(version);
    const s = await w.registry.state(id);
    expect(s.content.allowIps).toEqual(['127.0.0.1/32', '10.1.2.0/30']);
    expect(s.allowIps).toEqual(['127.0.0.1/32', '10.1.2.0/32', '10.1.2.2/31']);
    expect(await pull('10.1.2.1')).toMatchObject({ ok: false, refusal: { code: 'ip.not-allowed' } });
    expect(await pull('10.1.2.2')).toMatchObject({ ok: true });
    for (const channel of ['sftp-pull', 'sftp-push', 'email', 'online-query', 'extract'] as const) {
      const forced = { ...s, content: { ...s.content, methods: [channel === 'extract' ? 'sftp-pull' : channel] as Method[] } };
      expect(mayUseChannel(forced, channel, { today, ip: '10.1.2.1' })).toMatchObject({ ok: false, refusal: { code: 'ip.not-allowed' } });
    }
    // A change of another kind copies the revision's list; it does not let the vendor back in.
    const fields = await w.registry.fileChange(id, 'fields', { value: 'person_id,nationality' }, 'agency');
    await w.registry.approveChange(fields.id, 'nia');
    expect(await pull('10.1.2.1')).toMatchObject({ ok: false, refusal: { code: 'ip.not-allowed' } });
    // NIA rejects the vendor's ips change, then approves a list that names the address again (the agency's own machine now): that list is in force.
    await w.registry.rejectChange(r.changeId!, 'the agency keeps the address for its own machine', 'nia');
    w.clock.set(new Date(w.clock.now().getTime() + 60_000).toISOString());
    const again = await w.registry.fileChange(id, 'ips', { value: '127.0.0.1/32,10.1.2.0/30' }, 'agency');
    await w.registry.approveChange(again.id, 'nia');
    expect(await pull('10.1.2.1')).toMatchObject({ ok: true });
  });

  it('machines another current vendor still uses stay; a vendor holding the only allowed IP cannot leave the link without one', async () => {
    const id = await approvedLink(w, keys, { allowIps: ['10.1.2.0/24'] });
    const a = await vendor(id, '甲公司', ['10.1.2.5/32']);
    await vendor(id, '乙公司', ['10.1.2.5/32']);
    expect(await w.vendors.remove(a.id, undefined, 'agency')).toMatchObject({ changeId: null, allowIps: null });

    const solo = await approvedLink(w, keys, { account: 'a002', allowIps: ['10.7.7.7/32'] });
    const v = await vendor(solo, '丙公司', ['10.7.7.7/32']);
    await expect(w.vendors.remove(v.id, undefined, 'agency')).rejects.toThrow(/would leave link \d+ with no allowed IP/);
    expect(await w.vendors.list({ linkId: solo })).toHaveLength(1);
  });

  it("R8.1 an ips change that would leave a current vendor's machine outside the allow-list is refused", async () => {
    const id = await approvedLink(w, keys, { allowIps: ['127.0.0.1/32', '10.1.2.0/24'] });
    await vendor(id, '某資訊公司', ['10.1.2.7/32']);
    await expect(w.registry.fileChange(id, 'ips', { value: '127.0.0.1/32' }, 'agency')).rejects.toThrow(/leaves vendor machines outside: 10\.1\.2\.7\/32 \(某資訊公司\)/);
    // Filed before the vendor came: refused at approval instead.
    const other = await approvedLink(w, keys, { account: 'a002', allowIps: ['127.0.0.1/32', '10.1.2.0/24'] });
    const cr = await w.registry.fileChange(other, 'ips', { value: '127.0.0.1/32' }, 'agency');
    await vendor(other, '某資訊公司', ['10.1.2.7/32']);
    await expect(w.registry.approveChange(cr.id, 'nia')).rejects.toThrow(/leaves vendor machines outside/);
  });

  it('R9.1 usage reports list the vendors of the period and mark downloads from their machines', async () => {
    const id = await approvedLink(w, keys, { allowIps: ['127.0.0.1/32', '10.1.2.0/24'] });
    const v = await vendor(id, '某資訊公司', ['10.1.2.7/32']);
    const now = w.clock.now();
    for (const ip of ['10.1.2.7', '127.0.0.1']) {
      await w.cdb.write((tx) => appendLog(tx, { type: 'file.downloaded', agency: 'A001', linkId: id, actor: 'a001', ip, channel: 'sftp-pull', object: 'f.csv.pgp', detail: { bytes: 10, result: 'complete' } }, now));
    }
    const today = taipeiDate(now);
    const r = await usageReport(w.cdb, { linkId: id }, today, today, now);
    expect(r.vendors).toEqual([expect.objectContaining({ id: v.id, linkId: id, name: '某資訊公司', machines: ['10.1.2.7/32'], removedAt: null })]);
    expect(r.downloads.byAccountIp).toEqual([
      { account: 'a001', ip: '10.1.2.7', count: 1, complete: 1, partial: 0, bytes: 10, vendor: '某資訊公司' },
      { account: 'a001', ip: '127.0.0.1', count: 1, complete: 1, partial: 0, bytes: 10 },
    ]);
    expect(reportHtml(r)).toContain('<td>某資訊公司</td>');
    // A vendor removed before the period does not appear in it.
    await w.vendors.remove(v.id, undefined, 'agency');
    w.clock.advanceDays(2);
    const later = taipeiDate(w.clock.now());
    expect((await usageReport(w.cdb, { linkId: id }, later, later, w.clock.now())).vendors).toEqual([]);
  });

  it('the allow-list arithmetic: exact, containing and contained ranges, IPv6, untouched entries kept as written', () => {
    expect(allowListWithout(['10.0.0.0/30'], ['10.0.0.1/32'])).toEqual(['10.0.0.0/32', '10.0.0.2/31']);
    expect(allowListWithout(['10.0.0.5/32', '192.168.1.0/24'], ['10.0.0.0/8'])).toEqual(['192.168.1.0/24']);
    expect(allowListWithout(['2001:db8::/126'], ['2001:db8::2/128'])).toEqual(['2001:db8::/127', '2001:db8::3/128']);
    expect(allowListWithout(['127.0.0.1', '::1'], ['10.0.0.1/32'])).toEqual(['127.0.0.1', '::1']);
    expect(checkVendorMachines(['::ffff:10.0.0.7', '10.0.0.9/24'], ['10.0.0.0/16'])).toEqual({ ok: true, value: ['10.0.0.7/32', '10.0.0.0/24'] });
    expect(checkVendorMachines([], ['10.0.0.0/16']).ok).toBe(false);
  });
});

describe('nia-link vendor (CLI)', () => {
  let dir: string;
  /** The control database of `dir`'s installation: its SQLite file, or (PostgreSQL pass) a scratch database. */
  let db: TestDatabase;
  beforeEach(async () => {
    dir = tmpDir();
    db = await testDatabase();
  });
  afterEach(async () => {
    rmSync(dir, { recursive: true, force: true });
    await db?.drop();
  });
  const run = (args: string[]) => cli(dir, args, db.env);

  it('vendor add/list/remove and link show work as written', () => {
    const pub = writeTemp(dir, 'pub.asc', keys.publicArmored);
    const rules = writeTemp(dir, 'rules.txt', RULES_TEXT);
    run(['init']);
    run(['agency', 'add', '--code', 'A001', '--name', '財政部賦稅署']);
    const applied = run([
      'link', 'apply', '--agency', 'A001', '--dataset', 'entry_exit', '--fields', 'person_id', '--legal-basis', '法', '--purpose', '目的', '--department', '科',
      '--officer', 'o', '--supervisor', 's', '--from', '2026-01-01', '--to', '2027-12-31', '--disposal', '刪除', '--method', 'sftp-pull',
      '--allow-ip', '127.0.0.1/32,10.1.2.0/24', '--account', 'a001', '--ssh-key', `${keys.sshPrivateFile}.pub`, '--pgp-key', pub, '--rules', rules,
      '--scope', 'all', '--scope-justification', 'test: the whole dataset',
    ]);
    expect(applied.code).toBe(0);
    const id = applied.stdout.trim().split('\n').pop()!;
    expect(run(REVIEW_ARGS(id)).code).toBe(0);
    expect(run(['link', 'approve', id, '--letter-no', '移署資字第1150001號', '--letter-date', '2026-03-01', '--stamped-form', writeTemp(dir, 'stamped.pdf', STAMPED_FORM.content)]).code).toBe(0);

    const outside = run(['vendor', 'add', '--link', id, '--name', '某資訊公司', '--contact', '02-1234', '--machines', '10.9.9.9/32']);
    expect(outside.code).toBe(1);
    expect(outside.stderr).toMatch(/^nia-link: vendor machine 10\.9\.9\.9\/32 is outside the link's allow-list/);
    const added = run(['vendor', 'add', '--link', id, '--name', '某資訊公司', '--contact', '02-1234', '--machines', '10.1.2.7,10.1.2.8']);
    expect(added.code).toBe(0);
    const vid = added.stdout.trim().split('\n').pop()!;
    expect(run(['vendor', 'list']).stdout).toMatch(new RegExp(`^${vid}\\t${id}\\tcontractor\\t某資訊公司\\t02-1234\\t10.1.2.7/32,10.1.2.8/32\\tcurrent$`, 'm'));
    const shown = run(['link', 'show', id]).stdout;
    expect(shown).toMatch(/vendor \d+\s+某資訊公司, 02-1234; machines 10\.1\.2\.7\/32, 10\.1\.2\.8\/32/);
    expect(shown).toMatch(/NIA's reply\s+letter 移署資字第1150001號 of 2026-03-01 \(中華民國 115 年 3 月 1 日\)/);
    expect(shown).toMatch(/management rules\s+version 1 \(document 1\): all 8 topics reviewed/);

    const removed = run(['vendor', 'remove', vid, '--reason', '合約終止']);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toMatch(/change request (\d+) \(ips\) filed: allow-list becomes 127\.0\.0\.1\/32, 10\.1\.2\.0\/30, 10\.1\.2\.4\/31, 10\.1\.2\.6\/32, 10\.1\.2\.9\/32/);
    expect(run(['vendor', 'list']).stdout).toBe('');
    expect(run(['vendor', 'list', '--all']).stdout).toMatch(/removed /);
  });
});
