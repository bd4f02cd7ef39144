import {
  checkClaimedDate,
  checkDeadlineExtension,
  checkResumption,
  checkScheduledDate,
  checkTerminationNotice,
  findingStatus,
  inactive,
  instantOnTaipeiDay,
  periodOver,
  reviewDue,
  selfAuditFlags,
  shiftedClock,
  suspensionLapsed,
  taipeiDate,
} from '../../src/domain';
import { responseMissing, sponsorAuditDue } from '../../src/compliance/duties';

describe('compliance deadlines at their boundaries', () => {
  it('R10.1 a finding is open on its deadline day and overdue the day after', () => {
    const f = { deadline: '2026-12-10', remediatedOn: null };
    expect(findingStatus(f, '2026-12-09')).toBe('open');
    expect(findingStatus(f, '2026-12-10')).toBe('open');
    expect(findingStatus(f, '2026-12-11')).toBe('overdue');
    expect(findingStatus({ ...f, remediatedOn: '2026-12-20' }, '2026-12-30')).toBe('remediated');
  });
  it('R10.1 a deadline can be extended only before it passes, and only to a later day', () => {
    const f = { deadline: '2026-12-10', remediatedOn: null };
    expect(checkDeadlineExtension(f, '2026-12-20', '2026-12-10').ok).toBe(true);
    expect(checkDeadlineExtension(f, '2026-12-20', '2026-12-11')).toMatchObject({ ok: false, refusal: { code: 'finding.deadline-passed' } });
    expect(checkDeadlineExtension(f, '2026-12-10', '2026-12-01')).toMatchObject({ ok: false, refusal: { code: 'finding.extension-not-later' } });
  });
  it('R10.3 remediation exactly six months after the suspension began still allows resumption; one day later does not', () => {
    expect(checkResumption({ suspendedOn: '2026-01-15', remediatedOn: '2026-07-15' }).ok).toBe(true);
    expect(checkResumption({ suspendedOn: '2026-01-15', remediatedOn: '2026-07-16' })).toMatchObject({ ok: false, refusal: { code: 'resume.too-late', message: expect.stringMatching(/new application/) } });
    expect(checkResumption({ suspendedOn: '2026-08-31', remediatedOn: '2027-02-28' }).ok).toBe(true);
    expect(checkResumption({ suspendedOn: '2026-08-31', remediatedOn: '2027-03-01' }).ok).toBe(false);
    expect(checkResumption({ suspendedOn: '2026-01-15', remediatedOn: null })).toMatchObject({ ok: false, refusal: { code: 'resume.not-remediated' } });
  });
  it('R11.1 termination exactly one month after the notice is accepted; a day earlier is refused naming the earliest date', () => {
    expect(checkTerminationNotice('2026-11-28', '2026-12-28').ok).toBe(true);
    expect(checkTerminationNotice('2026-11-28', '2026-12-27')).toMatchObject({ ok: false, refusal: { message: expect.stringMatching(/earliest effective date is 2026-12-28/) } });
  });
  it('R13.1 a link unused for exactly one year is not flagged; one day more is', () => {
    expect(inactive('2025-03-01', '2026-03-01')).toBe(false);
    expect(inactive('2025-03-01', '2026-03-02')).toBe(true);
  });
  it('R6.4 fewer than two self-audits in a whole calendar year, or none in six months, is flagged', () => {
    expect(selfAuditFlags(['2025-03-01', '2025-09-01', '2026-05-01'], '2026-08-01', '2025-01-01')).toEqual([]);
    expect(selfAuditFlags(['2025-03-01', '2026-05-01'], '2026-08-01', '2025-01-01')).toEqual(['2025: 1 self-audit, at least two are required (R6.4)']);
    expect(selfAuditFlags(['2025-03-01', '2025-09-01', '2026-02-01'], '2026-08-01', '2025-01-01')).toEqual(['no self-audit since 2026-02-01 (R6.4)']);
    expect(selfAuditFlags(['2025-03-01', '2025-09-01', '2026-02-02'], '2026-08-01', '2025-01-01')).toEqual([]);
    // A partly tracked first year is not judged.
    expect(selfAuditFlags(['2026-05-01'], '2026-08-01', '2025-11-01')).toEqual([]);
  });
  it('R12.1 the necessity review is due one cycle after the last; R-F5 the period is over the day after its last day', () => {
    expect(reviewDue('2026-01-31', 12)).toBe('2027-01-31');
    expect(periodOver('2026-12-31', '2026-12-31')).toBe(false);
    expect(periodOver('2026-12-31', '2027-01-01')).toBe(true);
  });
});

describe('dates a user may give (R6.6, R10.4, R11.1)', () => {
  const today = '2026-12-06';
  const claim = (date: string, notBefore?: { date: string; what: string }, letterNo: string | null = '府授字第1150000001號') =>
    checkClaimedDate({ what: 'the completion date', field: 'completedOn', date, letterNo, notBefore }, today);

  it('R10.4 a date claimed for a past event needs its document, is not in the future, not before the event it answers, and at most 30 days back', () => {
    expect(claim('2026-12-06')).toEqual({ ok: true, value: { date: '2026-12-06', letterNo: '府授字第1150000001號' } });
    expect(claim('2026-11-06').ok).toBe(true); // exactly 30 days back
    expect(claim('2026-11-05')).toMatchObject({ ok: false, refusal: { code: 'claim.too-old', message: expect.stringMatching(/more than 30 days back \(the earliest is 2026-11-06\)/) } });
    expect(claim('2026-12-07')).toMatchObject({ ok: false, refusal: { code: 'claim.future' } });
    expect(claim('2026-11-20', { date: '2026-11-21', what: 'finding 3 was recorded' })).toMatchObject({ ok: false, refusal: { code: 'claim.before-event', field: 'completedOn', message: 'the completion date 2026-11-20 is before finding 3 was recorded on 2026-11-21' } });
    expect(claim('2026-11-21', { date: '2026-11-21', what: 'finding 3 was recorded' }).ok).toBe(true);
    expect(claim('2026-12-01', undefined, null)).toMatchObject({ ok: false, refusal: { code: 'claim.letter-missing', field: 'letterNo', invalid: true, message: 'the completion date needs the letter number of the document that dates it' } });
    expect(claim('2026-12-01', undefined, '  ')).toMatchObject({ ok: false, refusal: { code: 'claim.letter-missing' } });
    expect(claim('2026-02-30')).toMatchObject({ ok: false, refusal: { code: 'claim.date', field: 'completedOn', invalid: true } });
  });

  it('R10.4 a remediation back-dated to before the sixth month, entered ten months after the suspension, is refused', () => {
    // Suspended 2026-02-06; entered on 2026-12-06 claiming completion on 2026-08-01.
    expect(claim('2026-08-01', { date: '2026-02-06', what: 'the suspension began' })).toMatchObject({ ok: false, refusal: { code: 'claim.too-old' } });
  });

  it('R10.1 R11.1 a date that schedules may lie ahead, never behind: deadlines, effective and stop dates', () => {
    const deadline = { what: 'the deadline', field: 'deadline' };
    expect(checkScheduledDate(deadline, today, today).ok).toBe(true);
    expect(checkScheduledDate(deadline, '2027-06-30', today).ok).toBe(true);
    expect(checkScheduledDate(deadline, '2026-12-03', today)).toMatchObject({ ok: false, refusal: { code: 'schedule.past', field: 'deadline', message: 'the deadline 2026-12-03 is in the past (today is 2026-12-06)' } });
  });

  it('R6.6 a drill clock runs as of another Taipei day, keeping the time of day, and keeps moving', () => {
    const now = new Date('2026-12-05T20:30:00.000Z'); // 04:30 on 6 December in Taipei
    const start = instantOnTaipeiDay('2025-01-10', now);
    expect(start.toISOString()).toBe('2025-01-09T20:30:00.000Z');
    expect(taipeiDate(start)).toBe('2025-01-10');
    let t = now.getTime();
    const clock = shiftedClock(start, { now: () => new Date(t) });
    expect(clock.now().toISOString()).toBe(start.toISOString());
    t += 5000;
    expect(clock.now().getTime() - start.getTime()).toBe(5000);
  });
});

describe('the six months run whatever caused the suspension (R10.3, R10.4)', () => {
  it('R10.4 a suspension without completed improvements lapses the day after its sixth month', () => {
    const s = { suspendedOn: '2025-01-10', remediatedOn: null };
    expect(suspensionLapsed(s, '2025-07-10')).toBe(false);
    expect(suspensionLapsed(s, '2025-07-11')).toBe(true);
    expect(suspensionLapsed(s, '2026-12-06')).toBe(true);
    expect(suspensionLapsed({ ...s, remediatedOn: '2025-07-10' }, '2026-12-06')).toBe(false);
    expect(suspensionLapsed({ ...s, remediatedOn: '2025-07-11' }, '2026-12-06')).toBe(true);
    // Resumption needs the completion recorded, whatever the suspension's cause.
    expect(checkResumption(s)).toMatchObject({ ok: false, refusal: { code: 'resume.not-remediated' } });
  });

  it('R13.1 inactivity counts Taipei days: a use at 06:00 on 1 March (Taipei) is not flagged after exactly one year', () => {
    const lastUse = taipeiDate(new Date('2025-02-28T22:00:00.000Z'));
    expect(lastUse).toBe('2025-03-01');
    expect(inactive(lastUse, '2026-03-01')).toBe(false);
    expect(inactive(lastUse, '2026-03-02')).toBe(true);
  });
});


describe("the agency's and its sponsor's duties at their boundaries (R7.2, R14.2)", () => {
  it('R7.2 a response is missing from the day after the deadline; one recorded on the deadline day is in time, a later one is not', () => {
    expect(responseMissing('2026-12-10', [], '2026-12-10')).toBe(false);
    expect(responseMissing('2026-12-10', [], '2026-12-11')).toBe(true);
    expect(responseMissing('2026-12-10', ['2026-12-10'], '2026-12-11')).toBe(false);
    expect(responseMissing('2026-12-10', ['2026-12-11'], '2026-12-12')).toBe(true);
  });
  it('R14.2 a sponsor audit is due a cycle after the last one, or after the body was first approved when it was never audited', () => {
    expect(sponsorAuditDue(null, '2026-01-31')).toBe('2027-01-31');
    expect(sponsorAuditDue('2026-06-15', '2026-01-31')).toBe('2027-06-15');
    // An audit before the body's links came into force does not start the cycle early.
    expect(sponsorAuditDue('2025-06-15', '2026-01-31')).toBe('2027-01-31');
    expect(sponsorAuditDue('2026-06-15', '2026-01-31', 6)).toBe('2026-12-15');
  });
});
