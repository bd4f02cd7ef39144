import { checkDeadlineExtension, checkResumption, checkTerminationNotice, findingStatus, inactive, periodOver, reviewDue, selfAuditFlags } from '../../src/domain';

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
