import { mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeOutputFile } from '../../src/cli/context';

describe('files the commands write (--out)', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'nl-out-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('never follow a link planted at a temporary name beside the output', () => {
    const victim = path.join(dir, 'victim');
    writeFileSync(victim, 'untouched');
    // Every name an earlier version could have chosen for this process.
    symlinkSync(victim, path.join(dir, `.report.csv.${process.pid}.tmp`));
    writeOutputFile(path.join(dir, 'report.csv'), 'a,b\n');
    expect(readFileSync(victim, 'utf8')).toBe('untouched');
    expect(readFileSync(path.join(dir, 'report.csv'), 'utf8')).toBe('a,b\n');
    expect(readdirSync(dir).sort()).toEqual([`.report.csv.${process.pid}.tmp`, 'report.csv', 'victim']);
  });

  it('leave nothing behind when the directory does not exist, with a one-line error', () => {
    expect(() => writeOutputFile(path.join(dir, 'nope', 'x.csv'), 'x')).toThrow(/^cannot write .*x\.csv \(no such directory\)$/);
    expect(readdirSync(dir)).toEqual([]);
  });
});
