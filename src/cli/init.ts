import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { ensureKeys } from '../crypto';
import { controlDbFile } from '../db';
import type { CliContext } from './context';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .description('create the data directory, control database and keys (idempotent: existing keys are never replaced)')
    .action(async () => {
      const cfg = ctx.config;
      const existed = existsSync(controlDbFile(cfg.dataDir));
      ctx.openDb(true);
      const report = await ensureKeys(cfg.keysDir, ctx.clock.now());
      if (!existed) console.log(`control database created: ${ctx.cdb.file}`);
      for (const k of report.created) console.log(`key created: ${cfg.keysDir}/${k}`);
      if (existed && report.created.length === 0) console.log(`already initialised: ${cfg.dataDir} (nothing changed)`);
      else console.log(`initialised ${cfg.dataDir}`);
    });
}
