import path from 'node:path';
import type { OutboxStat } from '../outbox';

/** Where an account starts, and the only directory with files in it. */
export const HOME = '/outbox';
const MAX_PATH = 4096;

/**
 * A client's path as a path of the virtual tree, resolved lexically the way a chroot does: relative
 * to HOME, `.` dropped, `..` removing one name and stopping at `/`. No byte is decoded or treated
 * specially (`%2f` and `\` are ordinary characters of a name), so nothing here can name a real file.
 * Null for a path no file of the tree can have (NUL bytes, absurd length).
 */
export function normalise(p: string, cwd = HOME): string | null {
  if (p.length > MAX_PATH || p.includes('\0')) return null;
  const parts: string[] = [];
  for (const seg of (p.startsWith('/') ? p : `${cwd}/${p}`).split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return '/' + parts.join('/');
}

export interface DirNode {
  kind: 'dir';
  name: string;
  mtime: number;
}

export interface FileNode {
  kind: 'file';
  /** Its name in the link's outbox folder; comes from the database, never from the client. */
  name: string;
  delivery: number;
  role: 'data' | 'manifest' | 'signature';
  size: number;
  mtime: number;
  /** When its delivery expires (ms since the epoch; Infinity: never): from then on it is neither listed nor served. */
  expiresAt: number;
}

/** A pending upload in /inbox: only its name and size are shown; it can be neither read nor changed. */
export interface UploadNode {
  kind: 'upload';
  name: string;
  size: number;
  mtime: number;
}

export type Node = DirNode | FileNode | UploadNode;

/** The writable /inbox of an account whose link takes uploads (sftp/inbox.ts). */
export const INBOX_DIR = '/inbox';

/** A file the tree may show: its delivery and its name in the link's outbox folder. */
export interface Published {
  delivery: number;
  role: FileNode['role'];
  name: string;
  createdAt: string;
  expiresAt: string | null;
}

/** Where a tree's files come from. */
export interface TreeSource {
  /** The files of the account's link's built deliveries (one database query). */
  published(): Promise<Published[]>;
  /** The size and time of a published file in the link's outbox folder (null: not there). */
  stat(name: string): OutboxStat | null;
  /** Changes whenever the database may have changed since it was last asked (cheap; asked on every look-up). */
  version(): Promise<string>;
  now(): number;
  /** The account's /inbox: whether its link takes uploads now (otherwise there is none), and its pending uploads. */
  inbox?: { enabled(): Promise<boolean>; pending(): Promise<{ name: string; bytes: number; receivedAt: string }[]> };
}

// Names the extract pipeline gives files; anything else (a path separator, a leading dot) is never shown.
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

interface Snapshot {
  version: string;
  /** The first expiry among the files listed: at that time the list is made again. */
  validUntil: number;
  files: Map<string, FileNode>;
  newest: number;
}

/**
 * One account's tree: `/`, `/inbox` when its link takes uploads (pending uploads only, names and
 * sizes), `/outbox`, and the files of its link's built deliveries that
 * have not expired. Only names in that list can be opened. The list is kept while nothing in the
 * database has changed (a delivery built or purged, a link changed, by any process) and until the
 * next expiry; then it is read again, and only files not seen before are stat()ed (a delivered file
 * never changes: it is written under a temporary name and renamed). A session's look-ups thus cost
 * the same however many files its link has.
 */
export class OutboxTree {
  private snap: Snapshot | null = null;

  constructor(private readonly source: TreeSource) {}

  private async current(): Promise<Snapshot> {
    const version = await this.source.version();
    const now = this.source.now();
    const s = this.snap;
    if (s && s.version === version && now < s.validUntil) return s;
    return (this.snap = await this.read(version, now, s?.files));
  }

  private async read(version: string, now: number, before: Map<string, FileNode> | undefined): Promise<Snapshot> {
    const files = new Map<string, FileNode>();
    let validUntil = Infinity;
    let newest = 0;
    for (const p of await this.source.published()) {
      const expiresAt = p.expiresAt ? Date.parse(p.expiresAt) : Infinity;
      if (expiresAt <= now) continue;
      const name = p.name;
      if (!SAFE_NAME.test(name)) continue;
      let node = before?.get(name);
      if (!node || node.delivery !== p.delivery || node.role !== p.role) {
        let st;
        try {
          st = this.source.stat(name);
        } catch {
          st = null;
        }
        if (!st) continue; // not (or no longer) in the outbox: purge in progress
        node = { kind: 'file', name, delivery: p.delivery, role: p.role, size: st.size, mtime: Math.floor(st.mtimeMs / 1000), expiresAt };
      } else if (node.expiresAt !== expiresAt) {
        node = { ...node, expiresAt };
      }
      files.set(name, node);
      validUntil = Math.min(validUntil, expiresAt);
      newest = Math.max(newest, Date.parse(p.createdAt) / 1000);
    }
    return { version, validUntil, files, newest: Math.floor(files.size ? newest : now / 1000) };
  }

  /** Whether the account has an /inbox (its link's current revision may change that at any time). */
  async hasInbox(): Promise<boolean> {
    return (await this.source.inbox?.enabled()) ?? false;
  }

  /** Is `p` (normalised) a name inside /inbox, for an account that has one? */
  async inInbox(p: string): Promise<boolean> {
    return path.posix.dirname(p) === INBOX_DIR && p !== INBOX_DIR && (await this.hasInbox());
  }

  /** Pending uploads, read afresh every time: they come and go with other processes' work. */
  private async uploads(): Promise<UploadNode[] | null> {
    if (!(await this.hasInbox())) return null;
    return (await this.source.inbox!.pending()).map((u) => ({ kind: 'upload' as const, name: u.name, size: u.bytes, mtime: Math.floor(Date.parse(u.receivedAt) / 1000) })).sort((a, b) => a.name.localeCompare(b.name));
  }

  private inboxDir(): DirNode {
    return { kind: 'dir', name: 'inbox', mtime: Math.floor(this.source.now() / 1000) };
  }

  /** The node at a normalised path, or undefined. */
  async lookup(p: string): Promise<Node | undefined> {
    if (p === '/') return { kind: 'dir', name: '/', mtime: (await this.current()).newest };
    if (p === HOME) return { kind: 'dir', name: 'outbox', mtime: (await this.current()).newest };
    if (p === INBOX_DIR) return (await this.hasInbox()) ? this.inboxDir() : undefined;
    const dir = path.posix.dirname(p);
    if (dir === INBOX_DIR) return (await this.uploads())?.find((u) => u.name === path.posix.basename(p));
    if (dir !== HOME) return undefined;
    return (await this.current()).files.get(path.posix.basename(p));
  }

  /** The entries of a directory (without `.` and `..`), or undefined when `p` is not one. */
  async list(p: string): Promise<Node[] | undefined> {
    if (p === '/') return [...((await this.hasInbox()) ? [this.inboxDir()] : []), { kind: 'dir', name: 'outbox', mtime: (await this.current()).newest }];
    if (p === HOME) return [...(await this.current()).files.values()].sort((a, b) => a.name.localeCompare(b.name));
    if (p === INBOX_DIR) return (await this.uploads()) ?? undefined;
    return undefined;
  }
}
