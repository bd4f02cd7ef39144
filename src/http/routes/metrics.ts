import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Registry } from 'prom-client';
import { AUDIT, protect } from '../auth';
import type { ConsoleContext } from '../context';
import { JOB_STATES } from '../data';

/** Figures are read from the database at most this often, however often Prometheus asks. */
const CACHE_MS = 5000;

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/**
 * The Prometheus registry: every figure is read at scrape time from the control database and
 * Redis, so it is the installation's, not one process's, and survives restarts.
 */
export function buildMetrics(ctx: ConsoleContext): Registry {
  const registry = new Registry();
  let cached: { at: number; figures: ReturnType<typeof ctx.data.figures> } | undefined;
  const figures = () => {
    const now = ctx.clock.now().getTime();
    if (!cached || now - cached.at > CACHE_MS) {
      const read = ctx.data.figures({ sftpIdleSec: ctx.config.sftp.idleTimeoutSec });
      cached = { at: now, figures: read };
      // A failed read is not kept: the next scrape reads again.
      read.catch(() => {
        if (cached?.figures === read) cached = undefined;
      });
    }
    return cached.figures;
  };
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (g: Gauge<L>) => void | Promise<void>) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        await fill(this);
      },
    });

  gauge('nia_deliveries', 'Deliveries (extract files) by status.', ['status'], async (g) => {
    for (const d of (await figures()).deliveries) g.set({ status: d.status }, d.n);
  });
  for (const [name, help, key] of [
    ['nia_delivered_rows_total', 'Rows in built deliveries.', 'rows'],
    ['nia_delivered_bytes_total', 'Bytes of built delivery files (ciphertext).', 'bytes'],
  ] as const) {
    new Counter({
      name,
      help,
      registers: [registry],
      async collect() {
        this.reset();
        this.inc((await figures()).deliveries.filter((d) => d.status === 'built' || d.status === 'purged').reduce((a, d) => a + d[key], 0));
      },
    });
  }
  gauge('nia_push_channels', 'Push channels of deliveries by channel and outcome (sent, failed, refused, queued, retrying).', ['channel', 'status'], async (g) => {
    for (const p of (await figures()).pushes) g.set({ channel: p.channel, status: p.status }, p.n);
  });
  gauge('nia_queue_jobs', 'BullMQ jobs by queue and state.', ['queue', 'state'], async (g) => {
    for (const q of await ctx.data.queueDepths()) for (const s of JOB_STATES) g.set({ queue: q.queue, state: s }, q[s]);
  });
  gauge('nia_queue_paused', '1 when the queue is paused.', ['queue'], async (g) => {
    for (const q of await ctx.data.queueDepths()) g.set({ queue: q.queue }, q.paused ? 1 : 0);
  });
  gauge('nia_sftp_sessions', 'SFTP sessions, estimated from the usage log: distinct account and address pairs that logged in or downloaded within the idle timeout.', [], async (g) => {
    g.set((await figures()).sftpSessions);
  });
  gauge('nia_auth_failures', 'Failed logins in the live usage log, by channel (sftp-pull, console).', ['channel'], async (g) => {
    for (const a of (await figures()).authFailures) g.set({ channel: a.channel ?? 'none' }, a.n);
  });
  gauge('nia_usage_log_records', 'Records in the live usage log (archived ones excluded).', [], async (g) => g.set((await figures()).log.records));
  gauge('nia_usage_log_head_seq', 'Sequence number of the newest usage-log record.', [], async (g) => g.set((await figures()).log.head));
  gauge('nia_control_db_bytes', 'Size of the control database and its write-ahead log.', [], async (g) => g.set((await figures()).log.dbBytes));
  gauge('nia_links', 'Links by status.', ['status'], async (g) => {
    for (const [status, n] of Object.entries((await figures()).links)) g.set({ status }, n);
  });
  gauge('nia_anomalies_open', 'Anomalies not yet dismissed or turned into a finding.', [], async (g) => g.set((await figures()).openAnomalies));
  gauge('nia_findings_overdue', 'Findings past their deadline and not remediated.', [], async (g) => g.set((await figures()).overdueFindings));
  return registry;
}

/** /metrics: for admin and auditor sessions, or a scraper with the configured bearer token. */
export async function metricsRoutes(app: FastifyInstance, ctx: ConsoleContext): Promise<void> {
  const token = ctx.config.http.metricsToken;
  const expected = token ? sha256(token) : null;
  protect(app, ctx, { kind: 'metrics', bearer: expected ? (given) => timingSafeEqual(sha256(given), expected) : undefined });
  const registry = buildMetrics(ctx);
  app.get('/metrics', { config: { roles: AUDIT } }, async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
}
