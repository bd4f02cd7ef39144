import { BlockList, isIP } from 'node:net';

/** `::ffff:a.b.c.d` is the IPv4 address a.b.c.d; everything is compared in that form. */
export function normaliseIp(ip: string): string {
  const trimmed = ip.trim();
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(trimmed);
  const candidate = m ? m[1] : trimmed;
  return isIP(candidate) === 6 ? candidate.toLowerCase() : candidate;
}

export interface Cidr {
  readonly address: string;
  readonly prefix: number;
  readonly family: 4 | 6;
}

/** Parse `a.b.c.d/n`, `x::y/n` or a bare address (a /32 or /128). Null when not valid. */
export function parseCidr(text: string): Cidr | null {
  const [addrPart, prefixPart, ...rest] = text.trim().split('/');
  if (rest.length > 0 || addrPart === undefined) return null;
  const address = normaliseIp(addrPart);
  const family = isIP(address);
  if (family !== 4 && family !== 6) return null;
  const max = family === 4 ? 32 : 128;
  if (prefixPart !== undefined && !/^\d{1,3}$/.test(prefixPart)) return null;
  const prefix = prefixPart === undefined ? max : Number(prefixPart);
  if (prefix < 0 || prefix > max) return null;
  return { address, prefix, family };
}

export function formatCidr(c: Cidr): string {
  return `${c.address}/${c.prefix}`;
}

const family = (f: 4 | 6 | number): 'ipv4' | 'ipv6' => (f === 4 ? 'ipv4' : 'ipv6');

function blockList(cidrs: readonly Cidr[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) list.addSubnet(c.address, c.prefix, family(c.family));
  return list;
}

/** Answers of ipAllowed by allow-list text and address: a link's clients ask from the same few addresses. */
const answers = new Map<string, boolean>();

/** Is `ip` inside any of the CIDRs? Unparseable entries match nothing. */
export function ipAllowed(ip: string, cidrs: readonly string[]): boolean {
  const addr = normaliseIp(ip);
  const key = `${addr} ${cidrs.join(' ')}`;
  const known = answers.get(key);
  if (known !== undefined) return known;
  const f = isIP(addr);
  const allowed = f !== 0 && blockList(cidrs.map(parseCidr).filter((c): c is Cidr => c !== null)).check(addr, family(f));
  if (answers.size >= 10_000) answers.clear();
  answers.set(key, allowed);
  return allowed;
}

/** Does `inner` lie entirely inside one of `outer`? (a vendor's machines inside a link's allow-list) */
export function cidrWithin(inner: string, outer: readonly string[]): boolean {
  const c = parseCidr(inner);
  if (!c) return false;
  return outer.some((o) => {
    const oc = parseCidr(o);
    return !!oc && oc.family === c.family && oc.prefix <= c.prefix && blockList([oc]).check(c.address, family(c.family));
  });
}
