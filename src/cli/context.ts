import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../config';
import { replaceFile } from '../crypto/secret-file';
import { openControlDb, type ControlDb } from '../db';
import { openControl } from '../db/open';
import { modeOf } from '../db/repositories/installation';
import { instantOnTaipeiDay, isValidDate, shiftedClock, systemClock, type Clock } from '../domain';
import { UserError } from '../errors';
import { buildServices, type Services } from '../services';

/** The program's own options, which every command shares. */
export interface GlobalFlags {
  dataDir?: string;
  at?: string;
}

/** A moved clock the command asked for. */
interface ClockOverride {
  what: '--at' | 'NIA_LINK_CLOCK';
  start: Date;
}

/**
 * What a command needs, opened on first use and closed when the command ends.
 *
 * The clock is made here, once, for every service of the command (R6.6): the system's time, except
 * on a drill installation, where `--at DAY` (or `NIA_LINK_CLOCK`, an instant, for a whole process)
 * runs the command as of another day. A production installation refuses both before anything is
 * done; its read-only views (`compliance status`, `finding list`) may still show another day.
 */
export class CliContext {
  private _config?: Config;
  private _cdb?: ControlDb;
  private _services?: Services;
  private _clock?: Clock;
  private readonly previews = new WeakSet<Command>();
  private previewing = false;

  constructor(
    private readonly flags: () => GlobalFlags,
    /** NIA_LINK_CLOCK as the process was given it. */
    private readonly clockEnv?: string,
  ) {}

  get config(): Config {
    return (this._config ??= loadConfig({ dataDir: this.flags().dataDir }));
  }

  /**
   * The command's clock. A moved one depends on the installation's mode, read from the database: it is
   * settled before the command's action runs (`beforeAction`), or by a command that settles the mode
   * itself (init, demo) with `settleClock()` once it has; the system's clock needs nothing settled.
   */
  get clock(): Clock {
    if (this._clock) return this._clock;
    if (this.override()) throw new Error('CliContext: the moved clock is read before it was settled (await settleClock())');
    return (this._clock = systemClock);
  }

  /** Make the command's clock (reading the installation's mode when the clock is moved), once. */
  async settleClock(): Promise<Clock> {
    return (this._clock ??= await this.makeClock());
  }

  /** Whether this installation is a drill (init --drill); it never changes. */
  async isDrill(): Promise<boolean> {
    return (await modeOf(this.cdb.db)) === 'drill';
  }

  override(): ClockOverride | undefined {
    const at = this.flags().at;
    if (at !== undefined) {
      if (!isValidDate(at)) throw new UserError(`--at '${at}' is not a date (YYYY-MM-DD)`);
      return { what: '--at', start: instantOnTaipeiDay(at, systemClock.now()) };
    }
    if (this.clockEnv !== undefined && this.clockEnv !== '') {
      const t = /^\d{4}-\d{2}-\d{2}T/.test(this.clockEnv) ? Date.parse(this.clockEnv) : NaN;
      if (Number.isNaN(t)) throw new UserError(`NIA_LINK_CLOCK '${this.clockEnv}' is not an ISO instant (e.g. 2026-03-01T09:00:00+08:00)`);
      return { what: 'NIA_LINK_CLOCK', start: new Date(t) };
    }
    return undefined;
  }

  /** The refusal of a moved clock on a production installation. */
  static productionClock(what: string): UserError {
    return new UserError(`${what} exists only on drill installations (nia-link init --drill): on a production installation every action happens now`, 'clock.production');
  }

  private async makeClock(): Promise<Clock> {
    const o = this.override();
    if (!o) return systemClock;
    if (!(await this.isDrill())) {
      // The process-wide clock is refused outright; a view's own --at only shows another day.
      if (this.clockEnv) throw CliContext.productionClock('NIA_LINK_CLOCK');
      if (this.previewing) return systemClock;
      throw CliContext.productionClock(o.what);
    }
    return shiftedClock(o.start, systemClock);
  }

  /** A read-only command whose `--at` shows another day, on any installation. */
  preview(cmd: Command): Command {
    this.previews.add(cmd);
    return cmd;
  }

  /** The day a preview command shows: its `--at`, or today. */
  previewDate(): string | undefined {
    return this.override()?.what === '--at' ? this.flags().at : undefined;
  }

  /** Before a command's action: a moved clock on a production installation is refused before anything is done. */
  async beforeAction(cmd: Command, selfChecked: boolean): Promise<void> {
    this.previewing = this.previews.has(cmd);
    // A PostgreSQL control database is reached (and migrated) before the action: that waits for the
    // server, which a command's synchronous `cdb` cannot. `start` opens its own (and this one only
    // to learn whether a moved clock is allowed); `demo` refuses to run on one.
    if (this.config.database.url && !this._cdb && cmd.name() !== 'demo' && (cmd.name() !== 'start' || this.override())) this._cdb = await openControl(this.config);
    if (!selfChecked && this.override()) await this.settleClock();
  }
  openDb(create = false): ControlDb {
    if (this._cdb) return this._cdb;
    if (this.config.database.url) throw new Error('the PostgreSQL control database is opened before a command runs (beforeAction)');
    return (this._cdb = openControlDb(this.config.dataDir, { create }));
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
  async close(): Promise<void> {
    await this._cdb?.close();
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

/** Write a whole file or nothing (an unguessable temporary name beside it, renamed into place). */
export function writeOutputFile(file: string, content: Buffer | string): void {
  try {
    replaceFile(file, content, 0o600);
  } catch (err) {
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
