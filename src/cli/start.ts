import type { Command } from 'commander';
import { ROLES, type Role } from '../roles';
import { UserError } from '../errors';
import { type CliContext, collect, splitList } from './context';
import { untilSignalled } from './signals';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('start')
    .description(`run the service: every role, or those named with --role (${ROLES.join(', ')})`)
    .option('--role <role>', 'a role to run (repeatable)', collect)
    .action(async (o) => {
      const roles = o.role ? splitList(o.role) : [...ROLES];
      for (const r of roles) if (!(ROLES as readonly string[]).includes(r)) throw new UserError(`unknown role '${r}' (one of ${ROLES.join(', ')})`);
      // Loaded here, not at the top: other commands should not pay for the service's modules.
      const { startService } = await import('../main');
      const svc = await startService(ctx.config, roles as Role[], (line) => console.log(line), ctx.clock);
      await untilSignalled(() => svc.stop(), 'stopping (draining workers)…');
    });
}
