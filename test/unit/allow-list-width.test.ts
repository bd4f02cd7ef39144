import { allowListProblems, checkVendorMachines, machineRangeProblem } from '../../src/domain';

describe('an allow-list names dedicated machines (R8.2)', () => {
  it('R8.2 entries wider than a /24 (IPv4) or a /56 (IPv6) are refused: 0.0.0.0/0, 10.0.0.0/16, ::/0, 2001:db8::/48', () => {
    for (const wide of ['0.0.0.0/0', '10.0.0.0/16', '10.0.0.0/23', '::/0', '2001:db8::/48', '2001:db8::/55']) {
      expect(machineRangeProblem(wide)).toMatch(/is wider than a \/(24|56): an allow-list names dedicated machines, not networks \(R8\.2\)/);
    }
    expect(allowListProblems(['127.0.0.1/32', '0.0.0.0/0'])).toHaveLength(1);
  });
  it('R8.2 a /24, a /32, a bare address, a /56 and a /128 are dedicated machines', () => {
    expect(allowListProblems(['10.1.2.0/24', '10.1.2.3/32', '10.1.2.4', '2001:db8:0:100::/56', '2001:db8::1/128', '::ffff:10.0.0.1'])).toEqual([]);
  });
  it('R8.2 a vendor machine wider than that is refused even inside a wider allow-list', () => {
    expect(checkVendorMachines(['10.0.0.0/16'], ['0.0.0.0/0'])).toMatchObject({ ok: false, refusal: { code: 'vendor.machines.too-wide' } });
    expect(checkVendorMachines(['2001:db8::/48'], ['::/0'])).toMatchObject({ ok: false, refusal: { code: 'vendor.machines.too-wide' } });
    expect(checkVendorMachines(['10.0.0.0/24', '2001:db8::/56'], ['0.0.0.0/0', '::/0'])).toEqual({ ok: true, value: ['10.0.0.0/24', '2001:db8::/56'] });
  });
});
