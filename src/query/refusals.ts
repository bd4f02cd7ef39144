import type { Clock } from '../domain';
import type { LogEntry, RecordSink } from '../usagelog';

/** Addresses a link's record names with their counts; beyond these they are only counted. */
const MAX_ADDRESSES_NAMED = 20;
/** Distinct addresses the shared record of unknown clients counts (it holds the number, not the addresses). */
const MAX_DISTINCT_COUNTED = 100_000;

interface Tally {
  entry: LogEntry;
  count: number;
  first: string;
  last: string;
}
interface LinkTally extends Tally {
  addresses: Map<string, number>;
  otherAddresses: number;
}
interface Overflow {
  count: number;
  first: string;
  last: string;
  codes: Record<string, number>;
  addresses: Set<string>;
}

/** Who a refusal is about: a link a registered certificate reached, or only an address. */
export interface RefusedLink {
  agency: string;
  linkId: number;
  revision: number;
}

/**
 * `query.refused` records of refusals that no rate limit bounds (anything refused before the link's
 * rate limit is taken, the rate limit itself, and clients we do not know), aggregated in memory like
 * the SFTP `connection.refused` records: at most one record per link and code per interval, and for
 * unknown clients one per address and code for at most `maxIps` of them, the rest sharing one record.
 * Each record carries the count, so the counts add up to the requests. A flood, however fast or wide,
 * adds a bounded number of records to the five-year usage log, and its answers never wait for a commit.
 * Records are written at the end of each interval and when the server stops.
 */
export class QueryRefusals {
  private links = new Map<string, LinkTally>();
  private unknown = new Map<string, Tally>();
  private overflow: Overflow | null = null;
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly sink: Pick<RecordSink, 'append'>,
    private readonly clock: Clock,
    private readonly settings: { intervalSec: number; maxIps: number },
    private readonly onError: (err: Error) => void,
  ) {
    this.timer = setInterval(() => void this.flush(), settings.intervalSec * 1000);
    this.timer.unref();
  }

  /** A refusal of a registered certificate on `link`. */
  noteLink(link: RefusedLink, code: string, ip: string, actor: string | null, object: string): void {
    const at = this.clock.now().toISOString();
    const key = `${link.linkId}|${code}`;
    let t = this.links.get(key);
    if (!t) {
      t = { entry: { type: 'query.refused', agency: link.agency, linkId: link.linkId, revision: link.revision, actor, ip, channel: 'online-query', object }, count: 0, first: at, last: at, addresses: new Map(), otherAddresses: 0 };
      this.links.set(key, t);
    }
    t.count++;
    t.last = at;
    const n = t.addresses.get(ip);
    if (n !== undefined) t.addresses.set(ip, n + 1);
    else if (t.addresses.size < MAX_ADDRESSES_NAMED) t.addresses.set(ip, 1);
    else t.otherAddresses++;
  }

  /** A refusal of a client no link knows (no certificate, an unregistered one, a connection over the limits). */
  noteUnknown(code: string, ip: string, actor: string | null, object: string | null): void {
    const at = this.clock.now().toISOString();
    const key = `${ip}|${code}`;
    let t = this.unknown.get(key);
    if (!t && this.unknown.size >= this.settings.maxIps) {
      const o = (this.overflow ??= { count: 0, first: at, last: at, codes: {}, addresses: new Set() });
      o.count++;
      o.last = at;
      o.codes[code] = (o.codes[code] ?? 0) + 1;
      if (o.addresses.size < MAX_DISTINCT_COUNTED) o.addresses.add(ip);
      return;
    }
    if (!t) {
      t = { entry: { type: 'query.refused', agency: null, linkId: null, revision: null, actor, ip, channel: 'online-query', object }, count: 0, first: at, last: at };
      this.unknown.set(key, t);
    }
    t.count++;
    t.last = at;
  }

  /** Writes what was counted since the last flush; resolves when the records are committed. */
  flush(): Promise<void> {
    const links = this.links;
    const unknown = this.unknown;
    const overflow = this.overflow;
    if (links.size === 0 && unknown.size === 0 && !overflow) return Promise.resolve();
    this.links = new Map();
    this.unknown = new Map();
    this.overflow = null;
    const now = this.clock.now();
    const intervalSec = this.settings.intervalSec;
    const written: Promise<void>[] = [];
    const write = (entry: LogEntry) => written.push(this.sink.append(entry, now));
    for (const [key, t] of links) {
      const code = key.slice(key.indexOf('|') + 1);
      // One address: the record names it like a single refusal would; several: the record lists them.
      const ip = t.addresses.size === 1 && t.otherAddresses === 0 ? t.entry.ip : null;
      write({ ...t.entry, ip, detail: { code, count: t.count, first: t.first, last: t.last, intervalSec, addresses: Object.fromEntries(t.addresses), ...(t.otherAddresses ? { otherAddresses: t.otherAddresses } : {}) } });
    }
    for (const [key, t] of unknown) {
      const code = key.slice(key.lastIndexOf('|') + 1);
      write({ ...t.entry, detail: { code, count: t.count, first: t.first, last: t.last, intervalSec } });
    }
    if (overflow) {
      const codes = Object.keys(overflow.codes);
      write({ type: 'query.refused', agency: null, linkId: null, revision: null, actor: null, ip: null, channel: 'online-query', object: null, detail: { code: codes.length === 1 ? codes[0] : 'several', codes: overflow.codes, count: overflow.count, first: overflow.first, last: overflow.last, intervalSec, addresses: overflow.addresses.size } });
    }
    return Promise.all(written).then(
      () => undefined,
      (err: Error) => this.onError(err),
    );
  }

  /** Stops the timer and writes what is counted. */
  stop(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.stopped = true;
    clearInterval(this.timer);
    return this.flush();
  }
}
