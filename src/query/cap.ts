import type { Redis } from 'ioredis';

/**
 * R3.5: the identifiers one link may look up in a Taipei day, counted in Redis so that every query
 * process on every host draws from the one count (the batch query of a later channel draws from it
 * too). Every identifier asked counts, found or not.
 */
export interface DailyCap {
  /**
   * Take `n` identifiers of link `linkId`'s allowance for `day` (YYYY-MM-DD, Taipei) if all of them
   * fit under `max`; otherwise take none. `used` is the day's count after the call.
   */
  take(linkId: number, day: string, n: number, max: number): Promise<{ ok: boolean; used: number }>;
  /** Identifiers of the day taken so far. */
  used(linkId: number, day: string): Promise<number>;
}

/** All or nothing: a request that would pass the cap takes nothing, so a smaller one may still fit. */
const TAKE = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[1])
if used + n > tonumber(ARGV[2]) then return {0, used} end
used = redis.call('INCRBY', KEYS[1], n)
if used == n then redis.call('EXPIRE', KEYS[1], 172800) end
return {1, used}
`;

export class RedisDailyCap implements DailyCap {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(linkId: number, day: string): string {
    return `${this.prefix}:query:ids:${linkId}:${day}`;
  }

  async take(linkId: number, day: string, n: number, max: number): Promise<{ ok: boolean; used: number }> {
    const [ok, used] = (await this.redis.eval(TAKE, 1, this.key(linkId, day), n, max)) as [number, number];
    return { ok: ok === 1, used: Number(used) };
  }

  async used(linkId: number, day: string): Promise<number> {
    return Number((await this.redis.get(this.key(linkId, day))) ?? 0);
  }
}
