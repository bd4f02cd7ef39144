import { BlockList, isIP } from 'node:net';
import type { Config } from '../config';
import type { ControlDb } from '../db';
import { queries } from '../db/repositories';
import { type Cidr, type Clock, parseCidr, taipeiDate } from '../domain';
import type { Logger } from '../logger';
import type { AccountService } from '../registry/accounts';
import type { Defender } from './defender';

/**
 * The unit one party controls: an IPv4 address, or an IPv6 /64 (a single host is routinely given a
 * whole /64, so counting IPv6 addresses one by one would let it spread a flood over 2^64 of them).
 */
export function addressKey(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  const [head, tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * New connections per address (key of addressKey): a token bucket of `burst`, refilled at `perSec`.
 * The first thing done with an accepted connection, so a flood from one place costs a map look-up
 * per connection. At most `maxTracked` addresses are remembered (the oldest are forgotten first), so
 * a flood from many addresses cannot grow it without bound.
 */
export class AcceptRate {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly perSec: number,
    private readonly burst: number,
    private readonly maxTracked = 65_536,
  ) {}

  take(key: string, nowMs: number): boolean {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxTracked) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.burst, at: nowMs };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((nowMs - b.at) / 1000) * this.perSec);
      b.at = nowMs;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Forget addresses whose bucket is full again: they are as good as new. */
  sweep(nowMs: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + ((nowMs - b.at) / 1000) * this.perSec >= this.burst) this.buckets.delete(k);
  }
}

/**
 * The addresses some account may currently pull from, kept in memory: the gate asks it for every
 * connection, so what a refusal costs does not depend on how many links there are. `key` names the
 * state it was built from (registry version and day); a different key, or invalidate(), makes the
 * next question rebuild it.
 */
export class AllowSet {
  private list = new BlockList();
  private builtFor: string | null = null;
  /** After a failed rebuild: the previous list stands until then, so a broken database is not asked once per connection. */
  private retryAt = 0;
  private readonly answers = new Map<string, boolean>();
  /**
   * Counts invalidations. A rebuild read before the latest one is stale: it may answer the
   * connections that were waiting for it, but it does not stand for the key, and a connection that
   * asks after the invalidation starts a rebuild of its own.
   */
  private generation = 0;
  /** The generation the list in use was read in. */
  private installed = 0;
  /** The rebuild under way, which connections asking meanwhile wait for rather than start another. */
  private rebuilding: { key: string; generation: number; done: Promise<void> } | null = null;

  constructor(
    private readonly build: () => Promise<string[]>,
    private readonly onError: (err: Error) => void,
  ) {}

  invalidate(): void {
    this.builtFor = null;
    this.generation++;
  }

  async allows(ip: string, key: string): Promise<boolean> {
    if (key !== this.builtFor || (this.retryAt !== 0 && Date.now() >= this.retryAt)) await this.rebuild(key);
    let yes = this.answers.get(ip);
    if (yes === undefined) {
      const f = isIP(ip);
      yes = f !== 0 && this.list.check(ip, f === 4 ? 'ipv4' : 'ipv6');
      if (this.answers.size >= 10_000) this.answers.clear();
      this.answers.set(ip, yes);
    }
    return yes;
  }

  private rebuild(key: string): Promise<void> {
    const generation = this.generation;
    if (this.rebuilding?.key === key && this.rebuilding.generation === generation) return this.rebuilding.done;
    const done = this.read(key, generation).finally(() => {
      if (this.rebuilding?.done === done) this.rebuilding = null;
    });
    this.rebuilding = { key, generation, done };
    return done;
  }

  private async read(key: string, generation: number): Promise<void> {
    let cidrs: string[];
    try {
      cidrs = await this.build();
    } catch (err) {
      if (generation === this.generation) this.builtFor = key;
      this.retryAt = Date.now() + 1000;
      return this.onError(err as Error);
    }
    // A rebuild started later has already put in a newer list: this older one does not replace it.
    if (generation < this.installed) return;
    this.retryAt = 0;
    const list = new BlockList();
    const seen = new Set<string>();
    for (const text of cidrs) {
      const c: Cidr | null = parseCidr(text);
      if (!c) continue;
      const k = `${c.address}/${c.prefix}`;
      if (seen.has(k)) continue;
      seen.add(k);
      list.addSubnet(c.address, c.prefix, c.family === 4 ? 'ipv4' : 'ipv6');
    }
    this.list = list;
    this.installed = generation;
    this.answers.clear();
    this.builtFor = generation === this.generation ? key : null;
  }
}

export interface GateDeps {
  cdb: ControlDb;
  accounts: AccountService;
  clock: Clock;
  defender: Defender;
  settings: Pick<Config['sftp'], 'acceptRatePerIp' | 'acceptBurstPerIp'>;
  log: Logger;
}

/**
 * What is asked of every connection before any SSH byte is sent, cheapest first: the address's rate,
 * then whether any account may pull from there now (in memory), then (for what passed) whether it is
 * banned (Redis). The process that accepts connections runs it: the SFTP server itself, or the
 * primary of several SFTP processes, which hands on only what passed.
 */
export class Gate {
  private readonly rate: AcceptRate;
  private readonly allowed: AllowSet;
  private keyThisTurn: Promise<string> | undefined;

  constructor(private readonly d: GateDeps) {
    this.rate = new AcceptRate(d.settings.acceptRatePerIp, d.settings.acceptBurstPerIp);
    this.allowed = new AllowSet(
      async () => d.accounts.reachableCidrs(d.clock.now()),
      (err) => d.log.error({ err: err.message }, 'sftp: allow-list not rebuilt; the previous one stands'),
    );
  }

  /** The state the allow-set depends on (a link or agency changed; the day, for use periods), read once per event-loop turn. */
  private key(): Promise<string> {
    if (this.keyThisTurn === undefined) {
      const day = taipeiDate(this.d.clock.now());
      this.keyThisTurn = queries.registryVersion(this.d.cdb.db).then((version) => `${version}|${day}`);
      setImmediate(() => (this.keyThisTurn = undefined));
    }
    return this.keyThisTurn;
  }

  /** The reason to refuse a connection from `ip` (normalised), or null. Rejects when the database cannot be read. */
  async check(ip: string): Promise<string | null> {
    if (!this.rate.take(addressKey(ip), Date.now())) return 'rate.address';
    if (!(await this.allowed.allows(ip, await this.key()))) return 'ip.not-allowed';
    return null;
  }

  async banned(ip: string): Promise<boolean> {
    try {
      return await Promise.race([this.d.defender.isBanned(ip), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 1 s')), 1000).unref())]);
    } catch (err) {
      // The allow-list and the login checks still hold; the defender is a second line.
      this.d.log.warn({ err: (err as Error).message }, 'sftp: ban check failed (redis); connection allowed');
      return false;
    }
  }

  /** A link changed (announced on Redis), or accounts may have (they move no registry version): rebuild on the next connection. */
  invalidate(): void {
    this.allowed.invalidate();
  }

  /** Now and then: forget addresses whose rate is whole again, and read the allow-lists afresh. */
  tick(): void {
    this.rate.sweep(Date.now());
    this.allowed.invalidate();
  }
}
