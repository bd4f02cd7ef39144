import { randomBytes } from 'node:crypto';
import { close as closeFd, fstat, open as openFd, read as readFd } from 'node:fs';
import { utils, type Attributes, type SFTPWrapper } from 'ssh2';
import { type FileNode, type Node, normalise, type OutboxTree } from './tree';

// DESIGN pitfall: the constants live on utils.sftp, not where ssh2's bundled example takes them from.
const { STATUS_CODE, OPEN_MODE } = utils.sftp;

/** OpenSSH's sftp-server answers reads of up to 256 KiB less overhead; clients ask for 32–255 KiB. */
const MAX_READ = 255 * 1024;
const MAX_HANDLES = 64;
/** Disk reads in flight per session; further READs wait (they are small) until one completes. */
const MAX_INFLIGHT_READS = 64;
/** Answers ssh2 holds for a client that does not open its window: beyond this, reads wait. */
const MAX_UNSENT_BYTES = 4 * 1024 * 1024;
/** A client that queues more reads than this is not downloading, it is attacking. */
const MAX_WAITING_READS = 100_000;

const DIR_MODE = 0o040555;
const FILE_MODE = 0o100444;

export interface DownloadRecord {
  file: FileNode;
  bytes: number;
  /** The contiguous range read from the first offset read; `complete` when it is the whole file. */
  from: number;
  to: number;
  complete: boolean;
}

export interface SessionHooks {
  username: string;
  /** Any request: the idle timer starts again. */
  activity(): void;
  /** A file handle was closed (by the client, or because the session ended) after reading from it. */
  downloaded(r: DownloadRecord): void;
  /** The client broke the protocol or flooded it; the connection should end. */
  abuse(reason: string): void;
}

interface FileHandle {
  kind: 'file';
  node: FileNode;
  fd: number;
  bytes: number;
  /** Disjoint, sorted ranges read so far (reads arrive in order; out-of-order ones merge later). */
  ranges: [number, number][];
  inflight: number;
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

function attrsOf(n: Node): Attributes {
  return n.kind === 'dir'
    ? { mode: DIR_MODE, uid: 0, gid: 0, size: 0, atime: n.mtime, mtime: n.mtime }
    : { mode: FILE_MODE, uid: 0, gid: 0, size: n.size, atime: n.mtime, mtime: n.mtime };
}

function longname(n: Node, owner: string): string {
  const perms = n.kind === 'dir' ? 'dr-xr-xr-x' : '-r--r--r--';
  const size = n.kind === 'dir' ? 0 : n.size;
  return `${perms}    1 ${'nia'.padEnd(8)} ${owner.slice(0, 8).padEnd(8)} ${String(size).padStart(8)} ${lsDate(n.mtime, Date.now() / 1000)} ${n.name}`;
}

/**
 * SSH's flow control, as ssh2 keeps it: the bytes of answers waiting for the client's window, and a
 * call when the window opens again. ssh2 has no public API for either; if its internals change, reads
 * are simply never held back (and the tests of large downloads still pass).
 */
function flowControl(sftp: SFTPWrapper, onWindowOpen: () => void): () => number {
  const s = sftp as unknown as { _buffer?: Buffer[]; outgoing?: { window: number } };
  const out = s.outgoing;
  if (out && typeof out.window === 'number') {
    let w = out.window;
    Object.defineProperty(out, 'window', {
      configurable: true,
      enumerable: true,
      get: () => w,
      set: (v: number) => {
        const opened = v > w;
        w = v;
        // After ssh2 has sent what it held (it does so right after raising the window).
        if (opened) setImmediate(onWindowOpen);
      },
    });
  }
  return () => (Array.isArray(s._buffer) ? s._buffer.reduce((n, b) => n + b.length, 0) : 0);
}

/**
 * One SFTP session over an account's virtual tree, like OpenSSH's internal-sftp in a chroot: every
 * path is normalised and looked up among the names the tree publishes, so there is no real path to
 * escape from. Reading is the only thing allowed; everything else gets PERMISSION_DENIED or
 * OP_UNSUPPORTED. Reads go straight from disk as the client asks, held back while the client's
 * window is closed.
 */
export class SftpSession {
  private readonly handles = new Map<string, Handle>();
  private readonly waiting: [number, FileHandle, number, number][] = [];
  private inflight = 0;
  private closed = false;
  private readonly unsentBytes: () => number;

  constructor(
    private readonly sftp: SFTPWrapper,
    private readonly tree: OutboxTree,
    private readonly hooks: SessionHooks,
  ) {
    this.unsentBytes = flowControl(sftp, () => this.pump());
    // DESIGN pitfall: without this the OpenSSH client hangs when it quits.
    sftp.on('end', () => sftp.end());
    sftp.on('close', () => this.closeAll());
    sftp.on('error', () => this.closeAll());

    const on = (event: string, fn: (reqid: number, ...args: any[]) => void) =>
      sftp.on(event as any, (reqid: number, ...args: any[]) => {
        hooks.activity();
        try {
          fn.call(this, reqid, ...args);
        } catch {
          this.status(reqid, STATUS_CODE.FAILURE, 'internal error');
        }
      });
    on('REALPATH', this.realpath);
    on('STAT', this.stat);
    on('LSTAT', this.stat);
    on('FSTAT', this.fstat);
    on('OPEN', this.open);
    on('READ', this.read);
    on('CLOSE', this.close);
    on('OPENDIR', this.opendir);
    on('READDIR', this.readdir);
    on('READLINK', this.readlink);
    for (const ev of ['WRITE', 'FSETSTAT', 'SETSTAT', 'REMOVE', 'RMDIR', 'MKDIR', 'RENAME', 'SYMLINK']) {
      on(ev, (reqid) => this.status(reqid, STATUS_CODE.PERMISSION_DENIED, 'read-only'));
    }
    on('EXTENDED', (reqid: number, name: string) => {
      // Writing extensions are refused as writes; the rest are simply not offered.
      const writes = ['posix-rename@openssh.com', 'hardlink@openssh.com', 'lsetstat@openssh.com', 'fsync@openssh.com', 'copy-data'];
      this.status(reqid, writes.includes(name) ? STATUS_CODE.PERMISSION_DENIED : STATUS_CODE.OP_UNSUPPORTED, writes.includes(name) ? 'read-only' : 'not supported');
    });
  }

  private status(reqid: number, code: number, message?: string): void {
    if (!this.closed) this.sftp.status(reqid, code, message);
  }

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

  private realpath(reqid: number, p: string): void {
    const { path, node } = this.resolve(p);
    if (!node) return this.status(reqid, STATUS_CODE.NO_SUCH_FILE, 'no such file');
    this.sftp.name(reqid, [{ filename: path, longname: path, attrs: attrsOf(node) }]);
  }

  private stat(reqid: number, p: string): void {
    const { node } = this.resolve(p);
    if (!node) return this.status(reqid, STATUS_CODE.NO_SUCH_FILE, 'no such file');
    this.sftp.attrs(reqid, attrsOf(node));
  }

  private readlink(reqid: number, p: string): void {
    const { node } = this.resolve(p);
    // There are no links in the tree.
    this.status(reqid, node ? STATUS_CODE.FAILURE : STATUS_CODE.NO_SUCH_FILE, node ? 'not a symbolic link' : 'no such file');
  }

  private open(reqid: number, p: string, flags: number): void {
    if ((flags & OPEN_MODE.READ) === 0 || (flags & ~OPEN_MODE.READ) !== 0) return this.status(reqid, STATUS_CODE.PERMISSION_DENIED, 'read-only');
    const { node } = this.resolve(p);
    if (!node) return this.status(reqid, STATUS_CODE.NO_SUCH_FILE, 'no such file');
    if (node.kind === 'dir') return this.status(reqid, STATUS_CODE.FAILURE, 'is a directory');
    openFd(node.disk, 'r', (err, fd) => {
      if (err) return this.status(reqid, STATUS_CODE.NO_SUCH_FILE, 'no such file');
      if (this.closed) return closeFd(fd, () => undefined);
      const id = this.newHandle({ kind: 'file', node, fd, bytes: 0, ranges: [], inflight: 0, closed: false });
      if (!id) {
        closeFd(fd, () => undefined);
        return this.status(reqid, STATUS_CODE.FAILURE, 'too many open files');
      }
      this.sftp.handle(reqid, id);
    });
  }

  private opendir(reqid: number, p: string): void {
    const { path, node } = this.resolve(p);
    if (!node) return this.status(reqid, STATUS_CODE.NO_SUCH_FILE, 'no such file');
    if (node.kind !== 'dir') return this.status(reqid, STATUS_CODE.FAILURE, 'not a directory');
    const here: Node = node;
    const parent: Node = this.tree.lookup(normalise('..', path)!)!;
    const entries = [{ ...here, name: '.' }, { ...parent, name: '..' }, ...(this.tree.list(path) ?? [])];
    const id = this.newHandle({ kind: 'dir', entries });
    if (!id) return this.status(reqid, STATUS_CODE.FAILURE, 'too many open files');
    this.sftp.handle(reqid, id);
  }

  private readdir(reqid: number, handle: Buffer): void {
    const h = this.handles.get(handle.toString('hex'));
    if (!h || h.kind !== 'dir') return this.status(reqid, STATUS_CODE.FAILURE, 'invalid handle');
    if (!h.entries) return this.status(reqid, STATUS_CODE.EOF);
    const entries = h.entries;
    h.entries = null;
    this.sftp.name(reqid, entries.map((n) => ({ filename: n.name, longname: longname(n, this.hooks.username), attrs: attrsOf(n) })));
  }

  private fstat(reqid: number, handle: Buffer): void {
    const h = this.handles.get(handle.toString('hex'));
    if (!h) return this.status(reqid, STATUS_CODE.FAILURE, 'invalid handle');
    if (h.kind === 'dir') return this.sftp.attrs(reqid, { mode: DIR_MODE, uid: 0, gid: 0, size: 0, atime: 0, mtime: 0 });
    fstat(h.fd, (err, st) => {
      if (err) return this.status(reqid, STATUS_CODE.FAILURE, 'cannot stat');
      const mtime = Math.floor(st.mtimeMs / 1000);
      this.sftp.attrs(reqid, { mode: FILE_MODE, uid: 0, gid: 0, size: st.size, atime: mtime, mtime });
    });
  }

  private read(reqid: number, handle: Buffer, offset: number, len: number): void {
    const h = this.handles.get(handle.toString('hex'));
    if (!h || h.kind !== 'file') return this.status(reqid, STATUS_CODE.FAILURE, 'invalid handle');
    if (this.waiting.length >= MAX_WAITING_READS) return this.hooks.abuse('too many outstanding reads');
    this.waiting.push([reqid, h, offset, len]);
    this.pump();
  }

  /** Start the reads the client's window and the in-flight limit allow. */
  private pump(): void {
    while (this.waiting.length && !this.closed && this.inflight < MAX_INFLIGHT_READS && this.unsentBytes() < MAX_UNSENT_BYTES) {
      const [reqid, h, offset, len] = this.waiting.shift()!;
      this.startRead(reqid, h, offset, len);
    }
  }

  private startRead(reqid: number, h: FileHandle, offset: number, len: number): void {
    if (h.closed) return this.status(reqid, STATUS_CODE.FAILURE, 'invalid handle');
    if (offset >= h.node.size || len === 0) return this.status(reqid, STATUS_CODE.EOF);
    const n = Math.min(len, MAX_READ, h.node.size - offset);
    const buf = Buffer.allocUnsafe(n);
    this.inflight++;
    h.inflight++;
    readFd(h.fd, buf, 0, n, offset, (err, got) => {
      this.inflight--;
      h.inflight--;
      if (err) this.status(reqid, STATUS_CODE.FAILURE, 'read error');
      else if (got === 0) this.status(reqid, STATUS_CODE.EOF);
      else if (!this.closed) {
        this.sftp.data(reqid, got === n ? buf : buf.subarray(0, got));
        h.bytes += got;
        addRange(h.ranges, offset, offset + got);
      }
      if (h.closing && h.inflight === 0) h.closing();
      this.pump();
    });
  }

  private close(reqid: number, handle: Buffer): void {
    const key = handle.toString('hex');
    const h = this.handles.get(key);
    if (!h) return this.status(reqid, STATUS_CODE.FAILURE, 'invalid handle');
    this.handles.delete(key);
    if (h.kind === 'dir') return this.status(reqid, STATUS_CODE.OK);
    this.finish(h, () => this.status(reqid, STATUS_CODE.OK));
  }

  /** Record the download and close the file once its reads have finished. */
  private finish(h: FileHandle, done: () => void = () => undefined): void {
    h.closed = true;
    const end = () => {
      if (h.bytes > 0) {
        const [from, to] = h.ranges[0];
        this.hooks.downloaded({ file: h.node, bytes: h.bytes, from, to, complete: h.ranges.length === 1 && from === 0 && to >= h.node.size });
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
    for (const h of this.handles.values()) if (h.kind === 'file') this.finish(h);
    this.handles.clear();
  }
}

