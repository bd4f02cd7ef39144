import { cidrWithin, formatCidr, parseCidr } from './net';
import { ok, refuse, type Result } from './result';
import { machineRangeProblem } from './revision';

/**
 * R8.1: a vendor's dedicated machines, as CIDRs normalised to their network address. Each must lie
 * inside the link's allow-list: access is possible only from the designated IPs.
 */
export function checkVendorMachines(machines: readonly string[], allowIps: readonly string[]): Result<string[]> {
  if (machines.length === 0) return refuse('vendor.machines', "a vendor needs at least one IP address or CIDR of its dedicated machines", { field: 'machines', invalid: true });
  const out: string[] = [];
  for (const text of machines) {
    const c = parseCidr(text);
    if (!c) return refuse('vendor.machines', `'${text}' is not an IP address or CIDR`);
    const norm = formatCidr(toNetwork(c.address, c.prefix, c.family));
    if (!cidrWithin(norm, allowIps)) {
      return refuse(
        'vendor.outside-allow-list',
        `vendor machine ${norm} is outside the link's allow-list (${allowIps.join(', ')}): a vendor works only from designated IPs (R8.1); file an ips change first`,
      );
    }
    // Inside a wide allow-list recorded before R8.2, a vendor still gets only dedicated machines.
    const wide = machineRangeProblem(text);
    if (wide) return refuse('vendor.machines.too-wide', wide);
    if (!out.includes(norm)) out.push(norm);
  }
  return ok(out);
}

/** The machines of `vendors` that lie outside `allowIps` (an allow-list change must not strand a vendor). */
export function machinesOutside(vendors: readonly { name: string; machines: readonly string[] }[], allowIps: readonly string[]): string[] {
  return vendors.flatMap((v) => v.machines.filter((m) => !cidrWithin(m, allowIps)).map((m) => `${m} (${v.name})`));
}

/**
 * The allow-list with `drop` taken out of it: entries inside a dropped range go, and an entry that
 * contains a dropped range is split into the CIDRs that remain (10.0.0.0/30 without 10.0.0.1/32 →
 * 10.0.0.0/32, 10.0.0.2/31). Entries the drop does not touch are kept as written.
 */
export function allowListWithout(allowIps: readonly string[], drop: readonly string[]): string[] {
  const drops = drop.map(parseCidr).filter((c) => c !== null).map((c) => toNetwork(c.address, c.prefix, c.family));
  let list: { text: string; net: Net | null }[] = allowIps.map((text) => {
    const c = parseCidr(text);
    return { text, net: c ? toNetwork(c.address, c.prefix, c.family) : null };
  });
  for (const d of drops) {
    list = list.flatMap((e) => {
      if (!e.net || e.net.family !== d.family) return [e];
      if (contains(d, e.net)) return [];
      if (!contains(e.net, d)) return [e];
      return split(e.net, d).map((n) => ({ text: formatCidr(n), net: n }));
    });
  }
  return list.map((e) => e.text);
}

interface Net {
  address: string;
  prefix: number;
  family: 4 | 6;
  value: bigint;
}

const bits = (family: 4 | 6) => (family === 4 ? 32 : 128);

function toBigInt(address: string, family: 4 | 6): bigint {
  if (family === 4) return address.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
  let text = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = toBigInt(v4[1], 4);
    text = text.slice(0, -v4[1].length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const hs = head ? head.split(':') : [];
  const ts = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? hs : [...hs, ...Array(8 - hs.length - ts.length).fill('0'), ...ts];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function fromBigInt(value: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => ((value >> BigInt(112 - i * 16)) & 0xffffn).toString(16));
  // Compress the longest run of zero groups, as the canonical text form does.
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len && j - i > 1) best = { at: i, len: j - i };
    i = j;
  }
  if (best.at < 0) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`;
}

function toNetwork(address: string, prefix: number, family: 4 | 6): Net {
  const total = bits(family);
  const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(total - prefix);
  const value = toBigInt(address, family) & mask;
  return { address: fromBigInt(value, family), prefix, family, value };
}

function contains(outer: Net, inner: Net): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  const shift = BigInt(bits(outer.family) - outer.prefix);
  return outer.value >> shift === inner.value >> shift;
}

/** `outer` minus `inner` (which it contains): one CIDR per level between their prefixes. */
function split(outer: Net, inner: Net): Net[] {
  const out: Net[] = [];
  let cur = outer;
  while (cur.prefix < inner.prefix) {
    const prefix = cur.prefix + 1;
    const halfBit = 1n << BigInt(bits(cur.family) - prefix);
    const low = { ...cur, prefix, value: cur.value };
    const high = { ...cur, prefix, value: cur.value | halfBit };
    const [keep, next] = contains(low, inner) ? [high, low] : [low, high];
    out.push({ ...keep, address: fromBigInt(keep.value, keep.family) });
    cur = { ...next, address: fromBigInt(next.value, next.family) };
  }
  return out.sort((a, b) => (a.value < b.value ? -1 : 1));
}
