import type { Writable } from 'node:stream';

/** Answers are written into slabs of this size; a DATA answer (at most 255 KiB) always fits in one. */
const SLAB = 1024 * 1024;
/** Slabs a session may have in flight: the most it holds for a client that does not read. */
const MAX_SLABS = 4;

interface Slab {
  buf: Buffer;
  pos: number;
  flushed: number;
  /** Writes of this slab the channel has not consumed yet. */
  pending: number;
  current: boolean;
  /** One of the session's reusable slabs (not a one-off buffer for an answer that could not wait). */
  pooled: boolean;
}

/**
 * What the sessions of one connection hold, in bytes: answers not yet taken by their channels (and
 * file reads in flight), and requests parsed but not yet served. Bounded together per connection.
 */
export interface Meter {
  out: number;
  parked: number;
}

/**
 * A session's outgoing SFTP answers. They are written one after another into a few reused slabs and
 * handed to the SSH channel in large pieces (once per event-loop turn, or when a slab is full), so
 * the channel cuts them into full SSH packets; the socket is corked meanwhile, so those packets
 * leave in one write(2). A slab is reused once the channel has consumed (copied) everything written
 * from it; while all slabs are in flight, or the channel says it has enough (write() returned false),
 * `reserve` says no and the session serves nothing more: that is the backpressure from a client that
 * does not open its window. `queued` counts every byte answered and not yet taken by the channel.
 */
export class Output {
  private slab: Slab | null = null;
  private readonly free: Buffer[] = [];
  private slabs = 0;
  private scheduled = false;
  private closed = false;
  /** The channel's write() said false: nothing more until it drains. */
  blocked = false;
  queued = 0;
  /** When the channel last took something, or when it was first given something to take after an idle spell. */
  progressAt = 0;

  constructor(
    private readonly channel: Writable,
    private readonly socket: { cork(): void; uncork(): void } | undefined,
    private readonly meter: Meter,
    /** A slab came back or the channel drained: a session waiting for room can go on. */
    private readonly onRoom: () => void,
  ) {
    channel.on('drain', () => {
      if (!this.blocked) return;
      this.blocked = false;
      this.progressAt = Date.now();
      if (!this.closed) this.onRoom();
    });
  }

  /**
   * Room for `size` bytes at `buf[at]`; the caller fills it and calls commit(). Null when every slab
   * is in flight or the channel is full, unless `force` (answers to work already under way, which
   * cannot wait: they get a buffer of their own, and count as queued like the rest).
   */
  reserve(size: number, force = false): { buf: Buffer; at: number } | null {
    if (this.blocked && !force) return null;
    const s = this.slab;
    if (s && s.pos + size <= s.buf.length) return { buf: s.buf, at: s.pos };
    let next: Slab;
    if (size <= SLAB && (this.free.length > 0 || this.slabs < MAX_SLABS)) {
      if (this.free.length === 0) this.slabs++;
      next = { buf: this.free.pop() ?? Buffer.allocUnsafe(SLAB), pos: 0, flushed: 0, pending: 0, current: true, pooled: true };
    } else if (force || size > SLAB) {
      next = { buf: Buffer.allocUnsafe(Math.max(size, 4096)), pos: 0, flushed: 0, pending: 0, current: true, pooled: false };
    } else {
      return null;
    }
    if (s) this.retire(s);
    this.slab = next;
    return { buf: next.buf, at: 0 };
  }

  /** `n` bytes were written at the position reserve() gave. */
  commit(n: number): void {
    this.slab!.pos += n;
    if (this.queued === 0) this.progressAt = Date.now();
    this.queued += n;
    this.meter.out += n;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  /** Copy a finished answer in (answers built elsewhere: statuses, names, reads that went through the thread pool). */
  push(b: Buffer): void {
    if (this.closed) return;
    const r = this.reserve(b.length, true)!;
    b.copy(r.buf, r.at);
    this.commit(b.length);
  }

  flush(): void {
    const s = this.slab;
    if (this.closed || !s || s.pos === s.flushed) return;
    const from = s.flushed;
    const part = s.buf.subarray(from, s.pos);
    s.flushed = s.pos;
    s.pending++;
    this.socket?.cork();
    if (!this.channel.write(part, () => this.written(s, part.length))) this.blocked = true;
    this.socket?.uncork();
  }

  /** The slab stops being the current one; it returns to the pool once the channel has consumed it. */
  private retire(s: Slab): void {
    this.flush();
    s.current = false;
    // Not onRoom() here: we are in the middle of reserving, and the session is serving already.
    if (s.pending === 0 && s.pooled) this.free.push(s.buf);
  }

  /** A write of `s` (`n` bytes) was consumed by the channel. */
  private written(s: Slab, n: number): void {
    s.pending--;
    if (this.closed) return;
    this.queued -= n;
    this.meter.out -= n;
    this.progressAt = Date.now();
    if (!s.current && s.pending === 0 && s.pooled) this.free.push(s.buf);
    this.onRoom();
  }

  /** Give the idle slabs back (the session has no file open): an idle session holds at most its current slab. */
  trim(): void {
    this.slabs -= this.free.length;
    this.free.length = 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.meter.out -= this.queued;
    this.queued = 0;
    this.slab = null;
    this.free.length = 0;
  }
}
