/**
 * SFTP version 3 (draft-ietf-secsh-filexfer-02), the part a read-only server needs: framing of
 * requests, reading their fields with bounds checks, and encoding the answers. Everything a client
 * sends is untrusted: any field that runs past its packet is a BadMessage, and the session ends.
 */

export const REQUEST = {
  INIT: 1,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  LSTAT: 7,
  FSTAT: 8,
  SETSTAT: 9,
  FSETSTAT: 10,
  OPENDIR: 11,
  READDIR: 12,
  REMOVE: 13,
  MKDIR: 14,
  RMDIR: 15,
  REALPATH: 16,
  STAT: 17,
  RENAME: 18,
  READLINK: 19,
  SYMLINK: 20,
  EXTENDED: 200,
} as const;

const RESPONSE = { VERSION: 2, STATUS: 101, HANDLE: 102, DATA: 103, NAME: 104, ATTRS: 105 } as const;

export const STATUS = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  OP_UNSUPPORTED: 8,
} as const;

export const OPEN_FLAGS = { READ: 1, WRITE: 2, APPEND: 4, CREAT: 8, TRUNC: 16, EXCL: 32 } as const;

/** OpenSSH's limit for a whole packet; longer ones are refused before they are buffered. */
export const MAX_PACKET = 256 * 1024 + 1024;
export const VERSION = 3;

export class BadMessage extends Error {}

/**
 * Splits the channel's byte stream into packets (type byte + payload), in time linear in the bytes
 * received however they are cut: a packet inside one chunk is handed on as a view of it, and one
 * spread over several is copied once into a buffer of its declared length. (Joining what was pending
 * with each new chunk copied the pending bytes again every time: one maximal packet sent a byte per
 * SSH message held the event loop for seconds.)
 */
export class PacketReader {
  private readonly head = Buffer.alloc(4);
  private headLen = 0;
  private body: Buffer | null = null;
  private filled = 0;

  /** Bytes held for a packet not yet complete. */
  get buffered(): number {
    return this.body ? this.body.length : this.headLen;
  }

  /** Calls `each` with every packet completed by `chunk`. Throws BadMessage for an impossible length. */
  push(chunk: Buffer, each: (p: Buffer) => void): void {
    const n = chunk.length;
    let pos = 0;
    while (pos < n) {
      if (this.body) {
        const take = Math.min(this.body.length - this.filled, n - pos);
        chunk.copy(this.body, this.filled, pos, pos + take);
        this.filled += take;
        pos += take;
        if (this.filled < this.body.length) return;
        const p = this.body;
        this.body = null;
        each(p);
      } else if (this.headLen === 0 && n - pos >= 4) {
        const len = chunk.readUInt32BE(pos);
        if (len < 1 || len > MAX_PACKET) throw new BadMessage(`packet length ${len}`);
        pos += 4;
        if (n - pos >= len) {
          each(chunk.subarray(pos, pos + len));
          pos += len;
        } else {
          this.start(len);
        }
      } else {
        const take = Math.min(4 - this.headLen, n - pos);
        chunk.copy(this.head, this.headLen, pos, pos + take);
        this.headLen += take;
        pos += take;
        if (this.headLen < 4) return;
        this.headLen = 0;
        const len = this.head.readUInt32BE(0);
        if (len < 1 || len > MAX_PACKET) throw new BadMessage(`packet length ${len}`);
        this.start(len);
      }
    }
  }

  private start(len: number): void {
    this.body = Buffer.allocUnsafe(len);
    this.filled = 0;
  }
}

/** Reads the fields of one packet, in order, never past its end. */
export class Fields {
  private pos = 1; // after the type byte
  constructor(private readonly p: Buffer) {}

  private need(n: number): void {
    if (this.pos + n > this.p.length) throw new BadMessage('packet too short');
  }
  u32(): number {
    this.need(4);
    const v = this.p.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  /** Offsets beyond 2^53 are larger than any file here: they read as "past the end". */
  u64(): number {
    this.need(8);
    const v = this.p.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  }
  bytes(): Buffer {
    const n = this.u32();
    this.need(n);
    const v = this.p.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  /**
   * A path or name, as UTF-8 (invalid bytes become U+FFFD, which no published name contains); null
   * when longer than `max` bytes, so a request waiting its turn never holds more than that.
   */
  text(max: number): string | null {
    const n = this.u32();
    this.need(n);
    this.pos += n;
    return n > max ? null : this.p.toString('utf8', this.pos - n, this.pos);
  }
  /** A handle as the hex string it is kept under; null when longer than any handle we give out. */
  handle(max: number): string | null {
    const n = this.u32();
    this.need(n);
    this.pos += n;
    return n > max ? null : this.p.toString('hex', this.pos - n, this.pos);
  }
}

export interface Attrs {
  size: number;
  mode: number;
  mtime: number;
}

const ATTR = { SIZE: 1, UIDGID: 2, PERMISSIONS: 4, ACMODTIME: 8 } as const;
const ATTRS_LEN = 4 + 8 + 4 + 4 + 4 + 4 + 4;

function writeAttrs(b: Buffer, at: number, a: Attrs): number {
  b.writeUInt32BE(ATTR.SIZE | ATTR.UIDGID | ATTR.PERMISSIONS | ATTR.ACMODTIME, at);
  b.writeBigUInt64BE(BigInt(a.size), at + 4);
  b.writeUInt32BE(0, at + 12); // uid: files belong to NIA, not to a user of this host
  b.writeUInt32BE(0, at + 16); // gid
  b.writeUInt32BE(a.mode, at + 20);
  b.writeUInt32BE(a.mtime >>> 0, at + 24); // atime
  b.writeUInt32BE(a.mtime >>> 0, at + 28);
  return at + ATTRS_LEN;
}

function packet(type: number, id: number | null, bodyLen: number): { b: Buffer; at: number } {
  const head = id === null ? 5 : 9;
  const b = Buffer.allocUnsafe(head + bodyLen);
  b.writeUInt32BE(head - 4 + bodyLen, 0);
  b[4] = type;
  if (id !== null) b.writeUInt32BE(id, 5);
  return { b, at: head };
}

export function versionPacket(): Buffer {
  const { b, at } = packet(RESPONSE.VERSION, null, 4);
  b.writeUInt32BE(VERSION, at);
  return b;
}

export function statusPacket(id: number, code: number, message = ''): Buffer {
  const msg = Buffer.from(message, 'utf8');
  const { b, at } = packet(RESPONSE.STATUS, id, 4 + 4 + msg.length + 4);
  b.writeUInt32BE(code, at);
  b.writeUInt32BE(msg.length, at + 4);
  msg.copy(b, at + 8);
  b.writeUInt32BE(0, at + 8 + msg.length); // language tag
  return b;
}

export function handlePacket(id: number, handle: Buffer): Buffer {
  const { b, at } = packet(RESPONSE.HANDLE, id, 4 + handle.length);
  b.writeUInt32BE(handle.length, at);
  handle.copy(b, at + 4);
  return b;
}

/** The header of a DATA answer is this long: read the file straight into a buffer after it. */
export const DATA_HEADER = 13;

/** Completes a DATA answer whose `n` data bytes already sit at DATA_HEADER in `b`. */
export function finishDataPacket(b: Buffer, id: number, n: number): Buffer {
  b.writeUInt32BE(DATA_HEADER - 4 + n, 0);
  b[4] = RESPONSE.DATA;
  b.writeUInt32BE(id, 5);
  b.writeUInt32BE(n, 9);
  return b.length === DATA_HEADER + n ? b : b.subarray(0, DATA_HEADER + n);
}

export function namePacket(id: number, entries: { filename: string; longname: string; attrs: Attrs }[]): Buffer {
  const encoded = entries.map((e) => ({ f: Buffer.from(e.filename, 'utf8'), l: Buffer.from(e.longname, 'utf8'), a: e.attrs }));
  const len = 4 + encoded.reduce((n, e) => n + 4 + e.f.length + 4 + e.l.length + ATTRS_LEN, 0);
  const { b, at } = packet(RESPONSE.NAME, id, len);
  let p = at;
  b.writeUInt32BE(encoded.length, p);
  p += 4;
  for (const e of encoded) {
    b.writeUInt32BE(e.f.length, p);
    e.f.copy(b, p + 4);
    p += 4 + e.f.length;
    b.writeUInt32BE(e.l.length, p);
    e.l.copy(b, p + 4);
    p += 4 + e.l.length;
    p = writeAttrs(b, p, e.a);
  }
  return b;
}

export function attrsPacket(id: number, a: Attrs): Buffer {
  const { b, at } = packet(RESPONSE.ATTRS, id, ATTRS_LEN);
  writeAttrs(b, at, a);
  return b;
}
