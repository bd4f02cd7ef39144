import type { Command } from 'commander';
import { UserError } from '../errors';
import { actor, type CliContext, printJson } from './context';

export function register(program: Command, ctx: CliContext): void {
  const defender = program.command('defender').description('the SFTP brute-force defender: addresses banned for failed logins');
  // Bans live in Redis (every SFTP process shares them); modules load only when a command runs.
  const withDefender = async <T>(fn: (d: import('../sftp').Defender) => Promise<T>): Promise<T> => {
    const [{ Redis }, { queuePrefix, resolveRedis }, { Defender }] = await Promise.all([import('ioredis'), import('../queue'), import('../sftp')]);
    const { url } = await resolveRedis(ctx.config, { spawn: false });
    const redis = new Redis(url, { maxRetriesPerRequest: 1 });
    try {
      return await fn(new Defender(redis, queuePrefix(ctx.config), ctx.config.sftp.defender));
    } finally {
      redis.disconnect();
    }
  };
  defender
    .command('list')
    .description('addresses banned now, with when the ban ends')
    .option('--json', 'print a JSON array')
    .action(async (o) => {
      const bans = await withDefender((d) => d.list());
      if (o.json) return printJson(bans);
      if (bans.length === 0) return console.log('no address is banned');
      for (const b of bans) console.log(`${b.ip}\tuntil ${b.until}\tscore ${b.score}, ban ${b.bans} in 24 h, last failure: ${b.reason}`);
    });
  defender
    .command('unban <ip>')
    .description('lift a ban now (recorded in the usage log)')
    .option('--by <name>', 'who does it')
    .action(async (ip: string, o) => {
      const { liftBan } = await import('../sftp');
      const lifted = await withDefender((d) => liftBan(d, ctx.cdb, ctx.clock, ip, actor(o.by)));
      if (!lifted) throw new UserError(`${ip} is not banned (see \`nia-link defender list\`)`, 'defender.not-banned');
      console.log(`${ip} is no longer banned`);
    });
}
