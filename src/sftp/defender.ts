import { isIP } from 'node:net';
import type { Redis } from 'ioredis';
import type { Config } from '../config';
import type { ControlDb } from '../db';
import { type Clock, normaliseIp } from '../domain';
import { UserError } from '../errors';
import { appendLog } from '../usagelog';

export type DefenderSettings = Config['sftp']['defender'];

export interface Ban {
  ip: string;
  since: string;
  until: string;
  /** The score that tripped the ban, and how many bans this address had in the last day, this one included. */
  score: number;
  bans: number;
  reason: string;
}

// Atomic in Redis, so SFTP processes on several hosts share one score per address.
// KEYS: score, ban, ban-count; ARGV: points, windowMs, threshold, banMs, growthPct, nowMs, reason.
const FAIL_SCRIPT = `
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, 0, 0} end
local s = redis.call('INCRBY', KEYS[1], ARGV[1])
if s == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if s < tonumber(ARGV[3]) then return {s, 0, 0} end
local n = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], 86400000)
local ms = math.floor(tonumber(ARGV[4]) * (1 + (n - 1) * tonumber(ARGV[5]) / 100))
local now = tonumber(ARGV[6])
redis.call('SET', KEYS[2], cjson.encode({since = now, ['until'] = now + ms, score = s, bans = n, reason = ARGV[7]}), 'PX', ms)
redis.call('DEL', KEYS[1])
return {s, ms, n}
`;

/**
 * The brute-force defender (after SFTPGo's): failures score points per source address within an
 * observation window; reaching the threshold bans the address for a while, longer for repeat
 * offenders. Kept in Redis under the installation's prefix, so every SFTP process and the CLI
 * (`nia-link defender list|unban`) see the same bans.
 */
export class Defender {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly settings: DefenderSettings,
  ) {}

  private key(kind: 'score' | 'ban' | 'bans', ip: string): string {
    return `${this.prefix}:defender:${kind}:${ip}`;
  }

  async isBanned(ip: string): Promise<boolean> {
    if (!this.settings.enabled) return false;
    return (await this.redis.exists(this.key('ban', normaliseIp(ip)))) === 1;
  }

  /** Score a failure; returns the ban when this failure caused one. */
  async fail(ip: string, reason: string, points = 1): Promise<Ban | null> {
    if (!this.settings.enabled) return null;
    const addr = normaliseIp(ip);
    const s = this.settings;
    const now = Date.now();
    const [score, ms, bans] = (await this.redis.eval(
      FAIL_SCRIPT,
      3,
      this.key('score', addr),
      this.key('ban', addr),
      this.key('bans', addr),
      points,
      s.windowSec * 1000,
      s.threshold,
      s.banSec * 1000,
      s.banGrowthPct,
      now,
      reason,
    )) as [number, number, number];
    if (ms <= 0) return null;
    return { ip: addr, since: new Date(now).toISOString(), until: new Date(now + ms).toISOString(), score, bans, reason };
  }

  async list(): Promise<Ban[]> {
    const match = `${this.prefix}:defender:ban:*`;
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', match, 'COUNT', 500);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    if (keys.length === 0) return [];
    const values = await this.redis.mget(...keys);
    const bans: Ban[] = [];
    keys.forEach((k, i) => {
      const v = values[i];
      if (!v) return; // expired between SCAN and MGET
      const b = JSON.parse(v) as { since: number; until: number; score: number; bans: number; reason: string };
      bans.push({ ip: k.slice(match.length - 1), since: new Date(b.since).toISOString(), until: new Date(b.until).toISOString(), score: b.score, bans: b.bans, reason: b.reason });
    });
    return bans.sort((a, b) => a.until.localeCompare(b.until));
  }

  /** Lift a ban (and forget the address's score). False when the address was not banned. */
  async unban(ip: string): Promise<boolean> {
    const addr = normaliseIp(ip);
    if (isIP(addr) === 0) throw new UserError(`'${ip}' is not an IP address`, 'ip.invalid');
    const [removed] = (await this.redis.multi().del(this.key('ban', addr)).del(this.key('score', addr)).exec()) ?? [];
    return removed?.[1] === 1;
  }
}

/** An operator lifts a ban: done in Redis, recorded in the usage log. False when the address was not banned. */
export async function liftBan(defender: Defender, cdb: ControlDb, clock: Clock, ip: string, actor: string): Promise<boolean> {
  const lifted = await defender.unban(ip);
  if (lifted) await cdb.write((tx) => appendLog(tx, { type: 'defender.unbanned', ip: normaliseIp(ip), actor, channel: 'sftp-pull' }, clock.now()));
  return lifted;
}
