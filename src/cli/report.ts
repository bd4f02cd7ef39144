import type { Command } from 'commander';
import { deliveries } from '../db/repositories';
import { UserError } from '../errors';
import { loadCatalogs } from '../registry';
import { reportCsv, reportHtml, usageReport, UsageRecordsService } from '../usagelog';
import { actor, type CliContext, parseDate, parseId, printJson, writeOutputFile } from './context';

/** How long queuing push jobs may take before the Redis behind them counts as unreachable. */
const QUEUE_TIMEOUT_MS = 15_000;

/**
 * Queue the push channels of new deliveries. The files are in the outboxes already; a channel that
 * cannot be queued (no Redis: the service is stopped) is marked failed, so `delivery retry` queues it.
 */
async function queuePushes(ctx: CliContext, ids: number[]): Promise<string | null> {
  const { pushes } = ctx.services;
  const jobs: Awaited<ReturnType<typeof pushes.jobsFor>> = [];
  for (const id of ids) jobs.push(...(await pushes.jobsFor(id)));
  if (jobs.length === 0) return null;
  try {
    const [{ enqueuePushJobs }, { openQueue, QUEUES, resolveRedis }] = await Promise.all([import('../delivery'), import('../queue')]);
    const { url } = await resolveRedis(ctx.config, { spawn: false });
    const queue = openQueue(QUEUES.deliver, ctx.config, url);
    try {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('Redis did not answer')), QUEUE_TIMEOUT_MS)));
      await Promise.race([enqueuePushJobs(queue, pushes, jobs, false), timeout]).finally(() => clearTimeout(timer));
    } finally {
      await Promise.race([queue.close(), new Promise((r) => setTimeout(r, 2000))]);
    }
    return null;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    const at = ctx.clock.now().toISOString();
    await ctx.cdb.write(async (tx) => {
      for (const j of jobs) await deliveries.setChannel(tx, j.deliveryId, j.channel, { status: 'failed', error: `not queued: ${why}`, at });
    });
    return `push channels not queued (${why}): once the service runs, nia-link delivery retry ${[...new Set(jobs.map((j) => j.deliveryId))].join(' / ')}`;
  }
}

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
    .action(async (o) => {
      if (!(FORMATS as readonly string[]).includes(o.format)) throw new UserError(`--format ${o.format}: use ${FORMATS.join(', ')}`);
      const r = await usageReport(
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
  report
    .command('send')
    .description("R6.5: the agency's own usage records (every record about its links, with the chain evidence, and the usage summary), signed by NIA and encrypted to each link's agency key, into the outbox of each of its links in use and through their push channels")
    .requiredOption('--agency <code>', 'the agency')
    .requiredOption('--from <date>', 'first day (Asia/Taipei), YYYY-MM-DD')
    .requiredOption('--to <date>', 'last day (Asia/Taipei), YYYY-MM-DD, today at the latest')
    .option('--by <name>', 'who sends it')
    .option('--json', 'print what was sent as JSON')
    .action(async (o) => {
      const service = new UsageRecordsService({
        cdb: ctx.cdb,
        clock: ctx.clock,
        keysDir: ctx.config.keysDir,
        outbox: ctx.services.outbox,
        stagingDir: ctx.config.dataDir,
        retentionDays: ctx.config.outbox.retentionDays,
        catalogs: loadCatalogs(),
      });
      const sent = await service.send(o.agency, parseDate(o.from, '--from'), parseDate(o.to, '--to'), { trigger: 'manual', actor: actor(o.by) });
      const warning = await queuePushes(ctx, sent.deliveries.map((d) => d.delivery));
      if (warning) console.error(warning);
      if (o.json) return printJson(sent);
      for (const d of sent.deliveries) {
        console.log(`usage records of ${sent.agency} ${sent.from}–${sent.to} (${sent.records} records of links ${sent.links.join(', ') || '—'}) in the outbox of link ${d.link}: ${d.file} (delivery ${d.delivery}, ${d.bytes} bytes)`);
      }
    });
}
