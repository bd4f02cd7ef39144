import type { ControlDb } from '../db';
import type { Clock } from '../domain';
import { appendLog } from '../usagelog';

interface Tally {
  count: number;
  first: string;
  last: string;
  reasons: Record<string, number>;
}

const MAX_DISTINCT_COUNTED = 100_000;

/**
 * `connection.refused` records, aggregated: at most one per source address and interval, for at most
 * `maxIps` addresses; refusals from further addresses in the same interval share one record. A flood,
 * however wide, adds a bounded number of records to the five-year usage log.
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
  ) {}

  start(): void {
    this.timer = setInterval(() => this.flushSafely(), this.settings.intervalSec * 1000);
    this.timer.unref();
  }

  note(ip: string, reason: string): void {
    const at = this.clock.now().toISOString();
    let t = this.tallies.get(ip);
    if (!t && this.tallies.size >= this.settings.maxIps) {
      if (this.overflowIps.size < MAX_DISTINCT_COUNTED) this.overflowIps.add(ip);
      t = this.overflow ??= { count: 0, first: at, last: at, reasons: {} };
    } else if (!t) {
      t = { count: 0, first: at, last: at, reasons: {} };
      this.tallies.set(ip, t);
    }
    t.count++;
    t.last = at;
    t.reasons[reason] = (t.reasons[reason] ?? 0) + 1;
  }

  /** Write what was counted since the last flush, in one transaction. */
  flush(): void {
    if (this.tallies.size === 0 && !this.overflow) return;
    const tallies = this.tallies;
    const overflow = this.overflow;
    const overflowIps = this.overflowIps.size;
    this.tallies = new Map();
    this.overflow = null;
    this.overflowIps = new Set();
    const now = this.clock.now();
    const intervalSec = this.settings.intervalSec;
    this.cdb.write((tx) => {
      for (const [ip, t] of tallies) appendLog(tx, { type: 'connection.refused', ip, channel: 'sftp-pull', detail: { ...t, intervalSec } }, now);
      if (overflow) appendLog(tx, { type: 'connection.refused', ip: null, channel: 'sftp-pull', detail: { ...overflow, intervalSec, addresses: overflowIps } }, now);
    });
  }

  private flushSafely(): void {
    try {
      this.flush();
    } catch (err) {
      this.onError(err as Error);
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.flushSafely();
  }
}
