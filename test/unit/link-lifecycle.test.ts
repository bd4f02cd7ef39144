import { LINK_STATUSES, mayUse, transition, usableOn, type LinkEvent, type LinkStatus } from '../../src/domain';

const EVENTS: LinkEvent[] = [{ kind: 'approve' }, { kind: 'reject' }, { kind: 'suspend' }, { kind: 'resume' }, { kind: 'terminate', reason: 'agency-notice' }];

/** The whole table: every status × every event, with the expected outcome (undefined = refused). */
const EXPECTED: Record<LinkStatus, Partial<Record<LinkEvent['kind'], LinkStatus>>> = {
  pending: { approve: 'active', reject: 'rejected' },
  active: { suspend: 'suspended', terminate: 'terminated' },
  suspended: { resume: 'active', terminate: 'terminated' },
  terminated: {},
  rejected: {},
};

describe('link lifecycle (DESIGN: pending → active → suspended → active | terminated; rejected)', () => {
  for (const status of LINK_STATUSES) {
    for (const event of EVENTS) {
      const expected = EXPECTED[status][event.kind];
      it(`${status} + ${event.kind} → ${expected ?? 'refused'}`, () => {
        const r = transition(status, event);
        if (expected) {
          expect(r).toEqual({ ok: true, value: expected });
        } else {
          expect(r.ok).toBe(false);
          if (!r.ok) {
            expect(r.refusal.code).toBe(`link.${event.kind}.refused`);
            expect(r.refusal.message).toContain(status);
          }
        }
      });
    }
  }

  it('R3.3 a pending link is not usable until NIA approves it', () => {
    expect(usableOn('pending', { from: '2026-01-01', to: '2026-12-31' }, '2026-06-01')).toMatchObject({ ok: false, refusal: { code: 'link.not-active' } });
  });
  it('R10.1 a suspended link is not usable', () => {
    expect(usableOn('suspended', { from: '2026-01-01', to: '2026-12-31' }, '2026-06-01').ok).toBe(false);
  });
  it('R3.1 an active link is usable only inside its use period, both end days included', () => {
    const p = { from: '2026-01-01', to: '2026-12-31' };
    expect(usableOn('active', p, '2025-12-31')).toMatchObject({ ok: false, refusal: { code: 'link.period.not-started' } });
    expect(usableOn('active', p, '2026-01-01').ok).toBe(true);
    expect(usableOn('active', p, '2026-12-31').ok).toBe(true);
    expect(usableOn('active', p, '2027-01-01')).toMatchObject({ ok: false, refusal: { code: 'link.period.ended' } });
  });
  it('an ended link refuses everything and says a new application is needed', () => {
    const r = transition('terminated', { kind: 'resume' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.refusal.message).toMatch(/new application/);
  });
});

describe('mayUse: the check every channel makes before data flows', () => {
  const p = { from: '2026-01-01', to: '2026-12-31' };
  it('R12.1 an active link past its approved stop date may not be used; the day before it may', () => {
    expect(mayUse({ status: 'active', endsOn: '2026-06-30' }, p, '2026-06-29').ok).toBe(true);
    expect(mayUse({ status: 'active', endsOn: '2026-06-30' }, p, '2026-06-30')).toMatchObject({ ok: false, refusal: { code: 'link.ending' } });
    expect(mayUse({ status: 'suspended', endsOn: null }, p, '2026-06-01')).toMatchObject({ ok: false, refusal: { code: 'link.not-active' } });
  });
});
