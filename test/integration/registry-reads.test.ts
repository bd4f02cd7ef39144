import { ComplianceService } from '../../src/compliance';
import { loadConfig } from '../../src/config';
import { compliance as repo, links } from '../../src/db/repositories';
import { addDays, taipeiDate } from '../../src/domain';
import { ConsoleData } from '../../src/http/data';
import type { Services } from '../../src/services';
import { executedStatements } from '../helpers/statements';
import { ALL_TOPICS, approvableLink, approvedLink, cleanupKeys, makeAgencyKeys, openWorld, servicesOn, type AgencyKeys, type TestWorld } from '../helpers/world';

/**
 * Listing links, and everything built on the list (compliance status, the console's pages), reads
 * the control database in a fixed number of statements however many links and agencies there are:
 * on a database across a network each statement is a round trip.
 */
let keys: AgencyKeys;
const worlds: TestWorld[] = [];
beforeAll(() => (keys = makeAgencyKeys()));
afterAll(() => {
  for (const w of worlds) w.close();
  cleanupKeys(keys);
});

const REPORT = { filename: 'report.txt', content: Buffer.from('自行稽核報告\n一、日誌保存：符合\n') };
const RESPONSE = { filename: 'explanation.txt', content: Buffer.from('說明及改善措施\n一、原因：排程設定錯誤\n') };

/**
 * A registry of `n` links over `agencyCount` agencies with a bit of everything each view reads:
 * non-government agencies and their sponsor, pending and active links, stamped forms, reviewed rules,
 * vendors current and removed (a removed vendor's machines leave the allow-list in force and file an
 * `ips` change), findings with and without responses, a suspension, reviews, inactivity and audits.
 */
async function build(n: number, agencyCount: number): Promise<{ w: TestWorld; svc: ComplianceService; ids: number[] }> {
  const w = openWorld();
  worlds.push(w);
  const config = loadConfig({ dataDir: w.dataDir }, { NIA_LINK_LOG_LEVEL: 'silent' });
  const svc = new ComplianceService({ cdb: w.cdb, registry: w.registry, clock: w.clock, config });
  const today = taipeiDate(w.clock.now());
  const codes: string[] = [];
  for (let a = 0; a < agencyCount; a++) {
    const code = `G${String(a).padStart(3, '0')}`;
    if (a % 2 === 1) await w.registry.addAgency({ code, name: `民間單位${a}`, nonGovernment: true, sponsor: codes[0] }, 'test');
    else await w.registry.addAgency({ code, name: `機關${a}` }, 'test');
    codes.push(code);
  }
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const over = { agency: codes[i % agencyCount], account: `acct${i}`, allowIps: ['127.0.0.1/32', `10.0.${i}.1/32`, `10.1.${i}.1/32`] };
    if (i % 5 === 4) {
      ids.push(await approvableLink(w, keys, over));
      continue;
    }
    const id = await approvedLink(w, keys, over);
    ids.push(id);
    const kept = await w.vendors.add({ linkId: id, name: '系統商', contact: 'vendor@example.com', machines: [`10.0.${i}.1/32`] }, 'test');
    await w.vendors.add({ linkId: id, name: '維護商', contact: 'sub@example.com', machines: [`10.0.${i}.1/32`], parentId: kept.id }, 'test');
    if (i % 2 === 0) {
      const gone = await w.vendors.add({ linkId: id, name: '前系統商', contact: 'old@example.com', machines: [`10.1.${i}.1/32`] }, 'test');
      await w.vendors.remove(gone.id, 'contract ended', 'test');
    }
    const f = await svc.addFinding({ linkId: id, deadline: addDays(today, 10), text: `finding of link ${id}` }, 'nia');
    if (i % 3 === 0) await svc.respond(f.id, { file: RESPONSE }, 'clerk');
    if (i % 3 === 1) await svc.addReview(id, today, 'keep', undefined, 'nia');
    if (i % 4 === 3) await svc.suspend(id, 'log retention', 'nia');
    if (i % 7 === 0) await w.cdb.write((tx) => repo.insertInactivity(tx, { linkId: id, flaggedOn: today, lastUse: addDays(today, -400), noticeOn: null, confirmedOn: null, confirmationLetterNo: null, confirmationRecordedAt: null }));
  }
  for (const code of codes) {
    await svc.addAudit({ agency: code, kind: 'self', summary: '自行稽核', file: REPORT }, 'clerk');
  }
  const firstVendor = (await w.vendors.list({ linkId: ids[0] }))[0];
  await svc.addAudit({ agency: codes[0], kind: 'periodic', summary: '定期稽核', vendors: [{ id: firstVendor.id, evidence: '現場查核' }] }, 'nia');
  await w.rules.review({ linkId: ids[0] }, ALL_TOPICS, undefined, 'nia');
  return { w, svc, ids };
}

/** The console's data over the registry and compliance services alone (the pages below read nothing else). */
const consoleOf = (w: TestWorld, svc: ComplianceService) =>
  new ConsoleData({ cdb: w.cdb, services: { registry: w.registry, compliance: svc } as unknown as Services, queues: [], clock: w.clock });

/** What each read costs, on fresh services (nothing cached) and again on the same ones. */
async function costs(w: TestWorld, svc: ComplianceService): Promise<Record<string, number>> {
  const fresh = servicesOn(w.cdb, w.clock);
  const freshSvc = new ComplianceService({ cdb: w.cdb, registry: fresh.registry, clock: w.clock, config: loadConfig({ dataDir: w.dataDir }, { NIA_LINK_LOG_LEVEL: 'silent' }) });
  const count = async (fn: () => unknown) => (await executedStatements(w.cdb.sqlite, fn)).sql.length;
  const data = consoleOf(w, svc);
  return {
    'list (nothing cached)': await count(() => fresh.registry.list()),
    list: await count(() => w.registry.list()),
    'list active': await count(() => w.registry.list('active')),
    'compliance status (nothing cached)': await count(() => freshSvc.status()),
    'compliance status': await count(() => svc.status()),
    findings: await count(() => svc.listFindings()),
    audits: await count(() => svc.listAudits()),
    'rules list': await count(() => w.rules.list()),
    'console links': await count(() => data.links()),
    'console agencies': await count(() => data.agencies()),
    'console calendar': await count(() => data.calendar(60)),
  };
}

describe('reads of many links', () => {
  it('list(), compliance status and the console read in as many statements for 30 links over 10 agencies as for 3 links over 3', async () => {
    const small = await build(3, 3);
    const large = await build(30, 10);
    const a = await costs(small.w, small.svc);
    const b = await costs(large.w, large.svc);
    expect(b).toEqual(a);
    // Something was read: the counter sees the statements drizzle and the repositories run.
    expect(a.list).toBeGreaterThan(0);
  });

  it('lists a registry of 1,200 links: more than SQLite nests in one expression, so no statement grows a level per link', async () => {
    const { w, svc, ids } = await build(1, 1);
    const model = (await links.byId(w.cdb.db, ids[0]))!;
    const rev = (await links.revision(w.cdb.db, ids[0], 1))!;
    await w.cdb.write(async (tx) => {
      for (let i = 0; i < 1200; i++) {
        const { id: _id, ...row } = model;
        const l = await links.insert(tx, row);
        await links.insertRevision(tx, { linkId: l.id, number: 1, content: rev.content, changeRequestId: null, createdAt: rev.createdAt });
      }
    });
    const listed = await servicesOn(w.cdb, w.clock).registry.list();
    expect(listed).toHaveLength(1201);
    expect(new Set(listed.map((l) => l.purpose))).toEqual(new Set([listed[0].purpose]));
    expect((await svc.status()).filter((line) => line.includes('necessity review'))).toEqual([]);
  });

  it("list() says of each link what show() says of it alone: nothing of one link's reads lands on another", async () => {
    const { w, ids } = await build(12, 4);
    const listed = await servicesOn(w.cdb, w.clock).registry.list();
    expect(listed.map((l) => l.id)).toEqual(ids);
    const alone = servicesOn(w.cdb, w.clock).registry;
    const shown = [];
    for (const id of ids) shown.push(await alone.show(id));
    expect(listed).toEqual(shown);
    // The data the comparison is about is really there, and differs between links.
    expect(new Set(listed.map((l) => l.status))).toEqual(new Set(['active', 'pending', 'suspended']));
    expect(listed.filter((l) => l.status !== 'pending').every((l) => l.vendors.length === 2 && l.vendors[1].parentId === l.vendors[0].id)).toBe(true);
    expect(listed.filter((l) => l.status === 'pending').every((l) => l.vendors.length === 0)).toBe(true);
    expect(new Set(listed.map((l) => l.sponsor?.code ?? null))).toEqual(new Set([null, 'G000']));
    expect(listed.filter((l) => l.stampedForm !== null)).toHaveLength(listed.filter((l) => l.status !== 'pending').length);
    expect(listed.every((l) => l.rules !== null && l.rules.reviewed && l.rules.missing.length === 0)).toBe(true);
  });
});
