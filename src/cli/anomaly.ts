import type { Command } from 'commander';
import { UserError } from '../errors';
import { listAnomalies, RULES, scanAnomalies } from '../usagelog';
import { type CliContext, parseId, printJson } from './context';

const STATUSES = ['open', 'dismissed', 'finding'] as const;

export function register(program: Command, ctx: CliContext): void {
  const anomaly = program.command('anomaly').description('R7.1: anomalies the scan found in the usage log');
  anomaly
    .command('list')
    .description('stored anomalies, newest first')
    .option('--rule <rule>', `only this rule: ${RULES.join(', ')}`)
    .option('--link <id>', 'only this link')
    .option('--status <status>', STATUSES.join('|'))
    .option('--json', 'print a JSON array')
    .action(async (o) => {
      if (o.rule !== undefined && !(RULES as readonly string[]).includes(o.rule)) throw new UserError(`--rule ${o.rule}: use one of ${RULES.join(', ')}`);
      if (o.status !== undefined && !(STATUSES as readonly string[]).includes(o.status)) throw new UserError(`--status ${o.status}: use one of ${STATUSES.join(', ')}`);
      const rows = await listAnomalies(ctx.cdb, { rule: o.rule, linkId: o.link !== undefined ? parseId(o.link, 'link') : undefined, status: o.status });
      if (o.json) return printJson(rows);
      if (!rows.length) return console.log('no anomalies');
      for (const a of rows) console.log([a.id, a.rule, a.status, a.linkId ?? '-', a.ip ?? '-', a.count, `${a.firstAt}..${a.lastAt}`, a.summary, `seq ${a.evidence.slice(0, 10).join(',')}${a.evidence.length > 10 ? ',…' : ''}`].join('\t'));
    });
  anomaly
    .command('scan')
    .description('run the rules over the records written since the last scan now (the scheduler does this every anomaly.everyMinutes)')
    .option('--json', 'print the result as JSON')
    .action(async (o) => {
      const r = await scanAnomalies(ctx.cdb, ctx.config.anomaly, ctx.clock.now());
      if (o.json) return printJson(r);
      console.log(`scanned ${r.scanned} record(s) through seq ${r.through}: ${r.detected} new anomal${r.detected === 1 ? 'y' : 'ies'}, ${r.updated} updated`);
    });
}
