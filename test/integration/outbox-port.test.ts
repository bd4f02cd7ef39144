import { spawn } from 'node:child_process';
import { closeSync, existsSync, fstatSync, mkdirSync, readdirSync, readFileSync, readSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { DirectoryOutbox, openOutbox } from '../../src/outbox';
import { tmpDir } from '../helpers/world';

let base: string;
let root: string;
let outbox: DirectoryOutbox;

beforeEach(() => {
  base = tmpDir('nia-link-outbox-');
  root = path.join(base, 'outbox');
  outbox = new DirectoryOutbox(root);
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

/** Everything under `dir`, as relative paths (what a test can compare before and after). */
function tree(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(prefix, e.name);
    return e.isDirectory() ? [rel + '/', ...tree(path.join(dir, e.name), rel)] : [rel];
  });
}

/**
 * A reader in another process that reads `file` as fast as it can until told to stop, and reports
 * every read that was not one whole version (all bytes alike, `size` of them) — what an SFTP client
 * on another host would have been served.
 */
function reader(file: string, size: number): { stop: () => Promise<{ reads: number; torn: string[] }> } {
  const script = `
    const fs = require('node:fs');
    const [file, size] = [process.argv[1], Number(process.argv[2])];
    let reads = 0, stop = false; const torn = [];
    process.stdin.on('data', () => (stop = true));
    (function loop() {
      for (let i = 0; i < 50 && !stop; i++) {
        let b;
        try { b = fs.readFileSync(file); } catch (e) { if (e.code !== 'ENOENT') torn.push(e.code); continue; }
        reads++;
        if (b.length !== size || b.indexOf(b[0] === 0x61 ? 0x62 : 0x61) !== -1) torn.push('length ' + b.length + ', first ' + b[0]);
      }
      if (stop) { process.stdout.write(JSON.stringify({ reads, torn: torn.slice(0, 5) })); process.exit(0); }
      setImmediate(loop);
    })();`;
  const child = spawn(process.execPath, ['-e', script, file, String(size)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    stop: async () => {
      child.stdin.write('x');
      await done;
      return JSON.parse(out);
    },
  };
}

describe('outbox port: a reader never sees a partial file', () => {
  it('a file being written under its temporary name is not there under its published name, nor listed, until publish()', () => {
    const t = outbox.create(7, 'entry_exit-L7-r1-D1.csv.pgp');
    writeFileSync(t.path, Buffer.alloc(1 << 20, 1), { flag: 'wx' });
    expect(outbox.stat(7, 'entry_exit-L7-r1-D1.csv.pgp')).toBeNull();
    expect(outbox.list(7)).toEqual([]);
    expect(existsSync(outbox.pathOf(7, 'entry_exit-L7-r1-D1.csv.pgp'))).toBe(false);
    t.publish();
    expect(outbox.stat(7, 'entry_exit-L7-r1-D1.csv.pgp')).toMatchObject({ size: 1 << 20 });
    expect(outbox.list(7)).toEqual(['entry_exit-L7-r1-D1.csv.pgp']);
    expect(readdirSync(path.join(root, '7'))).toEqual(['entry_exit-L7-r1-D1.csv.pgp']); // the temporary name is gone
  });

  it('a reader in another process, reading while the file is replaced again and again, only ever sees one whole version', async () => {
    const size = 4 << 20;
    const versions = [Buffer.alloc(size, 0x61), Buffer.alloc(size, 0x62)];
    outbox.writeFile(3, 'big.csv.pgp', versions[0]);
    const r = reader(outbox.pathOf(3, 'big.csv.pgp'), size);
    await new Promise((res) => setTimeout(res, 200)); // the reader is reading
    for (let i = 1; i <= 40; i++) {
      outbox.writeFile(3, 'big.csv.pgp', versions[i % 2]);
      await new Promise((res) => setImmediate(res));
    }
    const seen = await r.stop();
    expect(seen.torn).toEqual([]);
    expect(seen.reads).toBeGreaterThan(0);
    expect(outbox.list(3)).toEqual(['big.csv.pgp']);
  });

  it('writeFile is atomic: the old content stays under the name until the new one is complete and renamed', () => {
    outbox.writeFile(4, 'a.manifest.json', 'old\n');
    // What writeFile does, stopped half-way: the new content sits in a temporary file.
    const t = outbox.create(4, 'a.manifest.json');
    writeFileSync(t.path, 'new, but not complete', { flag: 'wx' });
    expect(readFileSync(outbox.pathOf(4, 'a.manifest.json'), 'utf8')).toBe('old\n');
    t.discard(); // the writer gave up (a full disk, a crash): the old file is untouched
    expect(readFileSync(outbox.pathOf(4, 'a.manifest.json'), 'utf8')).toBe('old\n');
    expect(readdirSync(path.join(root, '4'))).toEqual(['a.manifest.json']);
    outbox.writeFile(4, 'a.manifest.json', 'new\n');
    expect(readFileSync(outbox.pathOf(4, 'a.manifest.json'), 'utf8')).toBe('new\n');
    expect(readdirSync(path.join(root, '4'))).toEqual(['a.manifest.json']);
  });

  it('a writeFile whose rename fails leaves no temporary file behind and what was there untouched', () => {
    outbox.writeFile(4, 'a.json', 'old\n');
    mkdirSync(path.join(root, '4', 'b.json')); // a rename onto a directory fails after the data was written
    expect(() => outbox.writeFile(4, 'b.json', 'new\n')).toThrow(/EISDIR/);
    expect(readFileSync(outbox.pathOf(4, 'a.json'), 'utf8')).toBe('old\n');
    expect(readdirSync(path.join(root, '4')).sort()).toEqual(['a.json', 'b.json']);
  });

  it('publish() is done once: a second publish refuses, and discard() after it leaves the published file', () => {
    const t = outbox.create(2, 'x.csv.pgp');
    writeFileSync(t.path, 'x', { flag: 'wx' });
    t.publish();
    expect(() => t.publish()).toThrow(/already published/);
    t.discard();
    expect(readFileSync(outbox.pathOf(2, 'x.csv.pgp'), 'utf8')).toBe('x');
  });

  it('publishing a temporary file nobody wrote fails and publishes nothing', () => {
    const t = outbox.create(2, 'never.csv.pgp');
    expect(() => t.publish()).toThrow(/ENOENT/);
    expect(outbox.list(2)).toEqual([]);
  });
});

describe('outbox port: temporary names', () => {
  it('never end in .csv.pgp, are hidden, unique per call, and list() does not show them', () => {
    const a = outbox.create(9, 'entry_exit-L9-r1-D5.csv.pgp');
    const b = outbox.create(9, 'entry_exit-L9-r1-D5.csv.pgp');
    expect(a.path).not.toBe(b.path);
    for (const t of [a, b]) {
      const name = path.basename(t.path);
      expect(name).not.toMatch(/\.csv\.pgp$/);
      expect(name).toMatch(/^\.entry_exit-L9-r1-D5\.csv\.pgp\.[0-9a-f]{24}\.partial$/);
      expect(path.dirname(t.path)).toBe(path.join(root, '9'));
      writeFileSync(t.path, 'partial bytes', { flag: 'wx' });
    }
    outbox.writeFile(9, 'entry_exit-L9-r1-D4.csv.pgp', 'done');
    expect(outbox.list(9)).toEqual(['entry_exit-L9-r1-D4.csv.pgp']);
  });

  it('two writers of the same name (a job taken over by another worker) write separate files; the last publish wins whole', () => {
    const first = outbox.create(1, 'd.csv.pgp');
    const second = outbox.create(1, 'd.csv.pgp');
    writeFileSync(first.path, 'first', { flag: 'wx' });
    writeFileSync(second.path, 'second', { flag: 'wx' });
    second.publish();
    first.publish();
    expect(readFileSync(outbox.pathOf(1, 'd.csv.pgp'), 'utf8')).toBe('first');
    expect(readdirSync(path.join(root, '1'))).toEqual(['d.csv.pgp']);
  });

  it('list() shows published regular files only: no directories, no symbolic links, no hidden names', () => {
    outbox.writeFile(5, 'a.csv.pgp', 'a');
    mkdirSync(path.join(root, '5', 'sub'));
    symlinkSync('/etc/passwd', path.join(root, '5', 'passwd.csv.pgp'));
    writeFileSync(path.join(root, '5', '.hidden'), 'h');
    expect(outbox.list(5)).toEqual(['a.csv.pgp']);
    expect(outbox.list(6)).toEqual([]); // a link without a folder has no files
  });
});

describe('outbox port: names and link ids are checked, nothing outside the root is reachable', () => {
  const badNames = ['', '.', '..', '../x', '../../etc/passwd', 'a/b', '/etc/passwd', 'x/../../y', 'a\0b', 'a\\b', '.hidden', '.x.csv.pgp.0123.partial', 'x'.repeat(300), 42 as unknown as string];
  const badIds = [0, -1, 1.5, NaN, Infinity, 2 ** 53, '1' as unknown as number, null as unknown as number];

  it.each(badNames.map((n) => [JSON.stringify(n).slice(0, 40), n]))('refuses the name %s in every method', async (_label, name) => {
    expect(() => outbox.pathOf(1, name)).toThrow(/^outbox: file name/);
    expect(() => outbox.create(1, name)).toThrow(/^outbox: file name/);
    expect(() => outbox.writeFile(1, name, 'x')).toThrow(/^outbox: file name/);
    expect(() => outbox.stat(1, name)).toThrow(/^outbox: file name/);
    expect(() => outbox.remove(1, name)).toThrow(/^outbox: file name/);
    await expect(outbox.open(1, name)).rejects.toThrow(/^outbox: file name/);
    expect(tree(base)).toEqual([]); // not even a folder was made
  });

  it.each(badIds.map((id) => [String(id), id]))('refuses the link id %s in every method', async (_label, id) => {
    expect(() => outbox.pathOf(id, 'a.csv.pgp')).toThrow(/^outbox: link id .* is not a positive integer$/);
    expect(() => outbox.create(id, 'a.csv.pgp')).toThrow(/not a positive integer/);
    expect(() => outbox.writeFile(id, 'a.csv.pgp', 'x')).toThrow(/not a positive integer/);
    expect(() => outbox.stat(id, 'a.csv.pgp')).toThrow(/not a positive integer/);
    expect(() => outbox.list(id)).toThrow(/not a positive integer/);
    expect(() => outbox.remove(id, 'a.csv.pgp')).toThrow(/not a positive integer/);
    await expect(outbox.open(id, 'a.csv.pgp')).rejects.toThrow(/not a positive integer/);
    expect(tree(base)).toEqual([]);
  });

  it('a name with dots inside one component stays in the link folder', () => {
    expect(outbox.pathOf(12, 'req..001.result.csv.pgp')).toBe(path.join(root, '12', 'req..001.result.csv.pgp'));
  });

  it('a symbolic link planted under a published name is neither stat()ed nor opened', async () => {
    mkdirSync(path.join(root, '8'), { recursive: true });
    writeFileSync(path.join(base, 'secret'), 'not a delivery');
    symlinkSync(path.join(base, 'secret'), path.join(root, '8', 'x.csv.pgp'));
    expect(outbox.stat(8, 'x.csv.pgp')).toBeNull();
    await expect(outbox.open(8, 'x.csv.pgp')).rejects.toMatchObject({ code: 'ELOOP' });
  });

  it('open() gives a read-only descriptor of the published file for positioned reads', async () => {
    outbox.writeFile(8, 'y.csv.pgp', 'hello outbox');
    const fd = await outbox.open(8, 'y.csv.pgp');
    try {
      const buf = Buffer.alloc(6);
      expect(readSync(fd, buf, 0, 6, 6)).toBe(6);
      expect(buf.toString()).toBe('outbox');
      expect(fstatSync(fd).size).toBe(12);
      expect(() => require('node:fs').writeSync(fd, 'x')).toThrow(/EBADF/);
    } finally {
      closeSync(fd);
    }
    await expect(outbox.open(8, 'missing.csv.pgp')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('remove() deletes one published file; a missing one is fine', () => {
    outbox.writeFile(3, 'a.csv.pgp', 'a');
    outbox.writeFile(3, 'b.csv.pgp', 'b');
    outbox.remove(3, 'a.csv.pgp');
    outbox.remove(3, 'a.csv.pgp');
    outbox.remove(99, 'a.csv.pgp');
    expect(outbox.list(3)).toEqual(['b.csv.pgp']);
  });

  it('the root must be an absolute path', () => {
    expect(() => new DirectoryOutbox('relative/outbox')).toThrow(/must be an absolute path/);
  });
});

describe('outbox port: removeStaleTemps', () => {
  it('removes only temporary files older than the limit: not fresh ones, not published files, not anything outside the link folders', () => {
    const now = new Date();
    const old = new Date(now.getTime() - 48 * 3600e3);
    const stale = outbox.create(1, 'a.csv.pgp');
    writeFileSync(stale.path, 'dead worker', { flag: 'wx' });
    utimesSync(stale.path, old, old);
    const fresh = outbox.create(1, 'b.csv.pgp');
    writeFileSync(fresh.path, 'building now', { flag: 'wx' });
    outbox.writeFile(1, 'c.csv.pgp', 'published long ago');
    utimesSync(outbox.pathOf(1, 'c.csv.pgp'), old, old);
    const other = outbox.create(2, 'd.manifest.json');
    writeFileSync(other.path, 'x', { flag: 'wx' });
    utimesSync(other.path, old, old);
    // Not the outbox's: left alone whatever their age.
    mkdirSync(path.join(root, 'lost+found'));
    writeFileSync(path.join(root, 'lost+found', '.x.partial'), 'x');
    utimesSync(path.join(root, 'lost+found', '.x.partial'), old, old);
    writeFileSync(path.join(root, '.y.partial'), 'y');
    utimesSync(path.join(root, '.y.partial'), old, old);

    expect(outbox.removeStaleTemps(now, 24 * 3600e3)).toBe(2);
    expect(existsSync(stale.path)).toBe(false);
    expect(existsSync(other.path)).toBe(false);
    expect(existsSync(fresh.path)).toBe(true);
    expect(outbox.list(1)).toEqual(['c.csv.pgp']);
    expect(existsSync(path.join(root, 'lost+found', '.x.partial'))).toBe(true);
    expect(existsSync(path.join(root, '.y.partial'))).toBe(true);
    fresh.publish(); // the builder still finishes its file
    expect(outbox.list(1)).toEqual(['b.csv.pgp', 'c.csv.pgp']);
  });

  it('an outbox that does not exist yet has nothing to remove', () => {
    expect(outbox.removeStaleTemps(new Date(), 0)).toBe(0);
  });
});

describe('outbox.dir configuration', () => {
  it('defaults to <data-dir>/outbox; NIA_LINK_OUTBOX_DIR or the file sets it; a relative path is a one-line error', () => {
    const dataDir = path.join(base, 'data');
    expect(loadConfig({ dataDir }, {}).outbox.dir).toBe(path.join(dataDir, 'outbox'));
    expect(openOutbox(loadConfig({ dataDir }, { NIA_LINK_OUTBOX_DIR: '/srv/shared/outbox' })).root).toBe('/srv/shared/outbox');
    mkdirSync(dataDir);
    writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({ outbox: { dir: '/mnt/nfs/outbox' } }));
    expect(loadConfig({ dataDir }, {}).outbox).toEqual({ dir: '/mnt/nfs/outbox', retentionDays: 30 });
    expect(() => loadConfig({ dataDir }, { NIA_LINK_OUTBOX_DIR: 'shared/outbox' })).toThrow(/^invalid configuration: outbox\.dir: must be an absolute path/);
    expect(() => loadConfig({ dataDir }, { NIA_LINK_OUTBOX_DIR: '' })).toThrow(/^invalid configuration: outbox\.dir/);
  });
});
