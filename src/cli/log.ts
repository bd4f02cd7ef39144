import type { Command } from 'commander';
import { listLog, verifyLog } from '../usagelog';
import { type CliContext, parseDate, parseId, printJson } from './context';
import { startOfTaipeiDay } from '../domain';

export function register(program: Command, ctx: CliContext): void {
  const log = program.command('log').description('the usage log (R6): list and verify');
  log
    .command('list')
    .description('list usage-log records, oldest first')
    .option('--link <id>', 'only this link')
    .option('--type <type>', 'only this event type, e.g. link.approved')
    .option('--since <date>', 'from this day on (Asia/Taipei), YYYY-MM-DD')
    .option('--limit <n>', 'at most this many records')
    .option('--json', 'print a JSON array')
    .action((o) => {
      const rows = listLog(ctx.cdb.db, {
        linkId: o.link !== undefined ? parseId(o.link, 'link') : undefined,
        type: o.type,
        since: o.since !== undefined ? startOfTaipeiDay(parseDate(o.since, '--since')).toISOString() : undefined,
        limit: o.limit !== undefined ? parseId(o.limit, '--limit') : undefined,
      });
      if (o.json) return printJson(rows.map((r) => ({ ...r, detail: JSON.parse(r.detail) })));
      for (const r of rows) {
        console.log([r.seq, r.at, r.type, r.agency ?? '-', r.linkId ?? '-', r.actor ?? '-', r.ip ?? '-', r.object ?? '-', r.detail].join('\t'));
      }
    });
  log
    .command('verify')
    .description('check the hash chain: any edited, removed, inserted or reordered record is named (R6.3)')
    .option('--json', 'print the result as JSON')
    .action((o) => {
      const r = verifyLog(ctx.cdb);
      if (o.json) printJson(r);
      else if (r.ok) console.log(`usage log verified: ${r.records} records, seq ${r.firstSeq ?? '-'}–${r.lastSeq ?? '-'}, head ${r.headHash ?? '-'}`);
      else console.error(`usage log FAILED verification at seq ${r.bad!.seq}: ${r.bad!.reason} (${r.records} records before it verified)`);
      if (!r.ok) process.exitCode = 1;
    });
}
