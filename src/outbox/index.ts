import { randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, lstatSync, mkdirSync, open as openFd, openSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The outbox port: the one place that knows where delivery files live. Everything that writes,
 * lists, opens, serves or deletes a file a link receives goes through it, so the directory can be a
 * local disk on one host or a shared mount (NFS) for several, and no caller can build a path that
 * leaves it. A link's files sit in `<root>/<link id>/<name>`; names are the ones SFTP lists.
 */
export interface Outbox {
  /** The directory, for documentation and health output only: callers never join paths onto it. */
  readonly root: string;
  /** Absolute path of a published file (`deliver --json` shows it; mail attachments and push uploads read it). */
  pathOf(linkId: number, name: string): string;
  /**
   * A private temporary file in the link's folder for a file that will be published as `name`:
   * a fresh hidden name (`.<name>.<random>.partial`) on every call, never ending in `.csv.pgp`, never
   * listed. The caller creates it at `temp.path` (exclusively) and writes it, then publishes or discards it.
   */
  create(linkId: number, name: string): OutboxTemp;
  /** Write a whole file atomically: a reader sees the old content or the new one, never a part. */
  writeFile(linkId: number, name: string, data: Buffer | string): void;
  /** Size and time of a published regular file; null when there is none (a symbolic link is none). */
  stat(linkId: number, name: string): OutboxStat | null;
  /** A read-only descriptor on a published file (never through a symbolic link), for positioned reads (fs.read); the caller closes it. */
  open(linkId: number, name: string): Promise<number>;
  /** Published names of a link's folder, sorted; temporary files are not among them. */
  list(linkId: number): string[];
  /** Remove a published file; one that is not there is fine. */
  remove(linkId: number, name: string): void;
  /** Remove temporary files older than `olderThanMs` (left by a process that died while writing); returns how many. */
  removeStaleTemps(now: Date, olderThanMs: number): number;
}

export interface OutboxStat {
  size: number;
  mtimeMs: number;
}

export interface OutboxTemp {
  /** Where to write; the file does not exist until the caller creates it (with O_EXCL: flag 'wx'). */
  readonly path: string;
  /**
   * Flush the file to stable storage and rename it onto its published name (replacing an older file of
   * that name atomically). Synchronous and short, so it may run inside a database transaction.
   */
  publish(): void;
  /**
   * Flush the file to stable storage now, so that a publish() inside a database transaction has
   * (almost) nothing left to write while it holds the transaction's lock.
   */
  flush(): void;
  /** Remove the temporary file; after publish() it does nothing. */
  discard(): void;
  /**
   * Take back a file published inside a database transaction that then rolled back: the file under
   * its name is removed, so no published file stands without the record that publishes it.
   */
  withdraw(): void;
}

const TEMP_SUFFIX = '.partial';
const MAX_NAME_BYTES = 200;

/** A name a link's folder may hold: one path component, not hidden, nothing a file system treats specially. */
export function assertOutboxName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) throw new Error('outbox: file name must be a non-empty string');
  if (name.includes('/') || name.includes('\\') || name.includes('\0')) throw new Error(`outbox: file name ${JSON.stringify(name)} must not contain '/', '\\' or NUL`);
  if (name.startsWith('.')) throw new Error(`outbox: file name ${JSON.stringify(name)} must not start with '.' (hidden and temporary names are the outbox's own)`);
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new Error(`outbox: file name ${JSON.stringify(name.slice(0, 40))}… is longer than ${MAX_NAME_BYTES} bytes`);
}

export function assertLinkId(linkId: unknown): asserts linkId is number {
  if (typeof linkId !== 'number' || !Number.isSafeInteger(linkId) || linkId <= 0) throw new Error(`outbox: link id ${String(linkId)} is not a positive integer`);
}

const isTemp = (f: string) => f.startsWith('.') && f.endsWith(TEMP_SUFFIX);
const code = (err: unknown) => (err as NodeJS.ErrnoException).code;

/** unlink(2), where a file already gone is fine. */
function unlinkIfThere(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if (code(err) !== 'ENOENT') throw err;
  }
}

/** fsync of a directory makes a rename in it durable; file systems that cannot (EINVAL) need not. */
function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch (err) {
    if (code(err) !== 'EINVAL' && code(err) !== 'ENOTSUP') throw err;
  } finally {
    closeSync(fd);
  }
}

/**
 * The outbox as a directory. Several hosts may share it (NFS or similar) when the mount renames
 * atomically within a directory and gives close-to-open consistency: a file is complete under its
 * temporary name before it is renamed, so a reader on any host sees either no file or all of it.
 */
export class DirectoryOutbox implements Outbox {
  readonly root: string;

  constructor(root: string) {
    if (!path.isAbsolute(root)) throw new Error(`outbox: directory ${root} must be an absolute path`);
    this.root = path.resolve(root);
  }

  private dir(linkId: number): string {
    assertLinkId(linkId);
    return path.join(this.root, String(linkId));
  }

  pathOf(linkId: number, name: string): string {
    assertOutboxName(name);
    const dir = this.dir(linkId);
    const file = path.join(dir, name);
    // Checked by construction above; kept as the last word on it.
    if (path.dirname(file) !== dir) throw new Error(`outbox: file name ${JSON.stringify(name)} leaves link ${linkId}'s folder`);
    return file;
  }

  create(linkId: number, name: string): OutboxTemp {
    const final = this.pathOf(linkId, name);
    const dir = path.dirname(final);
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    const tmp = path.join(dir, `.${name}.${randomBytes(12).toString('hex')}${TEMP_SUFFIX}`);
    let state: 'open' | 'published' | 'discarded' = 'open';
    const flush = () => {
      if (state !== 'open') throw new Error(`outbox: temporary file of ${name} was already ${state}`);
      const fd = openSync(tmp, constants.O_RDWR | constants.O_NOFOLLOW);
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    };
    return {
      path: tmp,
      flush,
      publish() {
        flush();
        renameSync(tmp, final);
        state = 'published';
        fsyncDir(dir);
      },
      discard() {
        if (state !== 'open') return;
        state = 'discarded';
        unlinkIfThere(tmp);
      },
      withdraw() {
        if (state !== 'published') return;
        state = 'discarded';
        unlinkIfThere(final);
      },
    };
  }

  writeFile(linkId: number, name: string, data: Buffer | string): void {
    const t = this.create(linkId, name);
    try {
      writeFileSync(t.path, data, { flag: 'wx', mode: 0o640 });
      t.publish();
    } catch (err) {
      t.discard();
      throw err;
    }
  }

  stat(linkId: number, name: string): OutboxStat | null {
    const file = this.pathOf(linkId, name);
    let st;
    try {
      st = lstatSync(file);
    } catch (err) {
      if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return null;
      throw err;
    }
    return st.isFile() ? { size: st.size, mtimeMs: st.mtimeMs } : null;
  }

  open(linkId: number, name: string): Promise<number> {
    let file: string;
    try {
      file = this.pathOf(linkId, name);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => openFd(file, constants.O_RDONLY | constants.O_NOFOLLOW, (err, fd) => (err ? reject(err) : resolve(fd))));
  }

  list(linkId: number): string[] {
    let entries;
    try {
      entries = readdirSync(this.dir(linkId), { withFileTypes: true });
    } catch (err) {
      if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return [];
      throw err;
    }
    return entries
      .filter((e) => e.isFile() && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort();
  }

  remove(linkId: number, name: string): void {
    try {
      unlinkSync(this.pathOf(linkId, name));
    } catch (err) {
      if (code(err) !== 'ENOENT' && code(err) !== 'ENOTDIR') throw err;
    }
  }

  removeStaleTemps(now: Date, olderThanMs: number): number {
    let removed = 0;
    let dirs: string[];
    try {
      dirs = readdirSync(this.root);
    } catch (err) {
      if (code(err) === 'ENOENT') return 0;
      throw err;
    }
    for (const d of dirs) {
      // Only the link folders are the outbox's: anything else in the directory is left alone.
      if (!/^[1-9][0-9]*$/.test(d)) continue;
      const dir = path.join(this.root, d);
      let files: string[];
      try {
        if (!lstatSync(dir).isDirectory()) continue;
        files = readdirSync(dir);
      } catch {
        continue;
      }
      for (const f of files) {
        if (!isTemp(f)) continue;
        const p = path.join(dir, f);
        try {
          const st = lstatSync(p);
          if (!st.isFile() || now.getTime() - st.mtimeMs <= olderThanMs) continue;
          unlinkSync(p);
          removed++;
        } catch (err) {
          if (code(err) !== 'ENOENT') throw err; // published or removed by another process meanwhile
        }
      }
    }
    return removed;
  }
}

/** The outbox of a configuration (`outbox.dir`). */
/** A temporary file holding `data`, to be published (or discarded) by the caller. */
export function stageFile(outbox: Outbox, linkId: number, name: string, data: Buffer | string): OutboxTemp {
  const t = outbox.create(linkId, name);
  try {
    writeFileSync(t.path, data, { flag: 'wx', mode: 0o640 });
  } catch (err) {
    t.discard();
    throw err;
  }
  return t;
}

export function openOutbox(config: { outbox: { dir: string } }): Outbox {
  return new DirectoryOutbox(config.outbox.dir);
}

export interface PublishedFiles {
  /** The file itself: an extract's `….csv.pgp`, an agency's usage records `usage-….pgp` (R6.5), a batch answer or error file. */
  data: string;
  /** The signed manifest beside it (an error file is its own manifest). */
  manifest: string;
  /** The manifest's detached signature. */
  signature: string;
}

/** The names a delivery whose file is `fileName` publishes in its link's folder. */
export function publishedFiles(fileName: string): PublishedFiles {
  const manifest = fileName.replace(/(\.csv)?\.pgp$/, '.manifest.json');
  return { data: fileName, manifest, signature: `${manifest}.asc` };
}
