import {
  addMonths,
  applyChange,
  canFileChange,
  checkRevision,
  checkSponsor,
  checkTerminationNotice,
  cidrWithin,
  ipAllowed,
  normaliseIp,
  parseCidr,
  parseFieldList,
  rocDate,
  taipeiDate,
  type RevisionContent,
} from '../../src/domain';
import { loadCatalogs } from '../../src/registry';

const catalogs = loadCatalogs();

const base: RevisionContent = {
  dataset: 'entry_exit',
  fields: [{ name: 'person_id', transform: 'hmac' }, { name: 'nationality' }],
  legalBasis: '所得稅法第7條',
  purpose: '居住者身分認定',
  department: '稽核科',
  officer: '王小明',
  supervisor: '陳大文',
  period: { from: '2026-01-01', to: '2026-12-31' },
  disposal: '刪除',
  methods: ['sftp-pull'],
  allowIps: ['127.0.0.1/32'],
  account: 'a001',
  push: null,
  email: [],
  schedule: null,
  pgpFingerprint: 'A'.repeat(40),
  rulesDocument: null,
  stopOn: null,
  clientCerts: [],
  scope: { all: true, justification: 'test: the whole dataset' },
  maxIdsPerDay: 1000,
};

describe('dataset catalogs', () => {
  it('entry_exit and residence each have at least 12 fields with labels, sensitivity and transforms', () => {
    for (const name of ['entry_exit', 'residence']) {
      const c = catalogs.get(name)!;
      expect(c.fields.length).toBeGreaterThanOrEqual(12);
    }
    const ee = catalogs.get('entry_exit')!.fields.map((f) => f.name);
    expect(ee).toEqual(expect.arrayContaining(['person_id', 'name_en', 'name_zh', 'nationality', 'birth_date', 'sex', 'passport_no', 'direction', 'crossed_at', 'port', 'flight_no', 'visa_type']));
    const rs = catalogs.get('residence')!.fields.map((f) => f.name);
    expect(rs).toEqual(expect.arrayContaining(['arc_no', 'name_en', 'nationality', 'birth_date', 'permit_type', 'issued_on', 'expires_on', 'address', 'employer', 'status']));
  });
});

describe('application validation (R3.1, R3.2)', () => {
  it('R3.1 a complete application passes', () => {
    expect(checkRevision(base, catalogs)).toEqual([]);
  });
  it('R3.2 an unknown field is rejected, naming it', () => {
    expect(checkRevision({ ...base, fields: [{ name: 'person_id' }, { name: 'religion' }] }, catalogs)).toEqual(["unknown field 'religion' in dataset entry_exit"]);
  });
  it('R3.2 an unknown dataset is rejected', () => {
    expect(checkRevision({ ...base, dataset: 'tax_records' }, catalogs)[0]).toMatch(/unknown dataset 'tax_records'/);
  });
  it('R3.2 a transform the catalog does not allow on that field is rejected', () => {
    expect(checkRevision({ ...base, fields: [{ name: 'nationality', transform: 'mask' }] }, catalogs)[0]).toMatch(/transform 'mask' is not allowed on field 'nationality'/);
  });
  it('R3.2 a field requested twice is rejected', () => {
    expect(checkRevision({ ...base, fields: [{ name: 'port' }, { name: 'port' }] }, catalogs)).toContain("field 'port' requested twice");
  });
  it('R3.1 the use period must start no later than it ends, with real dates', () => {
    expect(checkRevision({ ...base, period: { from: '2026-12-31', to: '2026-01-01' } }, catalogs)[0]).toMatch(/starts .* after it ends/);
    expect(checkRevision({ ...base, period: { from: '2026-02-30', to: '2026-12-31' } }, catalogs)[0]).toMatch(/not a date/);
  });
  it('R3.1 designated IPs must be addresses or CIDRs', () => {
    expect(checkRevision({ ...base, allowIps: ['127.0.0.1/33'] }, catalogs)[0]).toMatch(/not an IP address or CIDR/);
    expect(checkRevision({ ...base, allowIps: ['example.org'] }, catalogs)[0]).toMatch(/not an IP address or CIDR/);
    expect(checkRevision({ ...base, allowIps: ['10.0.0.0/8', '2001:db8::/32'] }, catalogs)).toEqual([]);
  });
  it('R2.1 at least one provision method, each with its endpoint', () => {
    expect(checkRevision({ ...base, methods: [] }, catalogs).length).toBeGreaterThan(0);
    expect(checkRevision({ ...base, account: null }, catalogs)).toContain('sftp-pull needs an SFTP account');
    expect(checkRevision({ ...base, methods: ['sftp-push'] }, catalogs)[0]).toMatch(/sftp-push needs/);
    expect(checkRevision({ ...base, methods: ['email'] }, catalogs)[0]).toMatch(/email needs/);
    const push = { host: 'sftp.agency.gov.tw', port: 22, user: 'nia', dir: '/in', fingerprint: 'SHA256:' + 'A'.repeat(43) };
    expect(checkRevision({ ...base, methods: ['sftp-push'], push }, catalogs)).toEqual([]);
    expect(checkRevision({ ...base, methods: ['sftp-push'], push: { ...push, fingerprint: 'MD5:aa' } }, catalogs)[0]).toMatch(/fingerprint/);
  });
  it('field lists parse with transforms', () => {
    expect(parseFieldList(' person_id:hmac, nationality ,')).toEqual([{ name: 'person_id', transform: 'hmac' }, { name: 'nationality' }]);
  });
});

describe('sponsoring authority (R14.1)', () => {
  const gov = { code: 'A001', government: true };
  const ngo = { code: 'N001', government: false };
  it('R14.1 a non-government agency without a sponsor is refused', () => {
    expect(checkSponsor(ngo, null)).toMatchObject({ ok: false, refusal: { code: 'agency.sponsor.missing' } });
  });
  it('R14.1 the sponsor must itself be a government agency', () => {
    expect(checkSponsor(ngo, { code: 'N002', government: false })).toMatchObject({ ok: false, refusal: { code: 'agency.sponsor.not-government' } });
  });
  it('R14.1 a non-government agency sponsored by a government agency is accepted; a government agency takes no sponsor', () => {
    expect(checkSponsor(ngo, gov).ok).toBe(true);
    expect(checkSponsor(gov, null).ok).toBe(true);
    expect(checkSponsor(gov, { code: 'A002', government: true }).ok).toBe(false);
  });
});

describe('change requests make the next revision (R5.1)', () => {
  const apply = (c: Parameters<typeof applyChange>[1]) => {
    const r = applyChange(base, c);
    if (!r.ok) throw new Error(r.refusal.message);
    return r.value;
  };
  it('R5.1 officer and supervisor changes replace only that item', () => {
    expect(apply({ kind: 'officer', officer: '李小華' })).toEqual({ ...base, officer: '李小華' });
    expect(apply({ kind: 'supervisor', supervisor: '林主任' })).toEqual({ ...base, supervisor: '林主任' });
  });
  it('R5.1 rules, fields, ips and pgp-key changes', () => {
    expect(apply({ kind: 'rules', rulesDocument: 7 }).rulesDocument).toBe(7);
    expect(apply({ kind: 'fields', fields: [{ name: 'port' }] }).fields).toEqual([{ name: 'port' }]);
    expect(apply({ kind: 'ips', allowIps: ['10.1.0.0/24'] }).allowIps).toEqual(['10.1.0.0/24']);
    expect(apply({ kind: 'pgp-key', pgpFingerprint: 'B'.repeat(40) }).pgpFingerprint).toBe('B'.repeat(40));
  });
  it('R5.1 a method change drops endpoints of methods no longer used', () => {
    const withEmail = { ...base, methods: ['sftp-pull', 'email'] as RevisionContent['methods'], email: ['it@agency.gov.tw'] };
    const r = applyChange(withEmail, { kind: 'method', methods: ['sftp-pull'] });
    expect(r.ok && r.value.email).toEqual([]);
  });
  it('R5.1 an extension must end later than the current period', () => {
    expect(apply({ kind: 'extend', to: '2027-12-31' }).period).toEqual({ from: '2026-01-01', to: '2027-12-31' });
    expect(applyChange(base, { kind: 'extend', to: '2026-06-30' })).toMatchObject({ ok: false, refusal: { code: 'change.extend.not-later' } });
  });
  it('R12.1 a stop request records the date the link ends', () => {
    expect(apply({ kind: 'stop', stopOn: '2026-09-30' }).stopOn).toBe('2026-09-30');
    expect(applyChange(base, { kind: 'stop', stopOn: 'soon' }).ok).toBe(false);
  });
  it('R5.1 only active or suspended links take change requests', () => {
    expect(canFileChange('active').ok).toBe(true);
    expect(canFileChange('suspended').ok).toBe(true);
    for (const s of ['pending', 'terminated', 'rejected'] as const) expect(canFileChange(s).ok).toBe(false);
  });
  it('R11.1 termination needs one calendar month of notice', () => {
    expect(checkTerminationNotice('2026-03-15', '2026-04-14')).toMatchObject({ ok: false, refusal: { code: 'terminate.notice-too-short' } });
    expect(checkTerminationNotice('2026-03-15', '2026-04-15').ok).toBe(true);
    expect(checkTerminationNotice('2026-01-31', '2026-02-28').ok).toBe(true);
  });
});

describe('dates and addresses', () => {
  it('Taipei calendar days: 16:00 UTC is already the next day in Taipei', () => {
    expect(taipeiDate(new Date('2026-03-01T15:59:59Z'))).toBe('2026-03-01');
    expect(taipeiDate(new Date('2026-03-01T16:00:00Z'))).toBe('2026-03-02');
  });
  it('months clamp to the end of shorter months; ROC years', () => {
    expect(addMonths('2026-01-31', 1)).toBe('2026-02-28');
    expect(addMonths('2026-08-31', 6)).toBe('2027-02-28');
    expect(rocDate('2026-11-28')).toEqual({ year: 115, month: 11, day: 28 });
  });
  it('IPv4-mapped IPv6 addresses are compared as IPv4', () => {
    expect(normaliseIp('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(ipAllowed('::ffff:127.0.0.1', ['127.0.0.1/32'])).toBe(true);
    expect(ipAllowed('127.0.0.2', ['127.0.0.1/32'])).toBe(false);
    expect(ipAllowed('2001:db8::1', ['2001:db8::/32'])).toBe(true);
    expect(ipAllowed('not-an-ip', ['0.0.0.0/0'])).toBe(false);
  });
  it('CIDR parsing refuses junk; containment works', () => {
    expect(parseCidr('10.0.0.0/8')).toEqual({ address: '10.0.0.0', prefix: 8, family: 4 });
    expect(parseCidr('10.0.0.0/8/1')).toBeNull();
    expect(parseCidr('10.0.0.0/-1')).toBeNull();
    expect(cidrWithin('10.1.2.0/24', ['10.0.0.0/8'])).toBe(true);
    expect(cidrWithin('10.0.0.0/8', ['10.1.2.0/24'])).toBe(false);
  });
});

describe('schemas/link-application.schema.json', () => {
  it('R3.1 the published JSON Schema is the one the code enforces (regenerate with npm run schemas)', () => {
    const { applicationJsonSchema } = require('../../src/domain/schema-export');
    const published = JSON.parse(require('node:fs').readFileSync(require('node:path').join(__dirname, '..', '..', 'schemas', 'link-application.schema.json'), 'utf8'));
    expect(published).toEqual(applicationJsonSchema());
    expect(published.required).toEqual(expect.arrayContaining(['legalBasis', 'purpose', 'fields', 'department', 'methods', 'allowIps', 'period', 'disposal']));
  });
});

describe('push endpoints (form item 3)', () => {
  it('R8.1 a push host given as an address must be on the link\'s allow-list', () => {
    const push = { host: '10.9.9.9', port: 22, user: 'nia', dir: 'in', fingerprint: 'SHA256:' + 'A'.repeat(43) };
    expect(checkRevision({ ...base, methods: ['sftp-push'], push }, catalogs)[0]).toMatch(/push host 10.9.9.9 is not in the link's allowed IPs/);
    expect(checkRevision({ ...base, methods: ['sftp-push'], push, allowIps: ['10.9.9.0/24'] }, catalogs)).toEqual([]);
  });
});
