import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../config';
import { openControlDb, type ControlDb } from '../db';
import { isValidDate, systemClock, type Clock } from '../domain';
import { UserError } from '../errors';
import { buildServices, type Services } from '../services';

/** What a command needs, opened on first use and closed when the command ends. */
export class CliContext {
  private _config?: Config;
  private _cdb?: ControlDb;
  private _services?: Services;
  readonly clock: Clock = systemClock;

  constructor(private readonly dataDirFlag: () => string | undefined) {}

  get config(): Config {
    return (this._config ??= loadConfig({ dataDir: this.dataDirFlag() }));
  }
  openDb(create = false): ControlDb {
    return (this._cdb ??= openControlDb(this.config.dataDir, { create }));
  }
  get cdb(): ControlDb {
    return this.openDb(false);
  }
  get services(): Services {
    return (this._services ??= buildServices(this.config, this.cdb, this.clock));
  }
  get registry() {
    return this.services.registry;
  }
  close(): void {
    this._cdb?.close();
  }
}

/** Who did it: `--by NAME` when given, otherwise the operating-system user running the command. */
export function actor(by?: string): string {
  if (by && by.trim()) return by.trim();
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    return 'cli';
  }
}

export function readInputFile(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`${what} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : 'cannot read (' + code + ')'}`);
  }
}

/** Write a whole file or nothing: a temporary name beside it, renamed into place. */
export function writeOutputFile(file: string, content: Buffer | string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, content, { mode: 0o600 });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`cannot write ${file} (${code === 'ENOENT' ? 'no such directory' : code})`);
  }
}

export const basename = (file: string) => path.basename(file);

export function parseId(text: string, what = 'id'): number {
  if (!/^[1-9]\d{0,15}$/.test(text)) throw new UserError(`${what} '${text}' is not a number`);
  return Number(text);
}

export function parseDate(text: string, flag: string): string {
  if (!isValidDate(text)) throw new UserError(`${flag} '${text}' is not a date (YYYY-MM-DD)`);
  return text;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function splitList(values: string[] | string | undefined): string[] {
  const list = Array.isArray(values) ? values : values ? [values] : [];
  return list.flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
}
