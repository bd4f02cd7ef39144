import { createReadStream, statSync } from 'node:fs';

/** A file of an archive: its name inside (forward slashes, ASCII) and where its bytes are on disk. */
export interface TarEntry {
  name: string;
  file: string;
}

const BLOCK = 512;

function field(buf: Buffer, offset: number, length: number, value: string): void {
  buf.write(value, offset, length, 'ascii');
}

const octal = (n: number, width: number) => n.toString(8).padStart(width - 1, '0') + '\0';

/**
 * A POSIX ustar header. Names are what this service writes (ASCII, under 100 bytes), so the plain
 * name field suffices; anything else is a programming error, not input.
 */
function header(name: string, size: number, mtime: number, dir: boolean): Buffer {
  if (!/^[\x21-\x7e]{1,99}$/.test(name)) throw new Error(`tar: name not representable: ${name}`);
  const h = Buffer.alloc(BLOCK, 0);
  field(h, 0, 100, name);
  field(h, 100, 8, octal(dir ? 0o750 : 0o640, 8));
  field(h, 108, 8, octal(0, 8));
  field(h, 116, 8, octal(0, 8));
  field(h, 124, 12, octal(size, 12));
  field(h, 136, 12, octal(Math.floor(mtime / 1000), 12));
  field(h, 148, 8, '        ');
  field(h, 156, 1, dir ? '5' : '0');
  field(h, 257, 6, 'ustar\0');
  field(h, 263, 2, '00');
  field(h, 265, 32, 'nia-link');
  field(h, 297, 32, 'nia-link');
  let sum = 0;
  for (const b of h) sum += b;
  field(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

/**
 * A ustar archive of `entries`, streamed: each file is read from disk as it is written, so an archive
 * of a long usage log never sits in memory. `tar -xf` (GNU, BSD, busybox) unpacks it.
 */
export async function* tarStream(dirs: readonly string[], entries: readonly TarEntry[], mtime: number): AsyncGenerator<Buffer> {
  for (const d of dirs) yield header(d.endsWith('/') ? d : `${d}/`, 0, mtime, true);
  for (const e of entries) {
    const size = statSync(e.file).size;
    yield header(e.name, size, mtime, false);
    let read = 0;
    for await (const chunk of createReadStream(e.file)) {
      read += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    // The header promised `size` bytes: a file that changed under us would corrupt every entry after it.
    if (read !== size) throw new Error(`tar: ${e.file} changed while it was archived`);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad) yield Buffer.alloc(pad, 0);
  }
  yield Buffer.alloc(BLOCK * 2, 0);
}
