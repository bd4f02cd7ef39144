import type { Command } from 'commander';
import type { VendorRow } from '../registry';
import { actor, type CliContext, collect, parseId, printJson, splitList } from './context';

const line = (v: VendorRow) =>
  [v.id, v.linkId, v.parentId ? `sub of ${v.parentId}` : 'contractor', v.name, v.contact, v.machines.join(','), v.removedAt ? `removed ${v.removedAt}` : 'current'].join('\t');

export function register(program: Command, ctx: CliContext): void {
  const vendor = program.command('vendor').description("outsourced vendors of a link and their dedicated machines (R8.1, R9.1)");

  vendor
    .command('add')
    .description("record a contractor (or, with --parent, a sub-contractor); its machines must be inside the link's allow-list")
    .requiredOption('--link <id>', 'the link whose data it handles')
    .requiredOption('--name <name>', 'company name')
    .requiredOption('--contact <text>', 'contact person, phone or address')
    .requiredOption('--machines <cidrs>', 'its dedicated machines: IP addresses or CIDRs, comma-separated (repeatable)', collect)
    .option('--parent <vendorId>', 'the contractor this one works for (a sub-contractor)')
    .option('--by <name>', 'who records it')
    .option('--json', 'print the vendor as JSON')
    .action(async (o) => {
      const v = await ctx.services.vendors.add(
        {
          linkId: parseId(o.link, 'link'),
          name: o.name,
          contact: o.contact,
          machines: splitList(o.machines),
          parentId: o.parent !== undefined ? parseId(o.parent, 'vendor') : undefined,
        },
        actor(o.by),
      );
      if (o.json) return printJson(v);
      console.log(`vendor ${v.id} "${v.name}" recorded for link ${v.linkId}: machines ${v.machines.join(', ')}`);
      console.log(String(v.id));
    });

  vendor
    .command('list')
    .description('current vendors (all links, or one)')
    .option('--link <id>', 'only this link')
    .option('--all', 'removed vendors too')
    .option('--json', 'print a JSON array')
    .action(async (o) => {
      const rows = await ctx.services.vendors.list({ linkId: o.link !== undefined ? parseId(o.link, 'link') : undefined, removed: !!o.all });
      if (o.json) return printJson(rows);
      for (const v of rows) console.log(line(v));
    });

  vendor
    .command('show <id>')
    .description('one vendor: its machines, sub-contractors and the audits that named it, with the evidence it gave (R9.2)')
    .option('--json', 'print as JSON')
    .action(async (id, o) => {
      const v = await ctx.services.vendors.show(parseId(id, 'vendor'));
      if (o.json) return printJson(v);
      console.log(`vendor ${v.id} "${v.name}" (${v.parentId ? `sub-contractor of vendor ${v.parentId}` : 'contractor'}) of link ${v.linkId}, agency ${v.agency}: ${v.removedAt ? `removed ${v.removedAt}` : 'current'}`);
      console.log(`  contact: ${v.contact}`);
      console.log(`  machines: ${v.machines.join(', ')}`);
      for (const c of v.subcontractors) console.log(`  sub-contractor ${c.id} "${c.name}"${c.removedAt ? ` (removed ${c.removedAt})` : ''}`);
      if (v.audits.length === 0) console.log('  audits: none');
      for (const a of v.audits) console.log(`  audit ${a.id}\t${a.date}\t${a.kind}\t${a.auditor}\t${a.summary}${a.evidence ? `\tevidence: ${a.evidence}` : ''}`);
    });

  vendor
    .command('remove <id>')
    .description("a vendor leaves: files an ips change request dropping its machines from the link's allow-list")
    .option('--reason <text>', 'why')
    .option('--by <name>', 'who records it')
    .option('--json', 'print the result as JSON')
    .action(async (id, o) => {
      const r = await ctx.services.vendors.remove(parseId(id, 'vendor'), o.reason, actor(o.by));
      if (o.json) return printJson(r);
      console.log(`vendor ${r.vendor.id} "${r.vendor.name}" removed from link ${r.vendor.linkId}`);
      if (r.changeId !== null) {
        console.log(`change request ${r.changeId} (ips) filed: allow-list becomes ${r.allowIps!.join(', ')} once approved (nia-link change approve ${r.changeId})`);
      }
    });
}
