import type { Command } from 'commander';
import { actor, type CliContext, parseId, printJson } from './context';

export function register(program: Command, ctx: CliContext): void {
  const change = program.command('change').description('decide change requests (R5.1)');
  change
    .command('approve <id>')
    .description('approve: the link gets its next revision')
    .option('--by <name>', 'deciding officer')
    .option('--letter-no <text>', "number of NIA's reply letter (required, R-F9)")
    .option('--letter-date <date>', 'date of that letter, YYYY-MM-DD, not in the future (required)')
    .option('--json', 'print the link as JSON')
    .action(async (id, o) => {
      const approved = await ctx.registry.approveChange(parseId(id, 'change request'), actor(o.by), { letterNo: o.letterNo, letterDate: o.letterDate });
      // A stop dated today ends the link now, through the path that opens its disposal task and notifies the agency.
      const due = await ctx.services.compliance.endDue(actor(o.by), approved.link.id);
      await due.mailed;
      const r = due.ended.length ? { change: approved.change, link: await ctx.registry.show(approved.link.id) } : approved;
      if (o.json) return printJson(r);
      console.log(`change request ${r.change.id} approved: link ${r.link.id} is at revision ${r.link.revision} (${r.link.status})`);
    });
  change
    .command('reject <id>')
    .description('reject: the link stays as it is')
    .requiredOption('--reason <text>', 'why')
    .option('--by <name>', 'deciding officer')
    .action(async (id, o) => {
      const cr = await ctx.registry.rejectChange(parseId(id, 'change request'), o.reason, actor(o.by));
      console.log(`change request ${cr.id} rejected`);
    });
}
