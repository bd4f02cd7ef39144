import type { Config } from '../config';
import { deliveries } from '../db/repositories';
import { appendLog } from '../usagelog';
import { sendEmail } from './email';
import { type PushChannel, pushChannels, pushContext, type PushDeps, PushRefused, pushSftp, recordPush } from './push';

/** A job on the `deliver` queue: one channel of one delivery. */
export interface PushJob {
  deliveryId: number;
  channel: PushChannel;
}

export type Enqueue = (jobs: PushJob[], opts: { retry: boolean }) => Promise<void>;

/**
 * Push channels of deliveries: runs one channel of one delivery, records the outcome on the delivery
 * and in the usage log, and says whether a failure is worth retrying.
 */
export class PushService {
  constructor(
    private readonly d: PushDeps,
    private readonly config: Config,
  ) {}

  /** The jobs a freshly built delivery needs: one per push channel of the link's current revision. */
  async jobsFor(deliveryId: number): Promise<PushJob[]> {
    const delivery = await this.d.extracts.get(deliveryId);
    if (!delivery) return [];
    return pushChannels(await this.d.registry.state(delivery.link)).map((channel) => ({ deliveryId, channel }));
  }

  /** Jobs to re-run: the channels of a delivery that failed or were refused. */
  async retryJobs(deliveryId: number): Promise<PushJob[]> {
    const delivery = await this.d.extracts.get(deliveryId);
    if (!delivery) return [];
    return Object.entries(delivery.channels)
      .filter(([, o]) => ['failed', 'refused'].includes(String((o as { status?: string }).status)))
      .map(([channel]) => ({ deliveryId, channel: channel as PushChannel }));
  }

  /** Mark channels queued; without `again`, a channel that already has an outcome keeps it (a repeated enqueue adds no job). */
  async markQueued(jobs: PushJob[], again: boolean): Promise<void> {
    for (const j of jobs) {
      if (!again && (await this.d.extracts.get(j.deliveryId))?.channels[j.channel] !== undefined) continue;
      await this.setStatus(j, { status: 'queued', error: null });
    }
  }

  /** An operator asked for failed or refused channels to be tried again: recorded before they are queued. */
  async recordRetry(deliveryId: number, jobs: PushJob[], actor: string): Promise<void> {
    const delivery = await this.d.extracts.get(deliveryId);
    if (!delivery) return;
    const now = this.d.clock.now();
    await this.d.cdb.write(async (tx) => {
      const s = await this.d.registry.stateIn(tx, delivery.link);
      await appendLog(tx, { type: 'delivery.retry-requested', agency: s.agency.code, linkId: delivery.link, revision: delivery.revision, actor, object: `delivery:${deliveryId}`, detail: { channels: jobs.map((j) => j.channel) } }, now);
    });
  }

  /** Outcome bookkeeping that is not itself a use of the data (no usage-log record). */
  private async setStatus(job: PushJob, outcome: Record<string, unknown>): Promise<void> {
    await this.d.cdb.write((tx) => deliveries.setChannel(tx, job.deliveryId, job.channel, { ...outcome, at: this.d.clock.now().toISOString() }));
  }

  async run(job: PushJob, opts: { attempt: number; finalAttempt: boolean }): Promise<void> {
    let ctx;
    try {
      ctx = await pushContext(this.d, job.deliveryId, job.channel);
    } catch (err) {
      if (err instanceof PushRefused) {
        const delivery = await this.d.extracts.get(job.deliveryId);
        if (delivery) await recordPush(this.d, { delivery }, job.channel, refusedType(job.channel), { status: 'refused', error: err.message, attempts: opts.attempt }, { code: err.code, reason: err.message });
      }
      throw err;
    }
    try {
      if (job.channel === 'sftp-push') {
        const r = await pushSftp(this.d, ctx);
        const e = ctx.state.content.push!;
        await recordPush(this.d, ctx, job.channel, 'file.pushed', { status: 'sent', remotePath: r.remote, bytes: r.bytes, attempts: opts.attempt, error: null }, { host: e.host, address: r.address, port: e.port, user: e.user, remotePath: r.remote, bytes: r.bytes, fingerprint: e.fingerprint });
      } else {
        const r = await sendEmail(this.config, ctx);
        await recordPush(this.d, ctx, job.channel, 'email.sent', { status: 'sent', messageId: r.messageId, recipients: r.recipients, attached: r.attached, attempts: opts.attempt, error: null }, { messageId: r.messageId, recipients: r.recipients, attached: r.attached });
      }
    } catch (err) {
      const message = (err as Error).message;
      if (err instanceof PushRefused) {
        await recordPush(this.d, ctx, job.channel, refusedType(job.channel), { status: 'refused', error: message, attempts: opts.attempt }, { code: err.code, reason: message });
      } else if (opts.finalAttempt) {
        await recordPush(this.d, ctx, job.channel, job.channel === 'email' ? 'email.failed' : 'push.failed', { status: 'failed', error: message, attempts: opts.attempt }, { reason: message, attempts: opts.attempt });
      } else {
        await this.setStatus(job, { status: 'retrying', error: message, attempts: opts.attempt });
      }
      throw err;
    }
  }
}

const refusedType = (channel: PushChannel) => (channel === 'email' ? 'email.refused' : 'push.refused');
