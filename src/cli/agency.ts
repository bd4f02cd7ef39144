import type { Command } from 'commander';
import { actor, type CliContext, collect, printJson, splitList } from './context';

export function register(program: Command, ctx: CliContext): void {
  const agency = program.command('agency').description('agencies that apply for links');
  agency
    .command('add')
    .description('register an agency (a non-government one names its sponsoring authority, R14.1)')
    .requiredOption('--code <code>', 'agency code, e.g. A001')
    .requiredOption('--name <name>', 'name in Chinese')
    .option('--name-en <name>', 'name in English')
    .option('--non-government', 'a non-government body (非公務機關)')
    .option('--sponsor <code>', 'its competent authority (目的事業主管機關), a registered government agency')
    .option('--email <address>', 'a contact address for notices (repeatable, or comma-separated; R14.2)', collect)
    .option('--by <name>', 'who records it')
    .option('--json', 'print the agency as JSON')
    .action(async (o) => {
      const emails = o.email ? splitList(o.email) : [];
      const row = await ctx.registry.addAgency({ code: o.code, name: o.name, nameEn: o.nameEn, nonGovernment: !!o.nonGovernment, sponsor: o.sponsor, emails }, actor(o.by));
      if (o.json) printJson(row);
      else console.log(`agency ${row.code} added`);
    });
  agency
    .command('set-email <code> [addresses...]')
    .description("replace an agency's contact addresses for notices (R14.2); none clears them")
    .option('--by <name>', 'who records it')
    .option('--json', 'print the agency as JSON')
    .action(async (code: string, addresses: string[], o) => {
      const row = await ctx.registry.setAgencyEmails(code, splitList(addresses), actor(o.by));
      if (o.json) return printJson(row);
      console.log(`agency ${row.code}: ${row.emails.length ? `contact addresses ${row.emails.join(', ')}` : 'no contact address'}`);
    });
  agency
    .command('list')
    .description('list agencies')
    .option('--json', 'print a JSON array')
    .action(async (o) => {
      const rows = (await ctx.registry.listAgencies()).map((a) => ({ code: a.code, name: a.nameZh, nameEn: a.nameEn, government: a.government, sponsor: a.sponsor, emails: a.emails, createdAt: a.createdAt }));
      if (o.json) return printJson(rows);
      for (const a of rows) {
        console.log(`${a.code}\t${a.government ? 'government' : 'non-government (sponsor ' + a.sponsor + ')'}\t${a.name}${a.nameEn ? ' / ' + a.nameEn : ''}\t${a.emails.length ? a.emails.join(', ') : '(no contact address)'}`);
      }
    });
}
