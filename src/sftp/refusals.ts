import type { ControlDb } from '../db';
import type { Clock } from '../domain';
import { appendLog } from '../usagelog';

/** Who was refused, when known (an account that logged in): the record names them. */
export interface Refused {
  agency?: string;
  linkId?: number;
  revision?: number;
  account: string;
}

interface Tally {
  who?: Refused;
  ip: string;
  count: number;
  first: string;
  last: string;
  reasons: Record<string, number>;
}

const MAX_DISTINCT_COUNTED = 100_000;

/**
 * Refusals recorded in aggregate: `connection.refused` at most once per source address and interval
 * (or `upload.refused`, once per account and address), for at most `maxIps` of them; refusals from
 * further ones in the same interval share one record. A flood, however wide, adds a bounded number of
 * records to the five-year usage log.
 */
export class RefusalLog {
  private tallies = new Map<string, Tally>();
  private overflow: Tally | null = null;
  private overflowIps = new Set<string>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly cdb: ControlDb,
    private readonly clock: Clock,
    private readonly settings: { intervalSec: number; maxIps: number },
    private readonly onError: (err: Error) => void,
    private readonly kind: { type: string; channel: string } = { type: 'connection.refused', channel: 'sftp-pull' },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flushSafely(), this.settings.intervalSec * 1000);
    this.timer.unref();
  }

  note(ip: string, reason: string, who?: Refused): void {
    const at = this.clock.now().toISOString();
    const key = who ? `${who.linkId ?? ''}\0${who.account}\0${ip}` : ip;
    let t = this.tallies.get(key);
    if (!t && this.tallies.size >= this.settings.maxIps) {
      if (this.overflowIps.size < MAX_DISTINCT_COUNTED) this.overflowIps.add(ip);
      t = this.overflow ??= { ip: '', count: 0, first: at, last: at, reasons: {} };
    } else if (!t) {
      t = { who, ip, count: 0, first: at, last: at, reasons: {} };
      this.tallies.set(key, t);
    }
    t.count++;
    t.last = at;
    t.reasons[reason] = (t.reasons[reason] ?? 0) + 1;
  }

  /** Write what was counted since the last flush, in one transaction. */
  async flush(): Promise<void> {
    if (this.tallies.size === 0 && !this.overflow) return;
    const tallies = this.tallies;
    const overflow = this.overflow;
    const overflowIps = this.overflowIps.size;
    this.tallies = new Map();
    this.overflow = null;
    this.overflowIps = new Set();
    const now = this.clock.now();
    const intervalSec = this.settings.intervalSec;
    const { type, channel } = this.kind;
    await this.cdb.write(async (tx) => {
      for (const { who, ip, ...t } of tallies.values()) {
        await appendLog(tx, { type, ip, channel, ...(who ? { agency: who.agency ?? null, linkId: who.linkId ?? null, revision: who.revision ?? null, actor: who.account } : {}), detail: { ...t, intervalSec } }, now);
      }
      if (overflow) {
        const { who: _who, ip: _ip, ...t } = overflow;
        await appendLog(tx, { type, ip: null, channel, detail: { ...t, intervalSec, addresses: overflowIps } }, now);
      }
    });
  }

  private async flushSafely(): Promise<void> {
    try {
      await this.flush();
    } catch (err) {
      this.onError(err as Error);
    }
  }

  /** Stops the timer and writes what is counted; resolves once it is written (or could not be). */
  stop(): Promise<void> {
    clearInterval(this.timer);
    return this.flushSafely();
  }
}
