import { randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, fsyncSync, linkSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * Creates `file` and writes `content`, or fails (EEXIST) if anything is at that path, a symbolic link
 * included: O_EXCL with O_CREAT never follows a link, O_NOFOLLOW says so twice. The mode is set on the
 * open descriptor, so the umask cannot widen it and no other path is touched.
 */
export function createExclusive(file: string, content: string | Buffer, mode: number): void {
  const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    fchmodSync(fd, mode);
    writeSync(fd, typeof content === 'string' ? Buffer.from(content, 'utf8') : content);
    fsyncSync(fd);
  } catch (err) {
    // The file is ours (O_EXCL): a short write (a full disk) must not leave part of it behind.
    closeSync(fd);
    unlinkSync(file);
    throw err;
  }
  closeSync(fd);
}

/** A name beside `file` nobody can guess in advance, so nothing can be planted there for us to open. */
function freshTemp(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(12).toString('hex')}.tmp`);
}

/**
 * Writes `file` complete or not at all, and only if nothing is there yet (a racing writer's file, or a
 * link, is kept: link(2) neither replaces nor follows). Returns whether this call created it.
 */
export function writeFileOnce(file: string, content: string | Buffer, mode: number): boolean {
  const tmp = freshTemp(file);
  createExclusive(tmp, content, mode);
  try {
    linkSync(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

/**
 * Writes or replaces `file` atomically. rename(2) replaces a link at `file` itself, never the file it
 * points to.
 */
export function replaceFile(file: string, content: string | Buffer, mode: number): void {
  const tmp = freshTemp(file);
  createExclusive(tmp, content, mode);
  try {
    renameSync(tmp, file);
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
}
