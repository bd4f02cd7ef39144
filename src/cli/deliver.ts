import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { UserError } from '../errors';
import { PermanentError, type DeliveryView } from '../extract';
import { actor, type CliContext, parseId, printJson } from './context';
import { progress } from './progress';

function printDelivery(d: DeliveryView): void {
  console.log(`delivery ${d.id}: link ${d.link} revision ${d.revision}, ${d.status}, ${d.rows ?? '-'} rows, ${d.bytes ?? '-'} bytes${d.durationMs !== null ? `, built in ${d.durationMs} ms` : ''}`);
  if (d.path) console.log(`  file     ${d.path}`);
  if (d.sha256) console.log(`  sha256   ${d.sha256}`);
  if (d.error) console.log(`  error    ${d.error}`);
  for (const [channel, o] of Object.entries(d.channels)) {
    const r = o as { status?: string; at?: string; error?: string | null; remotePath?: string; messageId?: string };
    console.log(`  ${channel.padEnd(9)}${r.status ?? '-'} ${r.at ?? ''}${r.remotePath ? ' ' + r.remotePath : ''}${r.messageId ? ' ' + r.messageId : ''}${r.error ? ' — ' + r.error : ''}`);
  }
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('deliver <link>')
    .description('build an extract for a link now (incremental since the last delivery, or --full)')
    .option('--full', 'everything in scope, not only what changed since the last delivery')
    .option('--wait', 'wait for the result and print the delivery')
    .option('--timeout <seconds>', 'with --wait: give up after this long', '600')
    .option('--json', 'print the delivery as JSON')
    .option('--by <name>', 'who asks for it (recorded as the extract\'s actor in the usage log)')
    .action(async (id, o) => {
      const linkId = parseId(id, 'link');
      const by = actor(o.by);
      const timeout = parseId(o.timeout, '--timeout') * 1000;
      const { registry, extracts } = ctx.services;
      const state = await registry.state(linkId);
      const key = `manual-${linkId}-${Date.now()}-${randomBytes(4).toString('hex')}`;
      try {
        await extracts.assertUsable(state, { key: `extract:${key}`, trigger: 'manual', by }, ctx.clock.now());
      } catch (err) {
        if (err instanceof PermanentError) throw new UserError(`refused: ${err.message}`, err.code);
        throw err;
      }
      const [{ QueueEvents }, { connection, openQueue, QUEUES, queuePrefix, resolveRedis }] = await Promise.all([import('bullmq'), import('../queue')]);
      const { url } = await resolveRedis(ctx.config, { spawn: false });
      const queue = openQueue(QUEUES.extract, ctx.config, url);
      const events = o.wait ? new QueueEvents(QUEUES.extract, { connection: connection(url), prefix: queuePrefix(ctx.config) }) : undefined;
      try {
        const workers = await queue.getWorkersCount().catch(() => -1);
        if (o.wait && workers === 0) throw new UserError('no worker is running: start the service (nia-link start) and try again; nothing was queued', 'worker.none');
        await events?.waitUntilReady();
        const job = await queue.add('manual-extract', { linkId, full: !!o.full, trigger: 'manual', by }, { jobId: key });
        if (!events) {
          if (o.json) return printJson({ job: job.id, link: linkId, queued: true });
          console.log(`extract for link ${linkId} queued as job ${job.id}${workers === 0 ? ' (no worker is running yet: it runs when the service starts)' : ''}`);
          return;
        }
        let result: { deliveryId: number };
        const bar = progress(`link ${linkId}`, { json: o.json });
        bar.note(`extract queued as job ${job.id}`);
        const onActive = ({ jobId }: { jobId: string }) => jobId === job.id && bar.note('building the extract (select, sign, encrypt)');
        events.on('active', onActive);
        try {
          result = await job.waitUntilFinished(events, timeout);
        } catch (err) {
          const msg = (err as Error).message;
          if (/timed out/i.test(msg)) throw new UserError(`no result after ${timeout / 1000} s; job ${job.id} is still queued or running`, 'deliver.timeout');
          throw new UserError(`extract failed: ${msg}`, 'deliver.failed');
        } finally {
          events.off('active', onActive);
          bar.done();
        }
        const d = (await extracts.get(result.deliveryId))!;
        if (o.json) return printJson(d);
        printDelivery(d);
      } finally {
        await events?.close();
        await queue.close();
      }
    });

  const delivery = program.command('delivery').description('extract files delivered to agencies');
  delivery
    .command('list')
    .description('deliveries, newest first')
    .option('--link <id>', 'only this link')
    .option('--json', 'print a JSON array')
    .action(async (o) => {
      const rows = await ctx.services.extracts.list(o.link !== undefined ? parseId(o.link, 'link') : undefined);
      if (o.json) return printJson(rows);
      for (const d of rows) console.log(`${d.id}\tlink ${d.link}\trev ${d.revision}\t${d.status}\t${d.mode}\t${d.rows ?? '-'} rows\t${d.createdAt}\t${d.path ?? ''}`);
    });
  delivery
    .command('show <id>')
    .description('one delivery')
    .option('--json', 'print as JSON')
    .action(async (id, o) => {
      const d = await ctx.services.extracts.get(parseId(id, 'delivery'));
      if (!d) throw new UserError(`delivery ${id} does not exist`, 'delivery.unknown');
      const { downloadsOf } = await import('../sftp');
      const downloads = await downloadsOf(ctx.cdb.db, d);
      if (o.json) return printJson({ ...d, downloads });
      printDelivery(d);
      for (const x of downloads) console.log(`  fetched  ${x.at} by ${x.account} from ${x.ip}: ${x.file}, ${x.bytes} bytes, ${x.result}`);
    });
  delivery
    .command('retry <id>')
    .description('queue the failed or refused push channels of a delivery again')
    .option('--by <name>', 'who asks for it')
    .action(async (id, o) => {
      const deliveryId = parseId(id, 'delivery');
      const { extracts, pushes } = ctx.services;
      if (!(await extracts.get(deliveryId))) throw new UserError(`delivery ${id} does not exist`, 'delivery.unknown');
      const jobs = await pushes.retryJobs(deliveryId);
      if (jobs.length === 0) throw new UserError(`delivery ${id} has no failed or refused channel to retry`, 'delivery.nothing-to-retry');
      const [{ enqueuePushJobs }, { openQueue, QUEUES, resolveRedis }] = await Promise.all([import('../delivery'), import('../queue')]);
      const { url } = await resolveRedis(ctx.config, { spawn: false });
      const queue = openQueue(QUEUES.deliver, ctx.config, url);
      try {
        await pushes.recordRetry(deliveryId, jobs, actor(o.by));
        await enqueuePushJobs(queue, pushes, jobs, true);
      } finally {
        await queue.close();
      }
      console.log(`delivery ${deliveryId}: queued ${jobs.map((j) => j.channel).join(', ')} again`);
    });
  delivery
    .command('purge')
    .description('remove delivered files past their retention, or of ended links, now (R-F5); records and hashes stay')
    .option('--by <name>', 'who runs it')
    .action(async (o) => {
      const r = await ctx.services.extracts.purge(actor(o.by));
      console.log(`purged ${r.purged} deliveries${r.partials ? `, removed ${r.partials} partial files` : ''}`);
    });
}
