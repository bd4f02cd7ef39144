import type { Command } from 'commander';
import { request } from 'node:https';
import path from 'node:path';
import { KEY_FILES, keyedIdHash, queryIdSecret } from '../crypto';
import { queries } from '../db/repositories';
import { UserError } from '../errors';
import { type CliContext, collect, parseId, printJson, readInputFile, splitList } from './context';

/** Online query (R2.1): a reference client, and "who looked up this person" for auditors. */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('query <link>')
    .description("look up ids over the online-query API as an agency's system does (reference client)")
    .requiredOption('--cert <file>', 'client certificate (PEM) registered on the link')
    .requiredOption('--key <file>', 'its private key (PEM)')
    .requiredOption('--id <id>', 'an id to look up (repeatable, or comma-separated)', collect)
    .option('--reference <text>', 'the case or document number the look-up is for', 'nia-link reference client')
    .option('--url <url>', 'the query service (default https://127.0.0.1:<query port>)')
    .option('--ca <file>', "the server's certificate to trust (default this installation's)")
    .action(async (linkId, o) => {
      const link = await ctx.registry.show(parseId(linkId, 'link'));
      const base = new URL(o.url ?? `https://127.0.0.1:${ctx.config.query.port}`);
      if (base.protocol !== 'https:') throw new UserError('--url must be https://');
      const ca = readInputFile(o.ca ?? path.join(ctx.config.keysDir, KEY_FILES.queryCert), 'server certificate');
      const body = JSON.stringify({ ids: splitList(o.id), reference: o.reference });
      const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(
          new URL(`/query/v1/${encodeURIComponent(link.dataset)}`, base),
          { method: 'POST', cert: readInputFile(o.cert, 'certificate'), key: readInputFile(o.key, 'key'), ca, servername: base.hostname === '127.0.0.1' ? 'localhost' : base.hostname, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: 15000 },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d) => (text += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          },
        );
        req.on('timeout', () => req.destroy(new Error('timed out')));
        req.on('error', (e) => reject(new UserError(`query service at ${base.origin}: ${e.message}`)));
        req.end(body);
      });
      let parsed: unknown;
      try {
        parsed = JSON.parse(answer.text);
      } catch {
        throw new UserError(`query service answered ${answer.status} with no JSON`);
      }
      printJson(parsed);
      if (answer.status !== 200) process.exitCode = 1;
    });

  const log = program.commands.find((c) => c.name() === 'log');
  if (!log) throw new Error('the log command must be registered before query');
  log
    .command('who-queried')
    .description('online queries that looked up this id: when, by which link and certificate, and why')
    .requiredOption('--id <id>', 'the id (person_id, arc_no, …)')
    .option('--json', 'print a JSON array')
    .action(async (o) => {
      const hash = keyedIdHash(queryIdSecret(ctx.config.keysDir), String(o.id));
      const rows = (await queries.whoQueried(ctx.cdb.db, hash)).map((r) => {
        const d = JSON.parse(r.detail) as { reference?: string; cert?: string; code?: string };
        return { seq: r.seq, at: r.at, type: r.type, agency: r.agency, link: r.linkId, ip: r.ip, reference: d.reference ?? null, cert: d.cert ?? null };
      });
      if (o.json) return printJson(rows);
      if (rows.length === 0) console.log('no online query looked up this id');
      for (const r of rows) console.log(`${r.at}\tseq ${r.seq}\t${r.type}\t${r.agency}\tlink ${r.link}\t${r.ip}\treference: ${r.reference ?? '-'}`);
    });
}
