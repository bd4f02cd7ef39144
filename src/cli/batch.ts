import type { Command } from 'commander';
import { inbox } from '../db/repositories';
import type { CliContext } from './context';
import { parseId, printJson } from './context';

/** One upload to /inbox and what became of it, as `batch list` and the console show it. */
export interface BatchListItem {
  id: number;
  link: number;
  name: string;
  kind: string;
  account: string;
  receivedAt: string;
  bytes: number;
  sha256: string;
  state: string;
  code: string | null;
  outcomeAt: string | null;
  reference: string | null;
  ids: number | null;
  matched: number | null;
  rows: number | null;
  file: string | null;
}

const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export function batchList(ctx: Pick<CliContext, 'cdb'>, linkId?: number): BatchListItem[] {
  return inbox.uploadsOf(ctx.cdb.db, { linkId }).map((u) => {
    const o = u.outcome ?? {};
    return {
      id: u.id,
      link: u.linkId,
      name: u.name,
      kind: u.kind,
      account: u.account,
      receivedAt: u.receivedAt,
      bytes: u.bytes,
      sha256: u.sha256,
      state: u.state,
      code: u.outcomeCode,
      outcomeAt: u.state === 'pending' || u.state === 'processing' ? null : u.outcomeAt,
      reference: str(o.reference),
      ids: num(o.valid) ?? num(o.count),
      matched: num(o.matched),
      rows: num(o.rows),
      file: str(o.file),
    };
  });
}

export function register(program: Command, ctx: CliContext): void {
  const batch = program.command('batch').description('batch requests and subject lists agencies uploaded to /inbox (R2.2, R3.4)');
  batch
    .command('list')
    .description('uploads, newest first, and their outcome: answered (the result file), in-force or replaced (a subject list), refused (the code)')
    .option('--link <id>', 'only this link')
    .option('--json', 'print a JSON array')
    .action((o) => {
      const rows = batchList(ctx, o.link === undefined ? undefined : parseId(o.link, 'link'));
      if (o.json) return printJson(rows);
      if (rows.length === 0) return console.log('no uploads');
      for (const r of rows) {
        const what = r.state === 'refused' ? r.code : r.kind === 'subjects' ? `${r.ids ?? '-'} persons` : r.state === 'answered' ? `${r.ids} ids, ${r.matched} matched, ${r.rows} rows → ${r.file}` : '';
        console.log(`${r.id}\tlink ${r.link}\t${r.receivedAt}\t${r.kind}\t${r.name}\t${r.state}\t${what}${r.reference ? `\treference: ${r.reference}` : ''}`);
      }
    });
}
