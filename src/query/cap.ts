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

/**
 * The takes of one link and day gathered in one event-loop turn, in the order they were asked: each
 * is all or nothing (a request that would pass the cap takes nothing, so a smaller one may still fit).
 * Returns, per take, 1 or 0 and the day's count after it.
 */
const TAKE = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local max = tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV do
  local n = tonumber(ARGV[i])
  if used + n <= max then used = used + n; out[#out + 1] = 1 else out[#out + 1] = 0 end
  out[#out + 1] = used
end
redis.call('SET', KEYS[1], used, 'KEEPTTL')
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], 172800) end
return out
`;

const TAKE_COMMAND = 'niaLinkTakeIds';

interface Waiting {
  n: number;
  max: number;
  resolve: (r: { ok: boolean; used: number }) => void;
  reject: (e: Error) => void;
}

/**
 * The count lives in Redis; the takes of one event-loop turn go there as one script per link and
 * day (a look-up turn holds a few dozen requests: one round trip instead of one each).
 */
export class RedisDailyCap implements DailyCap {
  private waiting = new Map<string, Waiting[]>();
  private scheduled = false;

  private readonly script: (key: string, ...args: number[]) => Promise<number[]>;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    // A defined command is sent as EVALSHA (the script once, then its hash), not the whole script each time.
    if (!(TAKE_COMMAND in redis)) redis.defineCommand(TAKE_COMMAND, { numberOfKeys: 1, lua: TAKE });
    const command = (redis as unknown as Record<string, (key: string, ...args: number[]) => Promise<number[]>>)[TAKE_COMMAND];
    this.script = (key, ...args) => command.call(redis, key, ...args);
  }

  private key(linkId: number, day: string): string {
    return `${this.prefix}:query:ids:${linkId}:${day}`;
  }

  take(linkId: number, day: string, n: number, max: number): Promise<{ ok: boolean; used: number }> {
    return new Promise((resolve, reject) => {
      const key = this.key(linkId, day);
      const list = this.waiting.get(key);
      if (list) list.push({ n, max, resolve, reject });
      else this.waiting.set(key, [{ n, max, resolve, reject }]);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batches = this.waiting;
    this.waiting = new Map();
    for (const [key, list] of batches) {
      // One revision's cap for the turn: a change of it applies from the next turn.
      const max = Math.min(...list.map((w) => w.max));
      this.script(key, max, ...list.map((w) => w.n)).then(
        (out) => list.forEach((w, i) => w.resolve({ ok: out[2 * i] === 1, used: Number(out[2 * i + 1]) })),
        (err: Error) => list.forEach((w) => w.reject(err)),
      );
    }
  }

  async used(linkId: number, day: string): Promise<number> {
    return Number((await this.redis.get(this.key(linkId, day))) ?? 0);
  }
}
