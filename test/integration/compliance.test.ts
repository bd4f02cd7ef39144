import { Queue } from 'bullmq';
import { loadConfig, type Config } from '../../src/config';
import { ComplianceService } from '../../src/compliance';
import { ensureKeys } from '../../src/crypto';
import { compliance as repo } from '../../src/db/repositories';
import { addDays, addMonths, taipeiDate } from '../../src/domain';
import { connection, queuePrefix, syncSchedules, type TypedQueue } from '../../src/queue';
import { buildServices, type Services } from '../../src/services';
import { appendLog, listLog, verifyLog } from '../../src/usagelog';
import { person, writeEntryExitSource } from '../helpers/source';
import { sftpBatch, startSftp } from '../helpers/sftp';
import { approvedLink, cleanupKeys, makeAgencyKeys, openWorld, type AgencyKeys, type TestWorld } from '../helpers/world';

const REDIS = process.env.NIA_TEST_REDIS_URL!;
let keys: AgencyKeys;
let w: TestWorld;
let config: Config;
let services: Services;
let queue: TypedQueue<'extract'>;
let today: string;
let t0: Date;
let seq = 0;
let letters = 0;
let sftp: Awaited<ReturnType<typeof startSftp>>;
/** Can the agency log in over SFTP (OpenSSH client) and list its outbox? */
const sftpWorks = async () => (await sftpBatch(sftp.port, keys.sshPrivateFile, 'c1', 'ls /outbox', [], 20000)).code === 0;

const deliver = (linkId: number) => services.extracts.run({ key: `t-${linkId}-${++seq}`, linkId, full: true, trigger: 'manual' }, { finalAttempt: true });
const status = async (id: number) => (await w.registry.show(id)).status;
const schedulersFor = async (id: number) => (await queue.getJobSchedulers()).filter((s) => s.key === `link:${id}`);
const sync = async () => syncSchedules(queue, (await w.registry.list()).map((l) => ({ id: l.id, schedule: l.schedule, active: l.status === 'active' })));
/** Every action happens at the clock's time: a test moves the clock to noon of a Taipei day. */
const dayIs = (day: string) => w.clock.set(new Date(Date.parse(`${day}T12:00:00+08:00`)).toISOString());
/** The reference of a dated document (an agency's letter). */
const letter = () => `府授字第115${String(++letters).padStart(7, '0')}號`;

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = openWorld();
  config = loadConfig({ dataDir: w.dataDir }, { REDIS_URL: REDIS, NIA_LINK_LOG_LEVEL: 'silent', NIA_LINK_INSTANCE_ID: `compliance${process.pid}`, NIA_LINK_SFTP_HOST: '127.0.0.1', NIA_LINK_SFTP_PORT: '0' });
  await ensureKeys(config.keysDir, new Date());
  writeEntryExitSource(w.dataDir, [person(1), person(2)], '2026-01-01T00:00:00.000Z');
  services = buildServices(config, w.cdb, w.clock);
  queue = new Queue('extract', { connection: connection(REDIS), prefix: queuePrefix(config) }) as TypedQueue<'extract'>;
  t0 = w.clock.now();
  today = taipeiDate(t0);
  sftp = await startSftp(config, w);
});
afterEach(() => w.clock.set(t0.toISOString()));
afterAll(async () => {
  await sftp?.svc.stop();
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  await services.linkEvents.settled();
  w.close();
  cleanupKeys(keys);
});

describe('findings, suspension and resumption (R10.1–R10.4)', () => {
  it('R10.1 R10.2 an overdue finding suspends the link: SFTP login refused, schedule gone, extracts refused; remediation within six months resumes it', async () => {
    const id = await approvedLink(w, keys, { account: 'c1', schedule: '0 2 * * *' });
    await sync();
    expect(await schedulersFor(id)).toHaveLength(1);
    expect((await deliver(id)).status).toBe('built');
    expect(await sftpWorks()).toBe(true);

    const f = await services.compliance.addFinding({ linkId: id, deadline: addDays(today, 10), text: '日誌未依規定保存' }, 'nia');
    dayIs(addDays(today, 10));
    expect((await services.compliance.sweep('test')).changes).toEqual([]);
    expect(await status(id)).toBe('active'); // the deadline day itself is still in time
    dayIs(addDays(today, 11));
    const r = await services.compliance.sweep('test');
    expect(r.changes).toEqual([`link ${id}: suspended (finding ${f.id} overdue since ${addDays(today, 11)})`]);
    expect(await status(id)).toBe('suspended');
    await sync();
    expect(await schedulersFor(id)).toEqual([]);
    await expect(deliver(id)).rejects.toThrow(/link is suspended/);
    expect(await sftpWorks()).toBe(false);
    expect(await listLog(w.cdb.db, { linkId: id, type: 'link.suspended' })).toHaveLength(1);
    expect((await services.compliance.listNotices(id)).map((n) => n.kind)).toEqual(['finding', 'suspended']);
    expect((await services.compliance.listNotices(id))[1].textZh).toMatch(/中華民國 \d+ 年 \d+ 月 \d+ 日/);

    // Resumption needs remediation first.
    dayIs(addDays(today, 15));
    await expect(services.compliance.resumeRequest(id, 'agency')).rejects.toThrow(/not recorded yet/);
    dayIs(addDays(today, 20));
    await services.compliance.remediate(f.id, { letterNo: letter(), note: 'logs kept five years now' }, 'agency');
    await expect(services.compliance.resumeApprove(id, 'nia')).rejects.toThrow(/no resumption request/);
    await services.compliance.resumeRequest(id, 'agency');
    dayIs(addDays(today, 21));
    await services.compliance.resumeApprove(id, 'nia');
    expect(await status(id)).toBe('active');
    w.clock.set(t0.toISOString());
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
    dayIs(suspendedOn);
    await services.compliance.sweep('test');
    expect(await status(id)).toBe('suspended');
    dayIs(addDays(addMonths(suspendedOn, 6), 1));
    await services.compliance.remediate(f.id, { letterNo: letter() }, 'agency');
    await expect(services.compliance.resumeRequest(id, 'agency')).rejects.toThrow(/new application is required/);
    expect(await w.registry.show(id)).toMatchObject({ status: 'terminated', endReason: 'reapplication-required' });
    expect(await repo.disposalFor(w.cdb.db, id)).toMatchObject({ confirmedAt: null });
    expect((await services.compliance.listNotices(id)).pop()!.kind).toBe('resume-refused');
  });

  it('R10.3 exactly six months is still in time', async () => {
    const id = await approvedLink(w, keys, { account: 'c3' });
    const f = await services.compliance.addFinding({ linkId: id, deadline: addDays(today, 1), text: 'x' }, 'nia');
    const suspendedOn = addDays(today, 2);
    dayIs(suspendedOn);
    await services.compliance.sweep('test');
    dayIs(addMonths(suspendedOn, 6));
    await services.compliance.remediate(f.id, { letterNo: letter() }, 'agency');
    await services.compliance.resumeRequest(id, 'agency');
    await services.compliance.resumeApprove(id, 'nia');
    expect(await status(id)).toBe('active');
  });

  it('R10.4 a completion date comes from a dated document: not later than today, not before the finding, at most 30 days back, with its reference; the row and the record keep the date and the time it was entered', async () => {
    const id = await approvedLink(w, keys, { account: 'c9' });
    const f = await services.compliance.addFinding({ linkId: id, deadline: addDays(today, 1), text: 'x' }, 'nia');
    const suspendedOn = addDays(today, 2);
    dayIs(suspendedOn);
    await services.compliance.sweep('test');
    expect(await status(id)).toBe('suspended');
    // Ten months on, a completion claimed before the sixth month would let the link resume.
    dayIs(addMonths(suspendedOn, 10));
    const remediate = (on: string | undefined, letterNo?: string) => services.compliance.remediate(f.id, { on, letterNo }, 'agency');
    await expect(remediate(addMonths(suspendedOn, 5), letter())).rejects.toThrow(/more than 30 days back/);
    await expect(remediate(addDays(addMonths(suspendedOn, 10), 1), letter())).rejects.toThrow(/is in the future/);
    await expect(remediate(addMonths(suspendedOn, 10))).rejects.toThrow(/needs the letter number of the/);
    dayIs(addDays(today, 5));
    await expect(remediate(addDays(today, -1), letter())).rejects.toThrow(new RegExp(`is before finding ${f.id} was recorded on ${today}`));
    dayIs(addMonths(suspendedOn, 10));
    const ref = letter();
    const row = await services.compliance.remediate(f.id, { on: addDays(addMonths(suspendedOn, 10), -30), letterNo: ref }, 'agency');
    expect(row).toMatchObject({ remediatedOn: addDays(addMonths(suspendedOn, 10), -30), remediationLetterNo: ref, remediationRecordedAt: w.clock.now().toISOString() });
    expect(JSON.parse((await listLog(w.cdb.db, { linkId: id, type: 'finding.remediated' }))[0].detail)).toMatchObject({ completedOn: row.remediatedOn, letterNo: ref, recordedAt: row.remediationRecordedAt });
    await expect(services.compliance.resumeRequest(id, 'agency')).rejects.toThrow(/new application is required/);
    expect((await w.registry.show(id)).status).toBe('terminated');
  });

  it('R10.4 a suspension without a finding runs six months too: resumption needs its completion recorded (link remediated), and the sweep ends it after six months without', async () => {
    const kept = await approvedLink(w, keys, { account: 'c10' });
    const lapsed = await approvedLink(w, keys, { account: 'c11' });
    await services.compliance.suspend(kept, '違反第八點', 'nia');
    await services.compliance.suspend(lapsed, '違反第八點', 'nia');
    await expect(services.compliance.resumeRequest(kept, 'agency')).rejects.toThrow(/not recorded yet/);
    dayIs(addDays(today, 40));
    await expect(services.compliance.remediateSuspension(kept, { on: today, letterNo: letter() }, 'agency')).rejects.toThrow(/more than 30 days back/);
    const s = await services.compliance.remediateSuspension(kept, { on: addDays(today, 35), letterNo: letter() }, 'agency');
    expect(s).toMatchObject({ remediatedOn: addDays(today, 35), startedOn: today });
    await services.compliance.resumeRequest(kept, 'agency');
    await services.compliance.resumeApprove(kept, 'nia');
    expect(await status(kept)).toBe('active');

    dayIs(addMonths(today, 6));
    expect((await services.compliance.sweep('test')).changes.filter((c) => c.startsWith(`link ${lapsed}:`))).toEqual([]);
    expect(await status(lapsed)).toBe('suspended');
    dayIs(addDays(addMonths(today, 6), 1));
    const r = await services.compliance.sweep('test');
    expect(r.changes).toContain(`link ${lapsed}: ended (reapplication-required): improvements not completed by ${addMonths(today, 6)}, six months after the suspension began on ${today}: a new application is required (R10.4)`);
    expect(await w.registry.show(lapsed)).toMatchObject({ status: 'terminated', endReason: 'reapplication-required' });
    expect(await repo.disposalFor(w.cdb.db, lapsed)).toMatchObject({ openedOn: addDays(addMonths(today, 6), 1), confirmedAt: null });
    expect((await services.compliance.listNotices(lapsed)).pop()).toMatchObject({ kind: 'ended', textEn: expect.stringMatching(/six months after the suspension began/) });
    expect(await status(kept)).toBe('active');
  });

  it('R10.1 with autoSuspend off an overdue finding waits for an operator', async () => {
    const manual = new ComplianceService({ cdb: w.cdb, registry: w.registry, clock: w.clock, config: { ...config, policy: { autoSuspend: false } } });
    const id = await approvedLink(w, keys, { account: 'c4' });
    await manual.addFinding({ linkId: id, deadline: addDays(today, 1), text: 'x' }, 'nia');
    dayIs(addDays(today, 2));
    const r = await manual.sweep('test');
    expect(await status(id)).toBe('active');
    expect(r.due).toContain(`link ${id}: due for suspension (finding ${(await manual.listFindings(id))[0].id} overdue); confirm with nia-link link suspend ${id} --reason …`);
    await manual.suspend(id, 'confirmed by the duty officer', 'nia');
    expect(await status(id)).toBe('suspended');
  });

  it('R10.1 a deadline is never in the past; it can be extended before it passes, not after', async () => {
    const id = await approvedLink(w, keys, { account: 'c5' });
    await expect(services.compliance.addFinding({ linkId: id, deadline: addDays(today, -3), text: 'x' }, 'nia')).rejects.toThrow(/the deadline .* is in the past/);
    const f = await services.compliance.addFinding({ linkId: id, deadline: addDays(today, 3), text: 'x' }, 'nia');
    expect((await services.compliance.extend(f.id, addDays(today, 30), 'nia')).deadline).toBe(addDays(today, 30));
    dayIs(addDays(today, 31));
    await expect(services.compliance.extend(f.id, addDays(today, 60), 'nia')).rejects.toThrow(/has passed/);
    await expect(services.compliance.extend(f.id, addDays(today, 20), 'nia')).rejects.toThrow(/is in the past/);
  });
});

describe('termination, stop requests, period end, inactivity and disposal', () => {
  it('R11.1 a termination notice under one month is refused; at one month the link ends by itself on the date', async () => {
    const id = await approvedLink(w, keys, { account: 'c6' });
    await expect(services.compliance.terminate(id, { effective: addDays(today, 20), letterNo: letter() }, 'agency')).rejects.toThrow(/earliest effective date is/);
    const effective = addMonths(today, 1);
    const ref = letter();
    await services.compliance.terminate(id, { effective, noticeDate: today, letterNo: ref }, 'agency');
    expect((await w.registry.show(id)).endsOn).toBe(effective);
    expect(await repo.terminations(w.cdb.db, id)).toEqual([expect.objectContaining({ noticeDate: today, letterNo: ref, effectiveOn: effective, recordedAt: t0.toISOString() })]);
    dayIs(addDays(effective, -1));
    await services.compliance.sweep('test');
    expect(await status(id)).toBe('active');
    dayIs(effective);
    await services.compliance.sweep('test');
    expect(await w.registry.show(id)).toMatchObject({ status: 'terminated', endReason: 'agency-notice' });
    expect(await repo.disposalFor(w.cdb.db, id)).toMatchObject({ openedOn: effective });
  });

  it('R11.1 the date a termination notice was received is a claimed date: not ahead, at most 30 days back, with its letter; the effective date is never past', async () => {
    const id = await approvedLink(w, keys, { account: 'c12' });
    // As reproduced: notice "received" long ago, effective today.
    dayIs(addMonths(today, 11));
    const now = addMonths(today, 11);
    await expect(services.compliance.terminate(id, { effective: now, noticeDate: addDays(now, -200), letterNo: letter() }, 'agency')).rejects.toThrow(/more than 30 days back/);
    await expect(services.compliance.terminate(id, { effective: addMonths(now, 2), noticeDate: addDays(now, 1), letterNo: letter() }, 'agency')).rejects.toThrow(/in the future/);
    await expect(services.compliance.terminate(id, { effective: addMonths(now, 2) }, 'agency')).rejects.toThrow(/needs the letter number of the/);
    await expect(services.compliance.terminate(id, { effective: addDays(now, -1), letterNo: letter() }, 'agency')).rejects.toThrow(/the effective date .* is in the past/);
    expect(await w.registry.show(id)).toMatchObject({ status: 'active', endsOn: null });
    expect(await listLog(w.cdb.db, { linkId: id, type: 'link.termination-noticed' })).toEqual([]);
  });

  it('R-F5 R12.1 an approved stop request ends the link through the one path: disposal task and notice; dated today at once, dated later by the sweep', async () => {
    const now = await approvedLink(w, keys, { account: 'c13' });
    const later = await approvedLink(w, keys, { account: 'c14' });
    await expect(w.registry.fileChange(now, 'stop', { value: addDays(today, -1), letterNo: letter() }, 'agency')).rejects.toThrow(/in the past/);
    await expect(w.registry.fileChange(now, 'stop', {}, 'agency')).rejects.toThrow(/needs the letter number of the/);
    const ref = letter();
    const cr = await w.registry.fileChange(now, 'stop', { letterNo: ref, letterDate: today }, 'agency');
    expect(cr.change).toMatchObject({ kind: 'stop', stopOn: today, letterNo: ref, letterDate: today });
    // The registry records the end date; only the compliance service ends links.
    expect((await w.registry.approveChange(cr.id, 'nia')).link).toMatchObject({ status: 'active', endsOn: today });
    expect((await services.compliance.endDue('nia', now)).ended).toEqual([`link ${now}: ended on ${today} (stop-request)`]);
    expect(await w.registry.show(now)).toMatchObject({ status: 'terminated', endReason: 'stop-request' });
    expect(await repo.disposalFor(w.cdb.db, now)).toMatchObject({ openedOn: today, confirmedAt: null });
    expect((await services.compliance.listNotices(now)).map((n) => n.kind)).toEqual(['ended']);

    const stopOn = addMonths(today, 1);
    const cr2 = await w.registry.fileChange(later, 'stop', { value: stopOn, letterNo: letter() }, 'agency');
    await w.registry.approveChange(cr2.id, 'nia');
    expect((await services.compliance.endDue('nia', later)).ended).toEqual([]);
    dayIs(stopOn);
    expect((await services.compliance.sweep('test')).changes).toContain(`link ${later}: ended on ${stopOn} (stop-request)`);
    expect(await repo.disposalFor(w.cdb.db, later)).toMatchObject({ openedOn: stopOn });
    expect((await services.compliance.listNotices(later)).map((n) => n.kind)).toEqual(['ended']);
  });

  it('R-F5 at the end of the use period the link stops and a disposal task opens; the confirmation is recorded with its date and document', async () => {
    const id = await approvedLink(w, keys, { account: 'c7', from: addDays(today, -30), to: addDays(today, 5) });
    dayIs(addDays(today, 5));
    await services.compliance.sweep('test');
    expect(await status(id)).toBe('active');
    dayIs(addDays(today, 6));
    const r = await services.compliance.sweep('test');
    expect(r.changes).toContain(`link ${id}: use period ended on ${addDays(today, 5)}; disposal task opened`);
    expect((await w.registry.show(id)).endReason).toBe('expiry');
    expect(await services.compliance.status()).toContain(`link ${id}: disposal (刪除) not confirmed since ${addDays(today, 6)}`);
    dayIs(addDays(today, 9));
    const confirm = (on: string, letterNo: string | undefined) => services.compliance.confirmDisposal(id, { how: 'destroyed on the dedicated machine', by: '王小明', on, letterNo });
    await expect(confirm(addDays(today, 5), letter())).rejects.toThrow(new RegExp(`before link ${id} ended on ${addDays(today, 6)}`));
    await expect(confirm(addDays(today, 8), undefined)).rejects.toThrow(/needs the letter number of the/);
    const ref = letter();
    await confirm(addDays(today, 8), ref);
    expect(await repo.disposalFor(w.cdb.db, id)).toMatchObject({ confirmedBy: '王小明', how: 'destroyed on the dedicated machine', doneOn: addDays(today, 8), letterNo: ref, confirmedAt: w.clock.now().toISOString() });
    expect(JSON.parse((await listLog(w.cdb.db, { linkId: id, type: 'disposal.confirmed' }))[0].detail)).toMatchObject({ doneOn: addDays(today, 8), letterNo: ref });
  });

  it("R13.1 a link unused for more than a year is flagged; it stops only after notice and the agency's confirmation", async () => {
    const id = await approvedLink(w, keys, { account: 'c8', to: addMonths(today, 30) });
    const yearLater = addMonths(today, 12);
    dayIs(yearLater);
    expect((await services.compliance.sweep('test')).changes.filter((c) => c.startsWith(`link ${id}:`))).toEqual([]);
    dayIs(addDays(yearLater, 1));
    expect((await services.compliance.sweep('test')).changes).toContain(`link ${id}: flagged inactive (last use ${today})`);
    dayIs(addDays(yearLater, 2));
    await expect(services.compliance.inactivityConfirm(id, { letterNo: letter() }, 'agency')).rejects.toThrow(/not given written notice/);
    await services.compliance.inactivityNotice(id, 'nia');
    expect(await status(id)).toBe('active');
    dayIs(addDays(yearLater, 40));
    await expect(services.compliance.inactivityConfirm(id, { on: addDays(yearLater, 1), letterNo: letter() }, 'agency')).rejects.toThrow(/before NIA's notice of inactivity/);
    await services.compliance.inactivityConfirm(id, { on: addDays(yearLater, 30), letterNo: letter() }, 'agency');
    expect(await w.registry.show(id)).toMatchObject({ status: 'terminated', endReason: 'inactivity' });
    expect(await repo.inactivityFor(w.cdb.db, id)).toMatchObject({ confirmedOn: addDays(yearLater, 30), confirmationRecordedAt: w.clock.now().toISOString() });
  });
});

describe('time follows the clock (R6.6, R13.1)', () => {
  it("R6.6 the usage log's times follow its order: a record is never dated before the one in front of it, and verification holds", async () => {
    const id = await approvedLink(w, keys, { account: 'c15' });
    dayIs(addDays(today, 3));
    await services.compliance.addFinding({ linkId: id, deadline: addDays(today, 10), text: 'x' }, 'nia');
    const ahead = (await listLog(w.cdb.db, { linkId: id })).pop()!.at;
    // A clock behind the log's head (another process's clock, a reset test clock) writes at the head's time.
    w.clock.set(t0.toISOString());
    await services.compliance.suspend(id, 'x', 'nia');
    const after = (await listLog(w.cdb.db, { linkId: id, type: 'link.suspended' }))[0];
    expect(after.at >= ahead).toBe(true);
    const all = await listLog(w.cdb.db, {});
    for (let i = 1; i < all.length; i++) expect(all[i].at >= all[i - 1].at).toBe(true);
    expect((await verifyLog(w.cdb)).ok).toBe(true);
  });

  it('R13.1 inactivity counts Taipei days: a use at 06:00 on 1 March (Taipei) is flagged only after 1 March of the next year', async () => {
    // Later than every record so far, so the use is recorded at its own time.
    const useDay = addMonths(today, 26);
    const id = await approvedLink(w, keys, { account: 'c16', to: addMonths(today, 60) });
    const useAt = new Date(Date.parse(`${useDay}T06:00:00+08:00`));
    w.clock.set(useAt.toISOString());
    await w.cdb.write((tx) => appendLog(tx, { type: 'file.downloaded', agency: 'A001', linkId: id, actor: 'c16', ip: '127.0.0.1', channel: 'sftp-pull', object: 'f.csv.pgp', detail: { bytes: 1, result: 'complete' } }, useAt));
    expect((await listLog(w.cdb.db, { linkId: id, type: 'file.downloaded' }))[0].at).toBe(useAt.toISOString());
    dayIs(addMonths(useDay, 12));
    expect((await services.compliance.sweep('test')).changes.filter((c) => c.startsWith(`link ${id}:`))).toEqual([]);
    dayIs(addDays(addMonths(useDay, 12), 1));
    expect((await services.compliance.sweep('test')).changes).toContain(`link ${id}: flagged inactive (last use ${useDay})`);
  });
});
