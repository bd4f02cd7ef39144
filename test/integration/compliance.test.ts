import { Queue } from 'bullmq';
import { loadConfig, type Config } from '../../src/config';
import { ComplianceService } from '../../src/compliance';
import { ensureKeys } from '../../src/crypto';
import { compliance as repo } from '../../src/db/repositories';
import { addDays, addMonths, taipeiDate } from '../../src/domain';
import { connection, queuePrefix, syncSchedules } from '../../src/queue';
import { buildServices, type Services } from '../../src/services';
import { listLog } from '../../src/usagelog';
import { person, writeEntryExitSource } from '../helpers/source';
import { sftpBatch, startSftp } from '../helpers/sftp';
import { approvedLink, cleanupKeys, makeAgencyKeys, openWorld, type AgencyKeys, type TestWorld } from '../helpers/world';

const REDIS = process.env.NIA_TEST_REDIS_URL!;
let keys: AgencyKeys;
let w: TestWorld;
let config: Config;
let services: Services;
let queue: Queue;
let today: string;
let seq = 0;
let sftp: Awaited<ReturnType<typeof startSftp>>;
/** Can the agency log in over SFTP (OpenSSH client) and list its outbox? */
const sftpWorks = async () => (await sftpBatch(sftp.port, keys.sshPrivateFile, 'c1', 'ls /outbox', [], 20000)).code === 0;

const deliver = (linkId: number) => services.extracts.run({ key: `t-${linkId}-${++seq}`, linkId, full: true, trigger: 'manual' }, { finalAttempt: true });
const status = (id: number) => w.registry.show(id).status;
const schedulersFor = async (id: number) => (await queue.getJobSchedulers()).filter((s) => s.key === `link:${id}`);
const sync = () => syncSchedules(queue, w.registry.list().map((l) => ({ id: l.id, schedule: l.schedule, active: l.status === 'active' })));

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = openWorld();
  config = loadConfig({ dataDir: w.dataDir }, { REDIS_URL: REDIS, NIA_LINK_LOG_LEVEL: 'silent', NIA_LINK_INSTANCE_ID: `compliance${process.pid}`, NIA_LINK_SFTP_HOST: '127.0.0.1', NIA_LINK_SFTP_PORT: '0' });
  await ensureKeys(config.keysDir, new Date());
  writeEntryExitSource(w.dataDir, [person(1), person(2)], '2026-01-01T00:00:00.000Z');
  services = buildServices(config, w.cdb, w.clock);
  queue = new Queue('extract', { connection: connection(REDIS), prefix: queuePrefix(config) });
  today = taipeiDate(w.clock.now());
  sftp = await startSftp(config, w);
});
afterAll(async () => {
  await sftp?.svc.stop();
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  await services.linkEvents.settled();
  w.close();
  cleanupKeys(keys);
});

describe('findings, suspension and resumption (R10.1–R10.3)', () => {
  it('R10.1 R10.2 an overdue finding suspends the link: SFTP login refused, schedule gone, extracts refused; remediation within six months resumes it', async () => {
    const id = await approvedLink(w, keys, { account: 'c1', schedule: '0 2 * * *' });
    await sync();
    expect(await schedulersFor(id)).toHaveLength(1);
    expect((await deliver(id)).status).toBe('built');
    expect(await sftpWorks()).toBe(true);

    const f = await services.compliance.addFinding({ linkId: id, deadline: addDays(today, 10), text: '日誌未依規定保存' }, 'nia');
    expect((await services.compliance.sweep('test', addDays(today, 10))).changes).toEqual([]);
    expect(status(id)).toBe('active'); // the deadline day itself is still in time
    const r = await services.compliance.sweep('test', addDays(today, 11));
    expect(r.changes).toEqual([`link ${id}: suspended (finding ${f.id} overdue since ${addDays(today, 11)})`]);
    expect(status(id)).toBe('suspended');
    await sync();
    expect(await schedulersFor(id)).toEqual([]);
    await expect(deliver(id)).rejects.toThrow(/link is suspended/);
    expect(await sftpWorks()).toBe(false);
    expect(listLog(w.cdb.db, { linkId: id, type: 'link.suspended' })).toHaveLength(1);
    expect(services.compliance.listNotices(id).map((n) => n.kind)).toEqual(['finding', 'suspended']);
    expect(services.compliance.listNotices(id)[1].textZh).toMatch(/中華民國 \d+ 年 \d+ 月 \d+ 日/);

    // Resumption needs remediation first.
    await expect(services.compliance.resumeRequest(id, 'agency', addDays(today, 15))).rejects.toThrow(/not remediated/);
    services.compliance.remediate(f.id, addDays(today, 20), 'logs kept five years now', 'agency');
    await expect(services.compliance.resumeApprove(id, 'nia', addDays(today, 20))).rejects.toThrow(/no resumption request/);
    await services.compliance.resumeRequest(id, 'agency', addDays(today, 20));
    await services.compliance.resumeApprove(id, 'nia', addDays(today, 21));
    expect(status(id)).toBe('active');
    await sync();
    const [s] = await schedulersFor(id);
    expect(s.next).toBeGreaterThan(Date.now()); // restored, with its next job
    expect((await deliver(id)).status).toBe('built');
    expect(await sftpWorks()).toBe(true);
  });

  it('R10.3 improvements completed more than six months after the suspension: resumption refused, the link ends', async () => {
    const id = await approvedLink(w, keys, { account: 'c2' });
    const f = await services.compliance.addFinding({ linkId: id, deadline: addDays(today, 1), text: 'x' }, 'nia');
    const suspendedOn = addDays(today, 2);
    await services.compliance.sweep('test', suspendedOn);
    expect(status(id)).toBe('suspended');
    services.compliance.remediate(f.id, addDays(addMonths(suspendedOn, 6), 1), undefined, 'agency');
    await expect(services.compliance.resumeRequest(id, 'agency', addDays(addMonths(suspendedOn, 6), 1))).rejects.toThrow(/new application is required/);
    expect(w.registry.show(id)).toMatchObject({ status: 'terminated', endReason: 'reapplication-required' });
    expect(repo.disposalFor(w.cdb.db, id)).toMatchObject({ confirmedAt: null });
    expect(services.compliance.listNotices(id).pop()!.kind).toBe('resume-refused');
  });

  it('R10.3 exactly six months is still in time', async () => {
    const id = await approvedLink(w, keys, { account: 'c3' });
    const f = await services.compliance.addFinding({ linkId: id, deadline: addDays(today, 1), text: 'x' }, 'nia');
    const suspendedOn = addDays(today, 2);
    await services.compliance.sweep('test', suspendedOn);
    services.compliance.remediate(f.id, addMonths(suspendedOn, 6), undefined, 'agency');
    await services.compliance.resumeRequest(id, 'agency', addMonths(suspendedOn, 6));
    await services.compliance.resumeApprove(id, 'nia', addMonths(suspendedOn, 6));
    expect(status(id)).toBe('active');
  });

  it('R10.1 with autoSuspend off an overdue finding waits for an operator', async () => {
    const manual = new ComplianceService({ cdb: w.cdb, registry: w.registry, clock: w.clock, config: { ...config, policy: { autoSuspend: false } } });
    const id = await approvedLink(w, keys, { account: 'c4' });
    await manual.addFinding({ linkId: id, deadline: addDays(today, 1), text: 'x' }, 'nia');
    const r = await manual.sweep('test', addDays(today, 2));
    expect(status(id)).toBe('active');
    expect(r.due).toContain(`link ${id}: due for suspension (finding ${manual.listFindings(id)[0].id} overdue); confirm with nia-link link suspend ${id} --reason …`);
    await manual.suspend(id, 'confirmed by the duty officer', 'nia');
    expect(status(id)).toBe('suspended');
  });

  it('R10.1 a deadline can be extended before it passes, not after', async () => {
    const id = await approvedLink(w, keys, { account: 'c5' });
    const f = await services.compliance.addFinding({ linkId: id, deadline: addDays(today, 3), text: 'x' }, 'nia');
    expect(services.compliance.extend(f.id, addDays(today, 30), 'nia').deadline).toBe(addDays(today, 30));
    const saved = w.clock.now();
    w.clock.advanceDays(31);
    try {
      expect(() => services.compliance.extend(f.id, addDays(today, 60), 'nia')).toThrow(/has passed/);
    } finally {
      w.clock.set(saved.toISOString());
    }
  });
});

describe('termination, period end, inactivity and disposal', () => {
  it('R11.1 a termination notice under one month is refused; at one month the link ends by itself on the date', async () => {
    const id = await approvedLink(w, keys, { account: 'c6' });
    await expect(services.compliance.terminate(id, addDays(today, 20), today, 'agency')).rejects.toThrow(/earliest effective date is/);
    const effective = addMonths(today, 1);
    await services.compliance.terminate(id, effective, today, 'agency');
    expect(w.registry.show(id).endsOn).toBe(effective);
    await services.compliance.sweep('test', addDays(effective, -1));
    expect(status(id)).toBe('active');
    await services.compliance.sweep('test', effective);
    expect(w.registry.show(id)).toMatchObject({ status: 'terminated', endReason: 'agency-notice' });
  });

  it('R-F5 at the end of the use period the link stops and a disposal task opens; the confirmation is recorded', async () => {
    const id = await approvedLink(w, keys, { account: 'c7', from: addDays(today, -30), to: addDays(today, 5) });
    await services.compliance.sweep('test', addDays(today, 5));
    expect(status(id)).toBe('active');
    const r = await services.compliance.sweep('test', addDays(today, 6));
    expect(r.changes).toContain(`link ${id}: use period ended on ${addDays(today, 5)}; disposal task opened`);
    expect(w.registry.show(id).endReason).toBe('expiry');
    expect(services.compliance.status(addDays(today, 6))).toContain(`link ${id}: disposal (刪除) not confirmed since ${addDays(today, 6)}`);
    services.compliance.confirmDisposal(id, 'destroyed on the dedicated machine', '王小明');
    expect(repo.disposalFor(w.cdb.db, id)).toMatchObject({ confirmedBy: '王小明', how: 'destroyed on the dedicated machine' });
    expect(listLog(w.cdb.db, { linkId: id, type: 'disposal.confirmed' })).toHaveLength(1);
  });

  it('R13.1 a link unused for more than a year is flagged; it stops only after notice and the agency\'s confirmation', async () => {
    const id = await approvedLink(w, keys, { account: 'c8' });
    const yearLater = addMonths(today, 12);
    expect((await services.compliance.sweep('test', yearLater)).changes.filter((c) => c.startsWith(`link ${id}:`))).toEqual([]);
    expect((await services.compliance.sweep('test', addDays(yearLater, 1))).changes).toContain(`link ${id}: flagged inactive (last use ${today})`);
    await expect(services.compliance.inactivityConfirm(id, 'agency', addDays(yearLater, 2))).rejects.toThrow(/not given written notice/);
    await services.compliance.inactivityNotice(id, 'nia', addDays(yearLater, 2));
    expect(status(id)).toBe('active');
    await services.compliance.inactivityConfirm(id, 'agency', addDays(yearLater, 40));
    expect(w.registry.show(id)).toMatchObject({ status: 'terminated', endReason: 'inactivity' });
  });
});
