import { randomBytes } from 'node:crypto';
import { close as closeFd, fstat, read as readFd, readSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import {
  type Attrs,
  attrsPacket,
  BadMessage,
  DATA_HEADER,
  Fields,
  finishDataPacket,
  handlePacket,
  namePacket,
  OPEN_FLAGS,
  PacketReader,
  REQUEST,
  STATUS,
  statusPacket,
  versionPacket,
} from './protocol';
import { type Meter, Output } from './output';
import type { Upload, UploadError } from './inbox';
import { type FileNode, INBOX_DIR, type Node, normalise, type OutboxTree } from './tree';

/** OpenSSH's sftp-server answers reads of up to 256 KiB less overhead; clients ask for 32–255 KiB. */
const MAX_READ = 255 * 1024;
/** Disk reads in flight per session. */
const MAX_INFLIGHT_READS = 64;
/** A read(2) slower than this waited for the disk: that handle reads through the thread pool from then on. */
const SLOW_READ_NS = 2_000_000n;
/** Longer paths name nothing in the tree (tree.ts refuses them too); a waiting request never holds more. */
const MAX_PATH = 4096;
/** Our handles are 8 bytes; a longer one is invalid, and is not kept while its request waits. */
const MAX_HANDLE = 32;
/** What a waiting request costs besides its strings (the object, its place in the queue). */
const REQUEST_COST = 96;
/** An answer other than DATA is served only with this much room left (names of a listing may be more; one overshoot is fine). */
const SMALL_ANSWER = 4096;
/** Ranges of one handle kept apart; a client reading more scattered pieces than this downloaded "partially". */
const MAX_RANGES = 4096;

const DIR_MODE = 0o040555;
const FILE_MODE = 0o100444;
/** /inbox: others may write into it, not read or list what is not theirs (the listing is of the link's own uploads). */
const INBOX_MODE = 0o040333;
/** A pending upload: write-only, and written already. */
const UPLOAD_MODE = 0o100200;

/** Extensions that would write: refused as writes are. Others are not offered, so OP_UNSUPPORTED. */
const WRITING_EXTENSIONS = new Set(['posix-rename@openssh.com', 'hardlink@openssh.com', 'lsetstat@openssh.com', 'fsync@openssh.com', 'copy-data', 'copy-file']);

export interface DownloadRecord {
  file: FileNode;
  bytes: number;
  /** The range read, when it is one contiguous range; otherwise the first of them. */
  from: number;
  to: number;
  /** complete: the whole file; resumed: from an offset to the end (reget); partial: anything less. */
  result: 'complete' | 'resumed' | 'partial';
  /** Handles of the file whose reads this one record sums up (only when more than one). */
  opens?: number;
}

/** What all sessions of one connection share: one byte budget, and who is waiting for it. */
export interface ConnectionShare {
  /** Bytes its sessions may hold together: requests waiting, answers not yet taken, and what the socket has not sent. */
  limit: number;
  meter: Meter;
  /** The connection's TCP socket: the SSH packets of one flush leave in one write(2); what it holds counts too. */
  socket?: { cork(): void; uncork(): void; readonly writableLength: number };
  /** Sessions that stopped reading or serving for want of room: woken when a sibling frees some. */
  needRoom: Set<SftpSession>;
  /** File and directory handles: of this connection and of its account, together. */
  handles: { take(): boolean; give(): void };
}

export interface SessionHooks {
  username: string;
  /** Bytes this session may hold: requests waiting their turn plus answers the channel has not taken. */
  limit: number;
  share: ConnectionShare;
  /** Reads of one file in one session within this long after its record are summed up in one more record. */
  downloadLogIntervalMs: number;
  /** Any request: the idle timer starts again. */
  activity(): void;
  /** A file handle was closed (by the client, or because the session ended) after reading from it. */
  downloaded(r: DownloadRecord): void;
  /**
   * R6.1: a file is about to be served (OPEN for reading): its `file.download-started` record is
   * committed before the handle is given. False when it could not be: the OPEN is refused.
   */
  downloadStarting(file: FileNode): Promise<boolean>;
  /** A read-only descriptor on a file of the tree (the outbox port's open), read with positioned read(2) into the output slabs. */
  open(file: FileNode): Promise<number>;
  /** Uploads to /inbox (only for accounts whose link takes them). */
  inbox?: { begin(name: string): Promise<Upload | UploadError> };
  /** The session broke (the client broke the protocol); the connection should end. */
  abuse(reason: string): void;
}

interface FileHandle {
  kind: 'file';
  node: FileNode;
  fd: number;
  bytes: number;
  /** Disjoint, sorted ranges read so far (reads arrive in order; out-of-order ones merge). */
  ranges: [number, number][];
  inflight: number;
  /** Reads are synchronous while they come from the page cache (see read()). */
  sync: boolean;
  /** Set by CLOSE: reads still waiting for this handle fail, and the file closes after the last one in flight. */
  closed: boolean;
  /** Its delivery expired while it was open: no more is read from it. */
  expired: boolean;
  closing?: () => void;
}
interface DirHandle {
  kind: 'dir';
  entries: Node[] | null;
}
interface UploadHandle {
  kind: 'upload';
  upload: Upload;
}
type Handle = FileHandle | DirHandle | UploadHandle;

/** Record that [from, to) was read: in order is the common case and costs nothing; anything else is merged in. */
function addRange(ranges: [number, number][], from: number, to: number): void {
  const last = ranges[ranges.length - 1];
  if (last && from >= last[0] && from <= last[1]) {
    if (to > last[1]) last[1] = to;
    return;
  }
  if (!last || from > last[1]) {
    if (ranges.length < MAX_RANGES) ranges.push([from, to]);
    return;
  }
  ranges.push([from, to]);
  ranges.sort((a, b) => a[0] - b[0]);
  let w = 0;
  for (let r = 1; r < ranges.length; r++) {
    if (ranges[r][0] <= ranges[w][1]) ranges[w][1] = Math.max(ranges[w][1], ranges[r][1]);
    else ranges[++w] = ranges[r];
  }
  ranges.length = Math.min(w + 1, MAX_RANGES);
}

function resultOf(ranges: [number, number][], size: number): DownloadRecord['result'] {
  const [from, to] = ranges[0];
  return ranges.length === 1 && to >= size ? (from === 0 ? 'complete' : 'resumed') : 'partial';
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** The date column of `ls -l`: time for the last six months, the year before that. */
function lsDate(epochSec: number, nowSec: number): string {
  const d = new Date(epochSec * 1000);
  const day = `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')}`;
  if (Math.abs(nowSec - epochSec) < 182 * 86400) return `${day} ${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  return `${day}  ${d.getFullYear()}`;
}

function attrsOf(n: Node): Attrs {
  if (n.kind === 'dir') return { mode: n.name === 'inbox' ? INBOX_MODE : DIR_MODE, size: 0, mtime: n.mtime };
  return { mode: n.kind === 'upload' ? UPLOAD_MODE : FILE_MODE, size: n.size, mtime: n.mtime };
}

function longname(n: Node, owner: string): string {
  const perms = n.kind === 'dir' ? (n.name === 'inbox' ? 'd-wx-wx-wx' : 'dr-xr-xr-x') : n.kind === 'upload' ? '--w-------' : '-r--r--r--';
  const size = n.kind === 'dir' ? 0 : n.size;
  return `${perms}    1 ${'nia'.padEnd(8)} ${owner.slice(0, 8).padEnd(8)} ${String(size).padStart(8)} ${lsDate(n.mtime, Date.now() / 1000)} ${n.name}`;
}

/**
 * A request waiting its turn, parsed when it arrived: only the fields it needs, as strings and
 * numbers, so it holds no part of the packet it came in (a request body of 256 KiB that is not
 * needed, as a WRITE's data, is not kept). One shape for every type. `cost` is what it is counted as.
 */
interface Request {
  type: number;
  id: number;
  /** A path, the name of an extension, or null. */
  path: string | null;
  /** A handle (hex), or null. */
  handle: string | null;
  offset: number;
  /** READ: the length asked for; OPEN: the flags. */
  n: number;
  /** WRITE: its bytes (a copy: the packet they came in is not kept). */
  data: Buffer | null;
  cost: number;
}

/** A downloaded file's reads since its last record (see SessionHooks.downloadLogIntervalMs). */
interface Tally {
  /** When the last record of this file was written. */
  at: number;
  pending: { file: FileNode; bytes: number; ranges: [number, number][]; opens: number } | null;
}

/**
 * One SFTP session over an account's virtual tree, like OpenSSH's internal-sftp in a chroot: every
 * path is normalised and looked up among the names the tree publishes, so there is no real path to
 * escape from. Reading is the only thing allowed; everything else gets PERMISSION_DENIED or
 * OP_UNSUPPORTED.
 *
 * The protocol is spoken here over the raw subsystem channel (not ssh2's SFTP class), so that answers
 * can be gathered into full SSH packets (see Output) and backpressure holds end to end. Memory is
 * bounded by bytes, not by counts: requests waiting their turn and answers the channel has not taken
 * share one budget (`hooks.limit`); once it is spent the channel is no longer read, so SSH flow
 * control holds the client back, and no request of any type is served while its answer would have no
 * room. The connection's sessions share a second budget (`share.limit`). A session whose client
 * takes nothing for too long is closed by the server (stalledFor()).
 */
export class SftpSession {
  private readonly reader = new PacketReader();
  private readonly handles = new Map<string, Handle>();
  /** Requests waiting, from `head` on (a queue without shift()'s copying). */
  private waiting: (Request | undefined)[] = [];
  private head = 0;
  /** Bytes of the waiting requests and of the packet being received. */
  private parked = 0;
  private readerHeld = 0;
  /** Bytes of file reads in flight through the thread pool (their buffers are answers to be). */
  private reading = 0;
  private inflight = 0;
  private initialised = false;
  private closed = false;
  /** A request whose answer needs the database is being served: the next waits for it, so answers keep their order. */
  private serving = false;
  private paused = false;
  private channelGone = false;
  private readonly output: Output;
  private readonly share: ConnectionShare;
  private readonly downloads = new Map<string, Tally>();
  /** When each file's `file.download-started` was last written in this session (see opened()). */
  private readonly started = new Map<string, number>();

  constructor(
    private readonly channel: Duplex,
    private readonly tree: OutboxTree,
    private readonly hooks: SessionHooks,
  ) {
    this.share = hooks.share;
    this.output = new Output(channel, hooks.share.socket, hooks.share.meter, () => this.pump());
    channel.on('data', (chunk: Buffer) => this.receive(chunk));
    // DESIGN pitfall: end our side when the client ends its side, or OpenSSH's client hangs on quit.
    channel.on('end', () => channel.end());
    channel.on('close', () => {
      this.channelGone = true;
      this.closeAll();
    });
    channel.on('error', () => this.closeAll());
  }

  // ---- input ----

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    try {
      this.reader.push(chunk, (p) => this.dispatch(p));
    } catch (err) {
      return this.fail(err);
    }
    const held = this.reader.buffered;
    this.share.meter.parked += held - this.readerHeld;
    this.readerHeld = held;
    this.pump();
  }

  private dispatch(p: Buffer): void {
    if (this.closed) return;
    const type = p[0];
    const f = new Fields(p);
    if (!this.initialised) {
      if (type !== REQUEST.INIT) throw new BadMessage(`expected INIT, got ${type}`);
      f.u32(); // the client's version; we answer 3, which every client speaks
      this.initialised = true;
      return this.send(versionPacket());
    }
    if (type === REQUEST.INIT) throw new BadMessage('second INIT');
    const r: Request = { type, id: f.u32(), path: null, handle: null, offset: 0, n: 0, data: null, cost: REQUEST_COST };
    switch (type) {
      case REQUEST.READ:
        r.handle = f.handle(MAX_HANDLE) ?? '';
        r.offset = f.u64();
        r.n = f.u32();
        break;
      case REQUEST.OPEN:
        r.path = f.text(MAX_PATH) ?? '\0';
        r.n = f.u32();
        break;
      case REQUEST.WRITE:
        // The bytes count against the session's budget while they wait, like a READ's answer does.
        r.handle = f.handle(MAX_HANDLE) ?? '';
        r.offset = f.u64();
        r.data = Buffer.from(f.bytes());
        r.cost += r.data.length;
        break;
      case REQUEST.SETSTAT:
        r.path = f.text(MAX_PATH) ?? '\0';
        break;
      case REQUEST.FSETSTAT:
        r.handle = f.handle(MAX_HANDLE) ?? '';
        break;
      case REQUEST.REALPATH:
      case REQUEST.STAT:
      case REQUEST.LSTAT:
      case REQUEST.OPENDIR:
      case REQUEST.READLINK:
        r.path = f.text(MAX_PATH) ?? '\0';
        break;
      case REQUEST.FSTAT:
      case REQUEST.CLOSE:
      case REQUEST.READDIR:
        r.handle = f.handle(MAX_HANDLE) ?? '';
        break;
      case REQUEST.EXTENDED:
        r.path = f.text(256) ?? '';
        break;
      // Everything else is answered by its type alone.
    }
    if (r.path !== null) r.cost += 2 * r.path.length;
    if (r.handle !== null) r.cost += r.handle.length;
    this.hooks.activity();
    // Every request waits its turn in order; only READ has to, but the order of answers then stays simple.
    this.waiting.push(r);
    this.parked += r.cost;
    this.share.meter.parked += r.cost;
  }

  /** A malformed packet (or a bug) ends this session, never the process. */
  private fail(err: unknown): void {
    this.hooks.abuse(err instanceof BadMessage ? `malformed SFTP packet: ${err.message}` : `internal error: ${(err as Error).message}`);
    this.shut();
  }

  /** The client sent more than the channel's window allowed (see guardWindow). */
  overrun(): void {
    this.hooks.abuse('channel data beyond its window');
    this.shut();
  }

  /** Close the session from our side (its client broke a rule, or left its window shut too long). */
  shut(): void {
    this.closeAll();
    this.channel.destroy();
  }

  /** The channel is gone (the client confirmed the close, or the connection ended). */
  get channelClosed(): boolean {
    return this.channelGone;
  }

  /** Is there room for one more answer, in this session's budget and in the connection's? */
  private roomToAnswer(size: number): boolean {
    if (this.output.blocked) return false;
    const out = this.output.queued + this.reading;
    if (out > 0 && out + size > this.hooks.limit) return false;
    const shared = this.share.meter.out + (this.share.socket?.writableLength ?? 0);
    return shared === 0 || shared + size <= this.share.limit;
  }

  /** Serve what waits, as far as the in-flight limit and the room for answers allow. */
  private pump(): void {
    if (this.closed) return;
    const q = this.waiting;
    let starved = false;
    while (this.head < q.length && this.inflight < MAX_INFLIGHT_READS && !this.serving) {
      const r = q[this.head]!;
      if (!this.roomToAnswer(r.type === REQUEST.READ ? DATA_HEADER + Math.min(r.n, MAX_READ) : SMALL_ANSWER)) {
        starved = true;
        break;
      }
      let served: boolean | void | Promise<void>;
      try {
        // False: no slab for the answer yet; it is served when the channel has taken what is in flight.
        served = this.serve(r);
        if (served === false) {
          starved = true;
          break;
        }
      } catch (err) {
        return this.fail(err);
      }
      if (served instanceof Promise) {
        // Answered once the database has been asked; what waits behind it is served after it.
        this.serving = true;
        served.then(
          () => {
            this.serving = false;
            this.pump();
          },
          (err: unknown) => {
            this.serving = false;
            if (!this.closed) this.fail(err);
          },
        );
      }
      if (this.closed) return;
      q[this.head++] = undefined;
      this.parked -= r.cost;
      this.share.meter.parked -= r.cost;
    }
    if (this.head === q.length) {
      q.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= q.length) {
      this.waiting = q.slice(this.head);
      this.head = 0;
    }
    this.flowControl(starved);
  }

  /** Read the channel only while this session and its connection have room; wake siblings that waited for it. */
  private flowControl(starved: boolean): void {
    const mine = this.parked + this.readerHeld + this.output.queued + this.reading;
    const m = this.share.meter;
    const shared = m.out + m.parked + (this.share.socket?.writableLength ?? 0);
    if (!this.paused) {
      if (mine >= this.hooks.limit || shared >= this.share.limit) {
        this.paused = true;
        this.channel.pause();
      }
    } else if (mine < this.hooks.limit / 2 && shared < this.share.limit / 2) {
      this.paused = false;
      this.channel.resume();
    }
    const w = this.share.needRoom;
    if (this.paused || starved) w.add(this);
    else {
      w.delete(this);
      if (w.size > 0) for (const s of w) s.wake();
    }
  }

  /** Try again to serve and to read (room may have been freed by another session of the connection, or its socket). */
  wake(): void {
    if (!this.closed) this.pump();
  }

  /**
   * How long the client has left answers untaken (ms; 0 when it takes them, or there are none): the
   * server closes a session whose client keeps its window shut too long.
   */
  stalledFor(nowMs: number): number {
    return this.closed || this.output.queued === 0 ? 0 : nowMs - this.output.progressAt;
  }

  /** False when the request could not be served yet (no room for its answer); a promise when its answer needs the database. */
  private serve(r: Request): boolean | void | Promise<void> {
    const { id } = r;
    switch (r.type) {
      case REQUEST.READ:
        return this.read(id, r.handle!, r.offset, r.n);
      case REQUEST.REALPATH:
        return this.realpath(id, r.path!);
      case REQUEST.STAT:
      case REQUEST.LSTAT:
        return this.stat(id, r.path!);
      case REQUEST.FSTAT:
        return this.fstat(id, r.handle!);
      case REQUEST.OPEN:
        return this.open(id, r.path!, r.n);
      case REQUEST.CLOSE:
        return this.close(id, r.handle!);
      case REQUEST.OPENDIR:
        return this.opendir(id, r.path!);
      case REQUEST.READDIR:
        return this.readdir(id, r.handle!);
      case REQUEST.READLINK:
        return this.readlink(id, r.path!);
      case REQUEST.WRITE:
        return this.write(id, r.handle!, r.offset, r.data!);
      case REQUEST.SETSTAT:
        return this.setstat(id, r.path!);
      case REQUEST.FSETSTAT:
        return this.fsetstat(id, r.handle!);
      case REQUEST.REMOVE:
      case REQUEST.MKDIR:
      case REQUEST.RMDIR:
      case REQUEST.RENAME:
      case REQUEST.SYMLINK:
        return this.status(id, STATUS.PERMISSION_DENIED, 'read-only');
      case REQUEST.EXTENDED:
        return WRITING_EXTENSIONS.has(r.path!) ? this.status(id, STATUS.PERMISSION_DENIED, 'read-only') : this.status(id, STATUS.OP_UNSUPPORTED, 'not supported');
      default:
        return this.status(id, STATUS.OP_UNSUPPORTED, 'not supported');
    }
  }

  // ---- output ----

  private send(b: Buffer): void {
    if (!this.closed) this.output.push(b);
  }

  private status(id: number, code: number, message?: string): void {
    this.send(statusPacket(id, code, message));
  }

  // ---- requests ----

  private newHandle(h: Handle): Buffer | null {
    // A session that ended while a request waited for the database gives no handle: closeAll() would never give it back.
    if (this.closed || !this.hooks.share.handles.take()) return null;
    let id: Buffer;
    do id = randomBytes(8);
    while (this.handles.has(id.toString('hex')));
    this.handles.set(id.toString('hex'), h);
    return id;
  }

  private dropHandle(key: string): void {
    if (this.handles.delete(key)) this.hooks.share.handles.give();
  }

  private async resolve(p: string): Promise<{ path: string; node: Node | undefined }> {
    const path = normalise(p);
    return { path: path ?? '', node: path === null ? undefined : await this.tree.lookup(path) };
  }

  private async realpath(id: number, p: string): Promise<void> {
    const { path, node } = await this.resolve(p);
    if (!node) return this.status(id, STATUS.NO_SUCH_FILE, 'no such file');
    this.send(namePacket(id, [{ filename: path, longname: path, attrs: attrsOf(node) }]));
  }

  private async stat(id: number, p: string): Promise<void> {
    const { node } = await this.resolve(p);
    if (!node) return this.status(id, STATUS.NO_SUCH_FILE, 'no such file');
    this.send(attrsPacket(id, attrsOf(node)));
  }

  private async readlink(id: number, p: string): Promise<void> {
    const { node } = await this.resolve(p);
    // There are no links in the tree.
    this.status(id, node ? STATUS.FAILURE : STATUS.NO_SUCH_FILE, node ? 'not a symbolic link' : 'no such file');
  }

  private async open(id: number, p: string, flags: number): Promise<void> {
    const { path, node } = await this.resolve(p);
    if (await this.tree.inInbox(path)) return this.openUpload(id, path, flags, node);
    if ((flags & OPEN_FLAGS.READ) === 0 || (flags & ~OPEN_FLAGS.READ) !== 0) return this.status(id, STATUS.PERMISSION_DENIED, 'read-only');
    if (!node) return this.status(id, STATUS.NO_SUCH_FILE, 'no such file');
    if (node.kind === 'dir') return this.status(id, STATUS.FAILURE, 'is a directory');
    if (node.kind !== 'file') return this.status(id, STATUS.PERMISSION_DENIED, 'write-only');
    // Taken before the file is opened, so descriptors never outnumber handles.
    if (!this.hooks.share.handles.take()) return this.status(id, STATUS.FAILURE, 'too many open files');
    this.inflight++;
    const opened = async (err: Error | null, fd: number) => {
      // The record is committed while the OPEN still counts as in flight and holds its handle; a hook that fails did not commit it.
      const logged = !err && !this.closed && (await this.opened(node).catch(() => false));
      this.inflight--;
      this.hooks.share.handles.give();
      if (err) this.status(id, STATUS.NO_SUCH_FILE, 'no such file');
      else if (this.closed) closeFd(fd, () => undefined);
      else if (!logged) {
        closeFd(fd, () => undefined);
        this.status(id, STATUS.FAILURE, 'the download cannot be logged now');
      } else {
        const h = this.newHandle({ kind: 'file', node, fd, bytes: 0, ranges: [], inflight: 0, sync: true, closed: false, expired: false });
        if (h) this.send(handlePacket(id, h));
        else {
          closeFd(fd, () => undefined);
          this.status(id, STATUS.FAILURE, 'too many open files');
        }
      }
      this.pump();
    };
    this.hooks
      .open(node)
      .then(
        (fd) => opened(null, fd),
        (err: Error) => opened(err, -1),
      )
      .catch((err: unknown) => {
        if (!this.closed) this.fail(err);
      });
  }

  /**
   * R6.1: the download is in the usage log before its first byte is served. One record per file and
   * interval in a session (like the completion records, see noteDownload): a client opening a file in
   * a loop does not add a record per turn, and every turn after the first is covered by the first.
   */
  private async opened(node: FileNode): Promise<boolean> {
    const now = Date.now();
    const at = this.started.get(node.name);
    if (at !== undefined && now - at < this.hooks.downloadLogIntervalMs) return true;
    if (!(await this.hooks.downloadStarting(node))) return false;
    this.started.set(node.name, now);
    return true;
  }

  /**
   * OPEN in /inbox: only a new file, created and written (as clients send an upload: CREAT with EXCL,
   * or with TRUNC of a name that does not exist), with an allowed name; everything else is denied.
   */
  private async openUpload(id: number, path: string, flags: number, node: Node | undefined): Promise<void> {
    const { READ, WRITE, CREAT, TRUNC, EXCL } = OPEN_FLAGS;
    const writeOnly = (flags & ~(WRITE | CREAT | TRUNC | EXCL)) === 0 && (flags & WRITE) !== 0 && (flags & CREAT) !== 0 && (flags & (TRUNC | EXCL)) !== 0;
    if (!writeOnly || (flags & READ) !== 0) return this.status(id, STATUS.PERMISSION_DENIED, 'write-only: new files only');
    if (node) return this.status(id, STATUS.PERMISSION_DENIED, 'an upload of this name is pending');
    if (!this.hooks.inbox) return this.status(id, STATUS.PERMISSION_DENIED, 'no uploads');
    // Taken first, so an upload that could not be given a handle never opens a spool file.
    if (!this.hooks.share.handles.take()) return this.status(id, STATUS.FAILURE, 'too many open files');
    this.hooks.share.handles.give();
    const u = await this.hooks.inbox.begin(path.slice(INBOX_DIR.length + 1));
    if (!('write' in u)) return this.status(id, u.denied ? STATUS.PERMISSION_DENIED : STATUS.FAILURE, `${u.code}: ${u.message}`);
    // The session ended while the upload was begun: nothing is kept, as for an upload the end found open.
    if (this.closed) return u.abort('session.ended');
    const h = this.newHandle({ kind: 'upload', upload: u });
    if (!h) {
      u.abort('upload.no-handle');
      return this.status(id, STATUS.FAILURE, 'too many open files');
    }
    this.send(handlePacket(id, h));
  }

  /** WRITE: only to an upload, in order (see Upload.write); a failed write discards the upload. */
  private write(id: number, handle: string, offset: number, data: Buffer): void {
    const h = this.handles.get(handle);
    if (!h) return this.status(id, STATUS.FAILURE, 'invalid handle');
    if (h.kind !== 'upload') return this.status(id, STATUS.PERMISSION_DENIED, 'read-only');
    const err = h.upload.write(offset, data);
    if (err) return this.status(id, STATUS.FAILURE, `${err.code}: ${err.message}`);
    this.status(id, STATUS.OK);
  }

  /**
   * Clients set the size and times of what they uploaded (lftp, rclone): accepted and ignored for an
   * upload of this session or a pending one, so the upload is kept; denied anywhere else.
   */
  private async setstat(id: number, p: string): Promise<void> {
    const { path, node } = await this.resolve(p);
    const mine = [...this.handles.values()].some((h) => h.kind === 'upload' && !h.upload.failed && `${INBOX_DIR}/${h.upload.name}` === path);
    if (mine || node?.kind === 'upload') return this.status(id, STATUS.OK);
    this.status(id, STATUS.PERMISSION_DENIED, 'read-only');
  }

  private fsetstat(id: number, handle: string): void {
    const h = this.handles.get(handle);
    if (!h) return this.status(id, STATUS.FAILURE, 'invalid handle');
    this.status(id, h.kind === 'upload' ? STATUS.OK : STATUS.PERMISSION_DENIED, h.kind === 'upload' ? undefined : 'read-only');
  }

  private async opendir(id: number, p: string): Promise<void> {
    const { path, node } = await this.resolve(p);
    if (!node) return this.status(id, STATUS.NO_SUCH_FILE, 'no such file');
    if (node.kind !== 'dir') return this.status(id, STATUS.FAILURE, 'not a directory');
    const parent = (await this.tree.lookup(normalise('..', path)!))!;
    const entries = [{ ...node, name: '.' }, { ...parent, name: '..' }, ...((await this.tree.list(path)) ?? [])];
    const h = this.newHandle({ kind: 'dir', entries });
    if (!h) return this.status(id, STATUS.FAILURE, 'too many open files');
    this.send(handlePacket(id, h));
  }

  private readdir(id: number, handle: string): void {
    const h = this.handles.get(handle);
    if (!h || h.kind !== 'dir') return this.status(id, STATUS.FAILURE, 'invalid handle');
    if (!h.entries) return this.status(id, STATUS.EOF, 'end of directory');
    const entries = h.entries;
    h.entries = null;
    this.send(namePacket(id, entries.map((n) => ({ filename: n.name, longname: longname(n, this.hooks.username), attrs: attrsOf(n) }))));
  }

  private fstat(id: number, handle: string): void {
    const h = this.handles.get(handle);
    if (!h) return this.status(id, STATUS.FAILURE, 'invalid handle');
    if (h.kind === 'dir') return this.send(attrsPacket(id, { mode: DIR_MODE, size: 0, mtime: 0 }));
    if (h.kind === 'upload') return this.send(attrsPacket(id, { mode: UPLOAD_MODE, size: h.upload.bytes, mtime: Math.floor(Date.now() / 1000) }));
    this.inflight++;
    fstat(h.fd, (err, st) => {
      this.inflight--;
      if (err) this.status(id, STATUS.FAILURE, 'cannot stat');
      else this.send(attrsPacket(id, { mode: FILE_MODE, size: st.size, mtime: Math.floor(st.mtimeMs / 1000) }));
      this.pump();
    });
  }

  private read(id: number, handle: string, offset: number, len: number): boolean | void {
    const h = this.handles.get(handle);
    if (h?.kind === 'upload') return this.status(id, STATUS.PERMISSION_DENIED, 'write-only');
    if (!h || h.kind !== 'file' || h.closed) return this.status(id, STATUS.FAILURE, 'invalid handle');
    if (h.expired) return this.status(id, STATUS.FAILURE, 'the delivery has expired');
    if (offset >= h.node.size || len === 0) return this.status(id, STATUS.EOF, 'end of file');
    const n = Math.min(len, MAX_READ, h.node.size - offset);
    if (h.sync) {
      // Delivered files are usually in the page cache (written minutes ago): a plain read(2) costs
      // microseconds, far less than a trip through libuv's thread pool, and it reads straight into
      // the outgoing slab. The first read that has to wait for the disk moves the handle to the
      // thread pool, so a cold file holds up the other sessions of this process once, not throughout.
      const room = this.output.reserve(DATA_HEADER + n);
      if (!room) return false;
      const t0 = process.hrtime.bigint();
      let got: number;
      try {
        got = readSync(h.fd, room.buf, room.at + DATA_HEADER, n, offset);
      } catch {
        return this.status(id, STATUS.FAILURE, 'read error');
      } finally {
        if (process.hrtime.bigint() - t0 > SLOW_READ_NS) h.sync = false;
      }
      if (got === 0) return this.status(id, STATUS.EOF, 'end of file');
      finishDataPacket(room.buf.subarray(room.at, room.at + DATA_HEADER + got), id, got);
      this.output.commit(DATA_HEADER + got);
      h.bytes += got;
      return addRange(h.ranges, offset, offset + got);
    }
    const buf = Buffer.allocUnsafe(DATA_HEADER + n);
    this.inflight++;
    this.reading += buf.length;
    this.share.meter.out += buf.length;
    h.inflight++;
    readFd(h.fd, buf, DATA_HEADER, n, offset, (err, got) => {
      this.inflight--;
      h.inflight--;
      if (!this.closed) {
        this.reading -= buf.length;
        this.share.meter.out -= buf.length;
      }
      if (err) this.status(id, STATUS.FAILURE, 'read error');
      else if (got === 0) this.status(id, STATUS.EOF, 'end of file');
      else if (!this.closed) {
        this.send(finishDataPacket(buf, id, got));
        h.bytes += got;
        addRange(h.ranges, offset, offset + got);
      }
      if (h.closing && h.inflight === 0) h.closing();
      this.pump();
    });
  }

  private close(id: number, handle: string): void {
    const h = this.handles.get(handle);
    if (!h) return this.status(id, STATUS.FAILURE, 'invalid handle');
    this.dropHandle(handle);
    if (h.kind === 'dir') return this.status(id, STATUS.OK);
    if (h.kind === 'upload') return this.closeUpload(id, h.upload);
    this.finish(h, () => {
      this.status(id, STATUS.OK);
      if (![...this.handles.values()].some((x) => x.kind === 'file')) this.output.trim();
    });
  }

  /** CLOSE of an upload: answered OK only once it is on disk and recorded (Upload.finish). */
  private closeUpload(id: number, u: Upload): void {
    this.inflight++;
    u.finish((err) => {
      this.inflight--;
      if (err) this.status(id, STATUS.FAILURE, `${err.code}: ${err.message}`);
      else this.status(id, STATUS.OK);
      this.pump();
    });
  }

  /** Record the download and close the file once its reads have finished. */
  private finish(h: FileHandle, done: () => void = () => undefined): void {
    h.closed = true;
    const end = () => {
      if (h.bytes > 0) this.noteDownload(h);
      closeFd(h.fd, () => undefined);
      done();
    };
    if (h.inflight === 0) end();
    else h.closing = end;
  }

  /**
   * A file's first download in an interval is recorded at once; further ones in the same interval
   * are summed up in one record at its end (or when the session ends). A client opening, reading a
   * byte and closing in a loop thus adds two records per file and interval, not one per turn.
   */
  private noteDownload(h: FileHandle): void {
    const now = Date.now();
    const key = h.node.name;
    const t = this.downloads.get(key);
    if (!t || (!t.pending && now - t.at >= this.hooks.downloadLogIntervalMs)) {
      this.downloads.set(key, { at: now, pending: null });
      const [from, to] = h.ranges[0];
      return this.hooks.downloaded({ file: h.node, bytes: h.bytes, from, to, result: resultOf(h.ranges, h.node.size) });
    }
    if (!t.pending) t.pending = { file: h.node, bytes: 0, ranges: [], opens: 0 };
    const p = t.pending;
    p.bytes += h.bytes;
    p.opens++;
    for (const [from, to] of h.ranges) addRange(p.ranges, from, to);
    // A file whose last reads finished after the session ended: nothing will flush it later.
    if (this.closed) this.flushDownloads(true);
  }

  private flushDownloads(all: boolean): void {
    const now = Date.now();
    for (const t of this.downloads.values()) {
      const p = t.pending;
      if (!p || (!all && now - t.at < this.hooks.downloadLogIntervalMs)) continue;
      t.pending = null;
      t.at = now;
      const [from, to] = p.ranges[0];
      this.hooks.downloaded({ file: p.file, bytes: p.bytes, from, to, result: resultOf(p.ranges, p.file.size), ...(p.opens > 1 ? { opens: p.opens } : {}) });
    }
  }

  /**
   * Once a second, from the server: summed-up downloads whose interval is over are recorded, and
   * files whose delivery expired (`nowMs` on the service's clock) are no longer read.
   */
  tick(nowMs: number): void {
    if (this.closed) return;
    this.flushDownloads(false);
    for (const h of this.handles.values()) if (h.kind === 'file' && !h.expired && h.node.expiresAt <= nowMs) h.expired = true;
    this.pump();
  }

  /** The channel or connection ended: files still open are recorded as they stand. */
  closeAll(): void {
    if (this.closed) return;
    this.closed = true;
    const m = this.share.meter;
    m.parked -= this.parked + this.readerHeld;
    m.out -= this.reading;
    this.parked = this.readerHeld = this.reading = 0;
    this.waiting = [];
    this.head = 0;
    this.share.needRoom.delete(this);
    // What the channel buffered while we did not read is dropped, so it can end (ssh2 emits 'close' only after 'end').
    if (this.paused) this.channel.resume();
    this.output.close();
    for (const [key, h] of this.handles) {
      this.hooks.share.handles.give();
      this.handles.delete(key);
      if (h.kind === 'file') this.finish(h);
      else if (h.kind === 'upload') h.upload.abort('session.ended');
    }
    this.flushDownloads(true);
    for (const s of this.share.needRoom) s.wake();
  }
}

/**
 * ssh2 counts a channel's window down by what arrives but only refuses data once the window is exactly
 * zero: a client that sends past it drives it negative, and from then on everything it sends is
 * buffered while the session has stopped reading. Such data is dropped here and the session ends.
 */
export function guardWindow(channel: Duplex, onOverrun: () => void): void {
  const ch = channel as Duplex & { incoming?: { window: number } };
  if (!ch.incoming) return;
  const push = ch.push.bind(ch);
  let tripped = false;
  ch.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (chunk !== null && ch.incoming!.window < 0) {
      if (!tripped) {
        tripped = true;
        process.nextTick(onOverrun);
      }
      return false;
    }
    return push(chunk, encoding);
  };
}
