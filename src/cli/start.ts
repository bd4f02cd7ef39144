import type { Command } from 'commander';
import { ROLES, type Role } from '../roles';
import { UserError } from '../errors';
import { type CliContext, collect, splitList } from './context';

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
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) return;
          stopping = true;
          console.log(`${signal}: stopping (draining workers)…`);
          const force = setTimeout(() => {
            console.error('shutdown took longer than 30 s; exiting');
            process.exit(1);
          }, 30000);
          force.unref();
          svc.stop().then(
            () => {
              console.log('stopped');
              // Everything the service owns is closed; timers of connections abandoned to a Redis
              // that is gone (BullMQ's, ioredis's) do not hold the process more than a second.
              setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref();
              resolve();
            },
            (err: Error) => {
              console.error(`nia-link: stopping failed: ${err.message}`);
              process.exit(1);
            },
          );
        };
        // Kept after the first: a signal to the process group may come twice (npx forwards what its
        // group already received), and a second one without a listener would kill the process
        // before it has stopped its embedded Redis.
        process.on('SIGINT', () => stop('SIGINT'));
        process.on('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
