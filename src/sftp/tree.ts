import { statSync } from 'node:fs';
import path from 'node:path';

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
  name: string;
  /** The file on disk; comes from the database, never from the client. */
  disk: string;
  delivery: number;
  role: 'data' | 'manifest' | 'signature';
  size: number;
  mtime: number;
}

export type Node = DirNode | FileNode;

/** A file the tree may show: its delivery and where it is on disk. */
export interface Published {
  delivery: number;
  role: FileNode['role'];
  disk: string;
  createdAt: string;
}

// Names the extract pipeline gives files; anything else (a path separator, a leading dot) is never shown.
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/**
 * One account's read-only tree: `/`, `/outbox`, and the files of its link's built deliveries. Built
 * from the database on every lookup (a delivery purged a moment ago is gone); only names in that
 * list can be opened.
 */
export class OutboxTree {
  constructor(private readonly published: () => Published[]) {}

  private files(): Map<string, FileNode> {
    const m = new Map<string, FileNode>();
    for (const p of this.published()) {
      const name = path.basename(p.disk);
      if (!SAFE_NAME.test(name)) continue;
      let st;
      try {
        st = statSync(p.disk);
      } catch {
        continue; // removed from disk (purge in progress)
      }
      if (!st.isFile()) continue;
      m.set(name, { kind: 'file', name, disk: p.disk, delivery: p.delivery, role: p.role, size: st.size, mtime: Math.floor(st.mtimeMs / 1000) });
    }
    return m;
  }

  /** The node at a normalised path, or undefined. */
  lookup(p: string): Node | undefined {
    if (p === '/') return { kind: 'dir', name: '/', mtime: this.newest() };
    if (p === HOME) return { kind: 'dir', name: 'outbox', mtime: this.newest() };
    if (path.posix.dirname(p) !== HOME) return undefined;
    return this.files().get(path.posix.basename(p));
  }

  /** The entries of a directory (without `.` and `..`), or undefined when `p` is not one. */
  list(p: string): Node[] | undefined {
    if (p === '/') return [{ kind: 'dir', name: 'outbox', mtime: this.newest() }];
    if (p === HOME) return [...this.files().values()].sort((a, b) => a.name.localeCompare(b.name));
    return undefined;
  }

  private newest(): number {
    const times = this.published().map((p) => Date.parse(p.createdAt) / 1000);
    return Math.floor(times.length ? Math.max(...times) : Date.now() / 1000);
  }
}
