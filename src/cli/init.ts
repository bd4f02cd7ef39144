import type { Command } from 'commander';
import { existsSync, mkdirSync } from 'node:fs';
import { ensureKeys } from '../crypto';
import { controlDbFile } from '../db';
import * as installation from '../db/repositories/installation';
import { DRILL_MARK, systemClock } from '../domain';
import { UserError } from '../errors';
import { CliContext } from './context';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .description('create the data directory, control database and keys (idempotent: existing keys are never replaced)')
    .option('--drill', `a drill installation, marked ${DRILL_MARK} everywhere, whose commands may run as of another day (--at); fixed once made`)
    .action(async (o: { drill?: boolean }) => {
      const cfg = ctx.config;
      // Whether the clock may move depends on the mode, so it is settled before anything is written.
      const moved = ctx.override();
      const onFile = !cfg.database.url;
      if (onFile && !existsSync(controlDbFile(cfg.dataDir)) && moved && !o.drill) throw CliContext.productionClock(moved.what);
      const existed = onFile ? existsSync(controlDbFile(cfg.dataDir)) : true;
      mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
      const cdb = ctx.openDb(true);
      const recorded = await installation.recorded(cdb.db);
      if (!onFile && recorded === undefined && moved && !o.drill) throw CliContext.productionClock(moved.what);
      if (recorded === 'production' && o.drill) {
        throw new UserError(`${cfg.dataDir} is a production installation: it cannot become a drill (initialise a new data directory with --drill)`, 'installation.mode');
      }
      if (recorded === undefined && o.drill && (await installation.used(cdb.db))) {
        throw new UserError(`${cfg.dataDir} holds an installation already in use: it cannot become a drill (initialise a new data directory with --drill)`, 'installation.mode');
      }
      const mode = recorded ?? (o.drill ? 'drill' : 'production');
      if (moved && mode !== 'drill') throw CliContext.productionClock(moved.what);
      if (recorded === undefined) await cdb.write((tx) => installation.record(tx, mode, systemClock.now()));
      const report = await ensureKeys(cfg.keysDir, (await ctx.settleClock()).now());
      if (!existed) console.log(`control database created: ${cdb.where}`);
      else if (!onFile && recorded === undefined) console.log(`control database on PostgreSQL: ${cdb.where}`);
      if (recorded === undefined && mode === 'drill') console.log(`${DRILL_MARK}: a drill installation; its records, pages, forms, manifests and notices say so`);
      for (const k of report.created) console.log(`key created: ${cfg.keysDir}/${k}`);
      if (existed && recorded !== undefined && report.created.length === 0) console.log(`already initialised: ${cfg.dataDir}${mode === 'drill' ? ` (${DRILL_MARK})` : ''} (nothing changed)`);
      else console.log(`initialised ${cfg.dataDir}${mode === 'drill' ? ` (${DRILL_MARK})` : ''}`);
    });
}
