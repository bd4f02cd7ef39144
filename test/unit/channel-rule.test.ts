import { CHANNEL_REFUSALS, clientRefusal, mayUseChannel, type ChannelSubject, type Method } from '../../src/domain';

const subject = (over: { status?: ChannelSubject['link']['status']; endsOn?: string | null; methods?: Method[]; allowIps?: string[] } = {}): ChannelSubject => ({
  link: { id: 7, status: over.status ?? 'active', endsOn: over.endsOn ?? null },
  content: { methods: over.methods ?? ['sftp-pull', 'online-query'], period: { from: '2026-01-01', to: '2026-12-31' } },
  allowIps: over.allowIps ?? ['10.1.2.0/30'],
});
const today = '2026-06-01';

describe('one rule for who may use a channel from where (R3.1, R3.3, R8.2, R10.1, R12.1)', () => {
  it('an active link inside its period may use an approved channel from an address on its allow-list in force', () => {
    expect(mayUseChannel(subject(), 'sftp-pull', { today, ip: '10.1.2.3' })).toEqual({ ok: true, value: true });
    expect(mayUseChannel(subject(), 'online-query', { today, ip: '::ffff:10.1.2.1' })).toEqual({ ok: true, value: true });
  });

  it("the link's state comes first: a suspended, not yet started, ended or stopping link is refused whatever the channel and address", () => {
    expect(mayUseChannel(subject({ status: 'suspended' }), 'sftp-pull', { today, ip: '10.9.9.9' })).toMatchObject({ ok: false, refusal: { code: 'link.not-active' } });
    expect(mayUseChannel(subject(), 'sftp-pull', { today: '2025-12-31' })).toMatchObject({ ok: false, refusal: { code: 'link.period.not-started' } });
    expect(mayUseChannel(subject(), 'sftp-pull', { today: '2027-01-01' })).toMatchObject({ ok: false, refusal: { code: 'link.period.ended' } });
    expect(mayUseChannel(subject({ endsOn: '2026-06-01' }), 'sftp-pull', { today })).toMatchObject({ ok: false, refusal: { code: 'link.ending' } });
  });

  it('a channel not on the current revision is refused; an extract needs one of the file methods', () => {
    expect(mayUseChannel(subject(), 'sftp-push', { today })).toMatchObject({ ok: false, refusal: { code: 'channel.not-approved' } });
    expect(mayUseChannel(subject({ methods: ['online-query'] }), 'extract', { today })).toMatchObject({ ok: false, refusal: { code: 'channel.not-approved' } });
    expect(mayUseChannel(subject({ methods: ['email'] }), 'extract', { today })).toEqual({ ok: true, value: true });
  });

  it('an address outside the allow-list in force is refused; without an address the address is not judged', () => {
    expect(mayUseChannel(subject(), 'sftp-pull', { today, ip: '10.1.2.4' })).toMatchObject({ ok: false, refusal: { code: 'ip.not-allowed' } });
    expect(mayUseChannel(subject({ allowIps: [] }), 'sftp-pull', { today, ip: '10.1.2.1' })).toMatchObject({ ok: false, refusal: { code: 'ip.not-allowed' } });
    expect(mayUseChannel(subject({ allowIps: [] }), 'sftp-push', { today })).toMatchObject({ ok: false, refusal: { code: 'channel.not-approved' } });
  });

  it('every refusal the rule gives is in the one table, and a client outside NIA hears link.not-usable for any state of the link', () => {
    const codes = [
      mayUseChannel(subject({ status: 'terminated' }), 'sftp-pull', { today }),
      mayUseChannel(subject(), 'sftp-pull', { today: '2025-01-01' }),
      mayUseChannel(subject(), 'sftp-pull', { today: '2028-01-01' }),
      mayUseChannel(subject({ endsOn: '2026-01-02' }), 'sftp-pull', { today }),
      mayUseChannel(subject(), 'email', { today }),
      mayUseChannel(subject(), 'sftp-pull', { today, ip: '192.0.2.1' }),
    ].map((r) => (r.ok ? 'ok' : r.refusal.code));
    expect(codes.sort()).toEqual(Object.keys(CHANNEL_REFUSALS).sort());
    expect(clientRefusal('link.period.ended')).toEqual({ code: 'link.not-usable', http: 403 });
    expect(clientRefusal('ip.not-allowed')).toEqual({ code: 'ip.not-allowed', http: 403 });
  });
});
