import { randomBytes } from 'node:crypto';
import { close as closeFd, fstat, open as openFd, read as readFd, readSync } from 'node:fs';
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
import { Output } from './output';
import { type FileNode, type Node, normalise, type OutboxTree } from './tree';

/** OpenSSH's sftp-server answers reads of up to 256 KiB less overhead; clients ask for 32–255 KiB. */
const MAX_READ = 255 * 1024;
const MAX_HANDLES = 64;
/** Disk reads in flight per session. */
const MAX_INFLIGHT_READS = 64;
/** A read(2) slower than this waited for the disk: that handle reads through the thread pool from then on. */
const SLOW_READ_NS = 2_000_000n;
/** Requests parsed but not yet started; beyond this the channel stops reading, so SSH flow control holds the client back. */
const MAX_WAITING = 4096;

const DIR_MODE = 0o040555;
const FILE_MODE = 0o100444;

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
}

export interface SessionHooks {
  username: string;
  /** Any request: the idle timer starts again. */
  activity(): void;
  /** A file handle was closed (by the client, or because the session ended) after reading from it. */
  downloaded(r: DownloadRecord): void;
  /** The session broke (the client broke the protocol); the connection should end. */
  abuse(reason: string): void;
  /** The connection's TCP socket: the SSH packets of one flush leave in one write(2). */
  socket?: { cork(): void; uncork(): void };
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
  closing?: () => void;
}
interface DirHandle {
  kind: 'dir';
  entries: Node[] | null;
}
type Handle = FileHandle | DirHandle;

function addRange(ranges: [number, number][], from: number, to: number): void {
  ranges.push([from, to]);
  ranges.sort((a, b) => a[0] - b[0]);
  let w = 0;
  for (let r = 1; r < ranges.length; r++) {
    if (ranges[r][0] <= ranges[w][1]) ranges[w][1] = Math.max(ranges[w][1], ranges[r][1]);
    else ranges[++w] = ranges[r];
  }
  ranges.length = w + 1;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** The date column of `ls -l`: time for the last six months, the year before that. */
function lsDate(epochSec: number, nowSec: number): string {
  const d = new Date(epochSec * 1000);
  const day = `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')}`;
  if (Math.abs(nowSec - epochSec) < 182 * 86400) return `${day} ${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  return `${day}  ${d.getFullYear()}`;
}

const attrsOf = (n: Node): Attrs => (n.kind === 'dir' ? { mode: DIR_MODE, size: 0, mtime: n.mtime } : { mode: FILE_MODE, size: n.size, mtime: n.mtime });

function longname(n: Node, owner: string): string {
  const perms = n.kind === 'dir' ? 'dr-xr-xr-x' : '-r--r--r--';
  const size = n.kind === 'dir' ? 0 : n.size;
  return `${perms}    1 ${'nia'.padEnd(8)} ${owner.slice(0, 8).padEnd(8)} ${String(size).padStart(8)} ${lsDate(n.mtime, Date.now() / 1000)} ${n.name}`;
}

/** A request waiting its turn: parsed again from its packet when served (it may be served twice if there was no room). */
type Request = { type: number; id: number; packet: Buffer };

/**
 * One SFTP session over an account's virtual tree, like OpenSSH's internal-sftp in a chroot: every
 * path is normalised and looked up among the names the tree publishes, so there is no real path to
 * escape from. Reading is the only thing allowed; everything else gets PERMISSION_DENIED or
 * OP_UNSUPPORTED.
 *
 * The protocol is spoken here over the raw subsystem channel (not ssh2's SFTP class), so that answers
 * can be gathered into full SSH packets (see Output) and backpressure holds end to end: files are
 * read only while there is room for the answers, and requests stop being read while too many wait,
 * so SSH flow control holds the client back.
 */
export class SftpSession {
  private readonly reader = new PacketReader();
  private readonly handles = new Map<string, Handle>();
  private readonly waiting: Request[] = [];
  private inflight = 0;
  private initialised = false;
  private closed = false;
  private readonly output: Output;

  constructor(
    private readonly channel: Duplex,
    private readonly tree: OutboxTree,
    private readonly hooks: SessionHooks,
  ) {
    this.output = new Output(channel, hooks.socket, () => this.pump());
    channel.on('data', (chunk: Buffer) => this.receive(chunk));
    // DESIGN pitfall: end our side when the client ends its side, or OpenSSH's client hangs on quit.
    channel.on('end', () => channel.end());
    channel.on('close', () => this.closeAll());
    channel.on('error', () => this.closeAll());
  }

  // ---- input ----

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    try {
      for (const p of this.reader.push(chunk)) this.dispatch(p);
    } catch (err) {
      return this.fail(err);
    }
    if (this.waiting.length >= MAX_WAITING) this.channel.pause();
    this.pump();
  }

  private dispatch(p: Buffer): void {
    const type = p[0];
    const f = new Fields(p);
    if (!this.initialised) {
      if (type !== REQUEST.INIT) throw new BadMessage(`expected INIT, got ${type}`);
      f.u32(); // the client's version; we answer 3, which every client speaks
      this.initialised = true;
      return this.send(versionPacket());
    }
    if (type === REQUEST.INIT) throw new BadMessage('second INIT');
    const id = f.u32();
    this.hooks.activity();
    // Every request waits its turn in order; only READ has to, but the order of answers then stays simple.
    this.waiting.push({ type, id, packet: p });
  }

  /** A malformed packet (or a bug) ends this session, never the process. */
  private fail(err: unknown): void {
    this.hooks.abuse(err instanceof BadMessage ? `malformed SFTP packet: ${err.message}` : `internal error: ${(err as Error).message}`);
    this.channel.destroy();
    this.closeAll();
  }

  /** Serve what waits, as far as the in-flight limit and the channel allow. */
  private pump(): void {
    while (this.waiting.length && !this.closed && this.inflight < MAX_INFLIGHT_READS) {
      const r = this.waiting.shift()!;
      try {
        if (this.serve(r) === false) {
          // No room for the answer: it waits until the channel has taken what is in flight.
          this.waiting.unshift(r);
          break;
        }
      } catch (err) {
        return this.fail(err);
      }
    }
    if (this.waiting.length < MAX_WAITING / 2 && this.channel.isPaused()) this.channel.resume();
  }

  /** False when the request could not be served yet (no room for its answer). */
  private serve({ type, id, packet }: Request): boolean | void {
    const f = new Fields(packet);
    f.u32(); // the id
    switch (type) {
      case REQUEST.REALPATH:
        return this.realpath(id, f.text());
      case REQUEST.STAT:
      case REQUEST.LSTAT:
        return this.stat(id, f.text());
      case REQUEST.FSTAT:
        return this.fstat(id, f.bytes());
      case REQUEST.OPEN: {
        const path = f.text();
        return this.open(id, path, f.u32());
      }
      case REQUEST.READ: {
        const handle = f.bytes();
        const offset = f.u64();
        return this.read(id, handle, offset, f.u32());
      }
      case REQUEST.CLOSE:
        return this.close(id, f.bytes());
      case REQUEST.OPENDIR:
        return this.opendir(id, f.text());
      case REQUEST.READDIR:
        return this.readdir(id, f.bytes());
      case REQUEST.READLINK:
        return this.readlink(id, f.text());
      case REQUEST.WRITE:
      case REQUEST.SETSTAT:
      case REQUEST.FSETSTAT:
      case REQUEST.REMOVE:
      case REQUEST.MKDIR:
      case REQUEST.RMDIR:
      case REQUEST.RENAME:
      case REQUEST.SYMLINK:
        return this.status(id, STATUS.PERMISSION_DENIED, 'read-only');
      case REQUEST.EXTENDED: {
        const name = f.text();
        return WRITING_EXTENSIONS.has(name) ? this.status(id, STATUS.PERMISSION_DENIED, 'read-only') : this.status(id, STATUS.OP_UNSUPPORTED, 'not supported');
      }
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
    if (this.handles.size >= MAX_HANDLES) return null;
    let id: Buffer;
    do id = randomBytes(8);
    while (this.handles.has(id.toString('hex')));
    this.handles.set(id.toString('hex'), h);
    return id;
  }

  private resolve(p: string): { path: string; node: Node | undefined } {
    const path = normalise(p);
    return { path: path ?? '', node: path === null ? undefined : this.tree.lookup(path) };
  }

  private realpath(id: number, p: string): void {
    const { path, node } = this.resolve(p);
    if (!node) return this.status(id, STATUS.NO_SUCH_FILE, 'no such file');
    this.send(namePacket(id, [{ filename: path, longname: path, attrs: attrsOf(node) }]));
  }

  private stat(id: number, p: string): void {
    const { node } = this.resolve(p);
    if (!node) return this.status(id, STATUS.NO_SUCH_FILE, 'no such file');
    this.send(attrsPacket(id, attrsOf(node)));
  }

  private readlink(id: number, p: string): void {
    const { node } = this.resolve(p);
    // There are no links in the tree.
    this.status(id, node ? STATUS.FAILURE : STATUS.NO_SUCH_FILE, node ? 'not a symbolic link' : 'no such file');
  }

  private open(id: number, p: string, flags: number): void {
    if ((flags & OPEN_FLAGS.READ) === 0 || (flags & ~OPEN_FLAGS.READ) !== 0) return this.status(id, STATUS.PERMISSION_DENIED, 'read-only');
    const { node } = this.resolve(p);
    if (!node) return this.status(id, STATUS.NO_SUCH_FILE, 'no such file');
    if (node.kind === 'dir') return this.status(id, STATUS.FAILURE, 'is a directory');
    this.inflight++;
    openFd(node.disk, 'r', (err, fd) => {
      this.inflight--;
      if (err) this.status(id, STATUS.NO_SUCH_FILE, 'no such file');
      else if (this.closed) closeFd(fd, () => undefined);
      else {
        const h = this.newHandle({ kind: 'file', node, fd, bytes: 0, ranges: [], inflight: 0, sync: true, closed: false });
        if (h) this.send(handlePacket(id, h));
        else {
          closeFd(fd, () => undefined);
          this.status(id, STATUS.FAILURE, 'too many open files');
        }
      }
      this.pump();
    });
  }

  private opendir(id: number, p: string): void {
    const { path, node } = this.resolve(p);
    if (!node) return this.status(id, STATUS.NO_SUCH_FILE, 'no such file');
    if (node.kind !== 'dir') return this.status(id, STATUS.FAILURE, 'not a directory');
    const parent = this.tree.lookup(normalise('..', path)!)!;
    const entries = [{ ...node, name: '.' }, { ...parent, name: '..' }, ...(this.tree.list(path) ?? [])];
    const h = this.newHandle({ kind: 'dir', entries });
    if (!h) return this.status(id, STATUS.FAILURE, 'too many open files');
    this.send(handlePacket(id, h));
  }

  private readdir(id: number, handle: Buffer): void {
    const h = this.handles.get(handle.toString('hex'));
    if (!h || h.kind !== 'dir') return this.status(id, STATUS.FAILURE, 'invalid handle');
    if (!h.entries) return this.status(id, STATUS.EOF, 'end of directory');
    const entries = h.entries;
    h.entries = null;
    this.send(namePacket(id, entries.map((n) => ({ filename: n.name, longname: longname(n, this.hooks.username), attrs: attrsOf(n) }))));
  }

  private fstat(id: number, handle: Buffer): void {
    const h = this.handles.get(handle.toString('hex'));
    if (!h) return this.status(id, STATUS.FAILURE, 'invalid handle');
    if (h.kind === 'dir') return this.send(attrsPacket(id, { mode: DIR_MODE, size: 0, mtime: 0 }));
    this.inflight++;
    fstat(h.fd, (err, st) => {
      this.inflight--;
      if (err) this.status(id, STATUS.FAILURE, 'cannot stat');
      else this.send(attrsPacket(id, { mode: FILE_MODE, size: st.size, mtime: Math.floor(st.mtimeMs / 1000) }));
      this.pump();
    });
  }

  private read(id: number, handle: Buffer, offset: number, len: number): boolean | void {
    const h = this.handles.get(handle.toString('hex'));
    if (!h || h.kind !== 'file' || h.closed) return this.status(id, STATUS.FAILURE, 'invalid handle');
    if (offset >= h.node.size || len === 0) return this.status(id, STATUS.EOF, 'end of file');
    const n = Math.min(len, MAX_READ, h.node.size - offset);
    const delivered = (got: number) => {
      h.bytes += got;
      addRange(h.ranges, offset, offset + got);
    };
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
      return delivered(got);
    }
    const buf = Buffer.allocUnsafe(DATA_HEADER + n);
    this.inflight++;
    h.inflight++;
    readFd(h.fd, buf, DATA_HEADER, n, offset, (err, got) => {
      this.inflight--;
      h.inflight--;
      if (err) this.status(id, STATUS.FAILURE, 'read error');
      else if (got === 0) this.status(id, STATUS.EOF, 'end of file');
      else if (!this.closed) {
        this.send(finishDataPacket(buf, id, got));
        delivered(got);
      }
      if (h.closing && h.inflight === 0) h.closing();
      this.pump();
    });
  }

  private close(id: number, handle: Buffer): void {
    const key = handle.toString('hex');
    const h = this.handles.get(key);
    if (!h) return this.status(id, STATUS.FAILURE, 'invalid handle');
    this.handles.delete(key);
    if (h.kind === 'dir') return this.status(id, STATUS.OK);
    this.finish(h, () => {
      this.status(id, STATUS.OK);
      if (![...this.handles.values()].some((x) => x.kind === 'file')) this.output.trim();
    });
  }

  /** Record the download and close the file once its reads have finished. */
  private finish(h: FileHandle, done: () => void = () => undefined): void {
    h.closed = true;
    const end = () => {
      if (h.bytes > 0) {
        const [from, to] = h.ranges[0];
        const toEnd = h.ranges.length === 1 && to >= h.node.size;
        this.hooks.downloaded({ file: h.node, bytes: h.bytes, from, to, result: toEnd ? (from === 0 ? 'complete' : 'resumed') : 'partial' });
      }
      closeFd(h.fd, () => undefined);
      done();
    };
    if (h.inflight === 0) end();
    else h.closing = end;
  }

  /** The channel or connection ended: files still open are recorded as they stand. */
  closeAll(): void {
    if (this.closed) return;
    this.closed = true;
    this.waiting.length = 0;
    this.output.close();
    for (const h of this.handles.values()) if (h.kind === 'file') this.finish(h);
    this.handles.clear();
  }
}
