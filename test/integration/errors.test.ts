import { cliMessage, FLAG_OF_FIELD } from '../../src/cli/flags';
import { ComplianceService } from '../../src/compliance';
import { loadConfig } from '../../src/config';
import { addDays, taipeiDate } from '../../src/domain';
import { ERROR_KINDS, kindOfCode, required, UserError } from '../../src/errors';
import { STATUS_OF_KIND } from '../../src/http/app';
import { approvableLink, approvedLink, type AgencyKeys, type TestWorld, worldEachTest } from '../helpers/world';

/**
 * Errors carry a stable code and a kind, and name what is wrong in words every front-end can show:
 * the console (in two languages) never shows a command-line flag; the CLI adds its flag from the
 * input the error names (UserError.field).
 */
let keys: AgencyKeys;
let w: TestWorld;
worldEachTest({ keys: (k) => (keys = k), world: (x) => (w = x) }, { agency: true });

async function caught(fn: () => unknown): Promise<UserError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof UserError) return err;
    throw err;
  }
  throw new Error('it did not throw');
}

const compliance = () => new ComplianceService({ cdb: w.cdb, registry: w.registry, clock: w.clock, config: loadConfig({ dataDir: w.dataDir }, { NIA_LINK_LOG_LEVEL: 'silent' }) });

describe('user errors: code, kind, the input they are about', () => {
  it('each kind of mistake says which kind it is, with a stable code; messages name the thing, not a flag', async () => {
    const id = await approvedLink(w, keys);
    const pending = await approvableLink(w, keys, { account: 'a002' });
    const today = taipeiDate(w.clock.now());
    const svc = compliance();
    const errors = {
      reason: await caught(() => svc.suspend(id, '  ', 'nia')),
      rejectReason: await caught(() => w.registry.reject(pending, '', 'nia')),
      letter: await caught(() => w.registry.approve(pending, { by: 'nia' })),
      deadline: await caught(() => svc.addFinding({ linkId: id, deadline: addDays(today, -1), text: 't' }, 'nia')),
      disposalHow: await caught(() => svc.confirmDisposal(id, { how: ' ', by: 'x' })),
      unknownLink: await caught(() => w.registry.show(999_999)),
      agencyExists: await caught(() => w.registry.addAgency({ code: 'A001', name: '重複' }, 'test')),
      notSuspended: await caught(() => svc.resumeRequest(id, 'agency')),
    };
    expect(errors.reason).toMatchObject({ message: 'a reason is required', code: 'reason.required', kind: 'invalid', field: 'reason' });
    expect(errors.rejectReason).toMatchObject({ message: 'a reason is required', code: 'reason.required', kind: 'invalid', field: 'reason' });
    expect(errors.letter).toMatchObject({ code: 'approve.letter-missing', kind: 'invalid', field: 'letterNo' });
    expect(errors.deadline).toMatchObject({ message: `the deadline ${addDays(today, -1)} is in the past (today is ${today})`, code: 'schedule.past', kind: 'refused', field: 'deadline' });
    expect(errors.disposalHow).toMatchObject({ code: 'how.required', kind: 'invalid', field: 'how' });
    expect(errors.unknownLink).toMatchObject({ code: 'link.unknown', kind: 'not-found' });
    expect(errors.agencyExists).toMatchObject({ code: 'agency.exists', kind: 'conflict' });
    expect(errors.notSuspended).toMatchObject({ code: 'link.not-suspended', kind: 'refused' });
    for (const e of Object.values(errors)) {
      expect(e.message).not.toMatch(/(^|\s)--[a-z]/);
      expect(ERROR_KINDS).toContain(e.kind);
      // Every input an error names is one the CLI knows the flag of.
      if (e.field !== undefined) expect(FLAG_OF_FIELD[e.field]).toMatch(/^--[a-z]/);
    }
  });

  it('the kind follows the code by convention unless given; the console answers each kind with its own status', () => {
    expect(kindOfCode('link.unknown')).toBe('not-found');
    expect(kindOfCode('agency.exists')).toBe('conflict');
    expect(kindOfCode('audit.period')).toBe('invalid');
    expect(kindOfCode('resume.too-late')).toBe('refused');
    expect(new UserError('x', 'link.unknown', 'refused').kind).toBe('refused');
    expect(required('a reason', 'reason')).toMatchObject({ message: 'a reason is required', code: 'reason.required', kind: 'invalid', field: 'reason' });
    expect(STATUS_OF_KIND).toEqual({ invalid: 400, 'not-found': 404, conflict: 409, refused: 422 });
  });

  it('the CLI adds the flag of the input an error names, and nothing to one that names none', () => {
    expect(cliMessage(required('a reason', 'reason'))).toBe('a reason is required (--reason)');
    expect(cliMessage(new UserError('link 9 does not exist', 'link.unknown'))).toBe('link 9 does not exist');
    expect(cliMessage(new UserError('x', 'y', { field: 'no-such-input' }))).toBe('x');
  });
});
