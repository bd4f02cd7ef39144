import type { Command } from 'commander';
import { UserError } from '../errors';
import { loadCatalogs } from '../registry';
import { reportCsv, reportHtml, usageReport } from '../usagelog';
import { type CliContext, parseDate, parseId, writeOutputFile } from './context';

const FORMATS = ['json', 'csv', 'html'] as const;

export function register(program: Command, ctx: CliContext): void {
  const report = program.command('report').description('reports from the usage log (R4.2, R6.4, R9.1)');
  report
    .command('usage')
    .description('deliveries, rows, fields delivered, downloads by account and IP, pushes, failed logins, online look-ups, by month; the scope of each revision in force')
    .option('--agency <code>', 'every link of this agency')
    .option('--link <id>', 'one link')
    .requiredOption('--from <date>', 'first day (Asia/Taipei), YYYY-MM-DD')
    .requiredOption('--to <date>', 'last day (Asia/Taipei), YYYY-MM-DD')
    .option('--format <format>', `${FORMATS.join('|')}`, 'json')
    .option('--out <file>', 'write to this file instead of standard output')
    .action((o) => {
      if (!(FORMATS as readonly string[]).includes(o.format)) throw new UserError(`--format ${o.format}: use ${FORMATS.join(', ')}`);
      const r = usageReport(
        ctx.cdb,
        { agency: o.agency, linkId: o.link !== undefined ? parseId(o.link, 'link') : undefined },
        parseDate(o.from, '--from'),
        parseDate(o.to, '--to'),
        ctx.clock.now(),
        loadCatalogs(),
      );
      const text = o.format === 'csv' ? reportCsv(r) : o.format === 'html' ? reportHtml(r) : JSON.stringify(r, null, 2) + '\n';
      if (o.out === undefined) return void process.stdout.write(text);
      writeOutputFile(o.out, text);
    });
}
