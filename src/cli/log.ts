import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { startOfTaipeiDay } from '../domain';
import { UserError } from '../errors';
import {
  archiveLog,
  createCheckpoint,
  exportCheckpoints,
  exportEvidence,
  listArchives,
  listCheckpoints,
  listLog,
  verifyEvidence,
  verifyUsageLog,
  type VerifyReport,
} from '../usagelog';
import { evidenceKeyFile } from '../usagelog/evidence';
import { actor, type CliContext, collect, parseDate, parseId, printJson, writeOutputFile } from './context';
import { progress } from './progress';

export const archiveDir = (dataDir: string) => path.join(dataDir, 'archive');

function verifiedLine(r: VerifyReport): string {
  const parts = [`usage log verified: ${r.records} records`];
  if (r.firstSeq !== null) parts[0] += `, seq ${r.firstSeq}–${r.lastSeq}, head ${r.headHash}`;
  const c = r.checkpoints;
  if (c.database || c.exported) parts.push(`checkpoints: ${c.database} in the database, ${c.exported} exported, newest seq ${c.newestSeq} — all agree, signed by ${r.signingKey}`);
  if (r.archived) parts.push(`archived: seq 1–${r.archived.throughSeq} in ${r.archived.archives} signed archive(s), ${r.archived.checked} re-read`);
  return [parts.join('; '), ...r.notes.map((n) => `note: ${n}`)].join('\n');
}

function failedLine(seq: number, reason: string, before: number): string {
  return `usage log FAILED verification at seq ${seq}: ${reason} (${before} records before it verified)`;
}

export function register(program: Command, ctx: CliContext): void {
  const log = program.command('log').description('the usage log (R6): list, verify, checkpoints, archives, evidence');
  log
    .command('list')
    .description('list usage-log records, oldest first')
    .option('--link <id>', 'only this link')
    .option('--type <type>', 'only this event type, e.g. link.approved')
    .option('--since <date>', 'from this day on (Asia/Taipei), YYYY-MM-DD')
    .option('--limit <n>', 'at most this many records')
    .option('--json', 'print a JSON array')
    .action(async (o) => {
      const rows = await listLog(ctx.cdb.db, {
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
    .description('check chain, contiguity, digests, archive anchors and checkpoints; exit 1 naming the first bad seq (R6.3)')
    .option('--checkpoints <file>', 'an exported checkpoint file (repeatable): truncation after it is detected', collect, [])
    .option('--archive <path>', 'an archive (manifest, records file or directory of archives; repeatable)', collect, [])
    .option('--evidence <dir>', 'check an evidence package offline instead (no database needed)')
    .option('--key <file>', "with --evidence: NIA's public key as you obtained it (default: this installation's; never the package's own copy)")
    .option('--json', 'print the result as JSON')
    .action(async (o) => {
      if (o.evidence !== undefined) {
        const bar = progress('evidence package', { json: o.json });
        bar.note('verifying');
        let r: Awaited<ReturnType<typeof verifyEvidence>>;
        try {
          r = await verifyEvidence(o.evidence, evidenceKeyFile(o.key, ctx.config.keysDir));
        } finally {
          bar.done();
        }
        if (o.json) printJson(r);
        else if (r.ok) console.log(`evidence package verified: link ${r.linkId} (${r.agency}), seq ${r.fromSeq}–${r.toSeq}, ${r.records} records (${r.full} in full), ${r.checkpoints} checkpoint(s); signed by ${r.signingKey}`);
        else console.error(`evidence package FAILED verification at seq ${r.bad!.seq}: ${r.bad!.reason}`);
        if (!r.ok) process.exitCode = 1;
        return;
      }
      if (o.key !== undefined) throw new UserError('--key goes with --evidence');
      const bar = progress('usage log', { json: o.json });
      bar.note('verifying chain, digests, anchors and checkpoints');
      let r: VerifyReport;
      try {
        r = await verifyUsageLog(ctx.cdb, { keysDir: ctx.config.keysDir, checkpointFiles: o.checkpoints, archives: o.archive });
      } finally {
        bar.done();
      }
      if (o.json) printJson(r);
      else if (r.ok) console.log(verifiedLine(r));
      else console.error(failedLine(r.bad!.seq, r.bad!.reason, r.records));
      if (!r.ok) process.exitCode = 1;
    });
  log
    .command('checkpoint')
    .description("sign the log's head (seq, hash, time) with NIA's key, after checking the records since the last checkpoint")
    .option('--json', 'print the checkpoint as JSON')
    .action(async (o) => {
      const r = await createCheckpoint(ctx.cdb, ctx.config.keysDir, ctx.clock.now());
      if (o.json) return printJson({ created: r.created, ...r.checkpoint });
      console.log(`${r.created ? 'checkpoint signed' : 'no new records since the checkpoint'} at seq ${r.checkpoint.seq}, hash ${r.checkpoint.hash}, ${r.checkpoint.at}`);
    });
  log
    .command('checkpoints')
    .description('list the signed checkpoints, or export them for an auditor to keep off this machine')
    .option('--export <file>', 'write every checkpoint with the public key that checks them (JSON)')
    .option('--json', 'print the list as JSON')
    .action(async (o) => {
      if (o.export !== undefined) {
        const e = await exportCheckpoints(ctx.cdb, ctx.config.keysDir, ctx.clock.now());
        writeOutputFile(o.export, JSON.stringify(e, null, 2) + '\n');
        const newest = e.checkpoints[e.checkpoints.length - 1];
        console.log(`${e.checkpoints.length} checkpoint(s) exported to ${o.export}${newest ? ` (newest seq ${newest.seq})` : ''}; keep it off this machine and verify with \`nia-link log verify --checkpoints ${o.export}\``);
        return;
      }
      const rows = await listCheckpoints(ctx.cdb);
      if (o.json) return printJson(rows);
      for (const c of rows) console.log([c.seq, c.hash, c.at, c.keyFingerprint].join('\t'));
    });
  log
    .command('archive')
    .description('R6.2: move records older than DATE (at least usageLog.retentionYears back) to a signed archive, then remove them')
    .requiredOption('--before <date>', 'archive records before this day (Asia/Taipei), YYYY-MM-DD')
    .option('--out <dir>', 'where the archive files go (default <data-dir>/archive)')
    .option('--json', 'print the result as JSON')
    .action(async (o) => {
      const before = parseDate(o.before, '--before');
      const r = await archiveLog(ctx.cdb, {
        keysDir: ctx.config.keysDir,
        dir: path.resolve(o.out ?? archiveDir(ctx.config.dataDir)),
        before,
        retentionYears: ctx.config.usageLog.retentionYears,
        now: ctx.clock.now(),
        actor: actor(),
      });
      if (o.json) return printJson(r);
      if (!r) return console.log(`no usage-log records before ${before}: nothing archived`);
      console.log(`archived seq ${r.fromSeq}–${r.toSeq} (${r.records} records) to ${r.manifestFile}; keep a copy off this machine`);
    });
  log
    .command('archives')
    .description('list the archives the log was moved to (their anchors)')
    .option('--json', 'print the list as JSON')
    .action(async (o) => {
      const rows = (await listArchives(ctx.cdb)).map(({ manifest, signature, ...a }) => a);
      if (o.json) return printJson(rows);
      for (const a of rows) console.log([`${a.fromSeq}–${a.toSeq}`, a.records, a.fileName, a.sha256, a.createdAt].join('\t'));
    });
  log
    .command('export')
    .description("R9.1: an evidence package of one link's records (others as digests only) that verifies offline")
    .requiredOption('--link <id>', 'the link')
    .requiredOption('--from <date>', 'first day (Asia/Taipei), YYYY-MM-DD')
    .requiredOption('--to <date>', 'last day (Asia/Taipei), YYYY-MM-DD')
    .requiredOption('--out <dir>', 'a new (or empty) directory')
    .option('--json', 'print the summary as JSON')
    .action(async (o) => {
      const out = path.resolve(o.out);
      if (existsSync(out) && !statSync(out).isDirectory()) throw new UserError(`${o.out} is a file, not a directory`);
      const r = await exportEvidence(ctx.cdb, {
        keysDir: ctx.config.keysDir,
        linkId: parseId(o.link, 'link'),
        from: parseDate(o.from, '--from'),
        to: parseDate(o.to, '--to'),
        out,
        now: ctx.clock.now(),
      });
      if (o.json) return printJson({ ...r, verification: { ok: r.verification.ok, records: r.verification.records, headHash: r.verification.headHash } });
      console.log(`evidence package written to ${r.dir}: seq ${r.fromSeq}–${r.toSeq}, ${r.records} records (${r.full} of link ${r.linkId} in full), ${r.checkpoints} checkpoint(s); check it with \`nia-link log verify --evidence ${o.out}\``);
    });
}
