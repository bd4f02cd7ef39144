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
  /** One of the session's reusable slabs (not a one-off buffer for an oversized or forced answer). */
  pooled: boolean;
}

/**
 * A session's outgoing SFTP answers. They are written one after another into a few reused slabs and
 * handed to the SSH channel in large pieces (once per event-loop turn, or when a slab is full), so
 * the channel cuts them into full SSH packets; the socket is corked meanwhile, so those packets
 * leave in one write(2). A slab is reused once the channel has consumed (copied) everything written
 * from it; while all slabs are in flight, `reserve` says no and the session stops reading files:
 * that is the backpressure from a client that does not open its window.
 */
export class Output {
  private slab: Slab | null = null;
  private readonly free: Buffer[] = [];
  private slabs = 0;
  private scheduled = false;
  private closed = false;

  constructor(
    private readonly channel: Writable,
    private readonly socket: { cork(): void; uncork(): void } | undefined,
    /** A slab came back: a session waiting for room can go on. */
    private readonly onRoom: () => void,
  ) {}

  /**
   * Room for `size` bytes at `buf[at]`; the caller fills it and calls commit(). Null when every slab
   * is in flight, unless `force` (small answers that must not wait: they get a slab of their own).
   */
  reserve(size: number, force = false): { buf: Buffer; at: number } | null {
    const s = this.slab;
    if (s && s.pos + size <= s.buf.length) return { buf: s.buf, at: s.pos };
    let next: Slab;
    if (size <= SLAB && (this.free.length > 0 || this.slabs < MAX_SLABS)) {
      if (this.free.length === 0) this.slabs++;
      next = { buf: this.free.pop() ?? Buffer.allocUnsafe(SLAB), pos: 0, flushed: 0, pending: 0, current: true, pooled: true };
    } else if (force || size > SLAB) {
      next = { buf: Buffer.allocUnsafe(Math.max(size, 64 * 1024)), pos: 0, flushed: 0, pending: 0, current: true, pooled: false };
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
    const part = s.buf.subarray(s.flushed, s.pos);
    s.flushed = s.pos;
    s.pending++;
    this.socket?.cork();
    this.channel.write(part, () => this.written(s));
    this.socket?.uncork();
  }

  /** The slab stops being the current one; it returns to the pool once the channel has consumed it. */
  private retire(s: Slab): void {
    this.flush();
    s.current = false;
    // Not onRoom() here: we are in the middle of reserving, and the session is serving already.
    if (s.pending === 0 && s.pooled) this.free.push(s.buf);
  }

  /** A write of `s` was consumed by the channel. */
  private written(s: Slab): void {
    s.pending--;
    if (s.current || s.pending > 0 || this.closed) return;
    if (s.pooled) this.free.push(s.buf);
    this.onRoom();
  }

  /** Give the idle slabs back (the session has no file open): an idle session holds at most its current slab. */
  trim(): void {
    this.slabs -= this.free.length;
    this.free.length = 0;
  }

  close(): void {
    this.closed = true;
    this.slab = null;
    this.free.length = 0;
  }
}
