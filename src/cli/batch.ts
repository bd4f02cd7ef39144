import type { Command } from 'commander';
import { batchList } from '../batch/list';
import type { CliContext } from './context';
import { parseId, printJson } from './context';

export function register(program: Command, ctx: CliContext): void {
  const batch = program.command('batch').description('batch requests and subject lists agencies uploaded to /inbox (R2.2, R3.4)');
  batch
    .command('list')
    .description('uploads, newest first, and their outcome: answered (the result file), in-force or replaced (a subject list), refused (the code)')
    .option('--link <id>', 'only this link')
    .option('--json', 'print a JSON array')
    .action(async (o) => {
      const rows = await batchList(ctx.cdb, o.link === undefined ? undefined : parseId(o.link, 'link'));
      if (o.json) return printJson(rows);
      if (rows.length === 0) return console.log('no uploads');
      for (const r of rows) {
        const what = r.state === 'refused' ? r.code : r.kind === 'subjects' ? `${r.ids ?? '-'} persons` : r.state === 'answered' ? `${r.ids} ids, ${r.matched} matched, ${r.rows} rows → ${r.file}` : '';
        console.log(`${r.id}\tlink ${r.link}\t${r.receivedAt}\t${r.kind}\t${r.name}\t${r.state}\t${what}${r.reference ? `\treference: ${r.reference}` : ''}`);
      }
    });
}
