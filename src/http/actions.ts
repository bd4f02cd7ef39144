import type { TypedQueue } from '../queue';
import type { FastifyRequest } from 'fastify';
import type { ControlDb } from '../db';
import { links } from '../db/repositories';
import { enqueuePushJobs } from '../delivery';
import { UserError } from '../errors';
import type { Services } from '../services';

/** R-F9: NIA's reply letter as the approval form (or an /api body) gives it; the registry decides whether it will do. */
function replyLetter(req: FastifyRequest): { letterNo?: string; letterDate?: string } {
  const body = (req.body ?? {}) as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return { letterNo: text(body.letterNo), letterDate: text(body.letterDate) };
}

/**
 * What an operator can do from the console, the same for a page's form and for /api. Each goes
 * through the service that owns the rule (the registry, compliance, the push service), with the
 * operator's name as the actor; the request's usage-log record (who, from where, outcome) is
 * written by the scope's hook, with what each action notes here.
 */
export class ConsoleActions {
  constructor(private readonly d: { cdb: ControlDb; services: Services; deliverQueue: TypedQueue<'deliver'> }) {}

  private async note(req: FastifyRequest, linkId: number, object: string, detail: Record<string, unknown> = {}): Promise<void> {
    const agency = (await this.d.services.registry.show(linkId)).agency;
    req.audit = { linkId, agency, object, detail };
  }

  async approveLink(req: FastifyRequest, id: number): Promise<void> {
    await this.note(req, id, `link:${id}`, { action: 'link.approve' });
    await this.d.services.registry.approve(id, { by: req.operator!.username, ...replyLetter(req) });
  }

  async rejectLink(req: FastifyRequest, id: number, reason: string): Promise<void> {
    await this.note(req, id, `link:${id}`, { action: 'link.reject' });
    await this.d.services.registry.reject(id, reason, req.operator!.username);
  }

  async suspendLink(req: FastifyRequest, id: number, reason: string): Promise<void> {
    await this.note(req, id, `link:${id}`, { action: 'link.suspend' });
    await this.d.services.compliance.suspend(id, reason, req.operator!.username);
  }

  async linkOfChange(id: number): Promise<number> {
    const cr = await links.changeById(this.d.cdb.db, id);
    if (!cr) throw new UserError(`change request ${id} does not exist`, 'change.unknown');
    return cr.linkId;
  }

  /** Returns the link the change belongs to. */
  async approveChange(req: FastifyRequest, id: number): Promise<number> {
    await this.note(req, await this.linkOfChange(id), `change:${id}`, { action: 'change.approve' });
    const linkId = (await this.d.services.registry.approveChange(id, req.operator!.username, replyLetter(req))).link.id;
    // A stop dated today ends the link now, through the path that opens its disposal task and notifies the agency.
    void (await this.d.services.compliance.endDue(req.operator!.username, linkId)).mailed;
    return linkId;
  }

  async rejectChange(req: FastifyRequest, id: number, reason: string): Promise<number> {
    await this.note(req, await this.linkOfChange(id), `change:${id}`, { action: 'change.reject' });
    return (await this.d.services.registry.rejectChange(id, reason, req.operator!.username)).linkId;
  }

  /** Queue the failed or refused push channels of a delivery again; returns the channels. */
  async retryDelivery(req: FastifyRequest, id: number): Promise<string[]> {
    const { extracts, pushes } = this.d.services;
    const d = await extracts.get(id);
    if (!d) throw new UserError(`delivery ${id} does not exist`, 'delivery.unknown');
    const jobs = await pushes.retryJobs(id);
    await this.note(req, d.link, `delivery:${id}`, { action: 'delivery.retry', channels: jobs.map((j) => j.channel) });
    if (jobs.length === 0) throw new UserError(`delivery ${id} has no failed or refused channel to retry`, 'delivery.nothing-to-retry');
    await enqueuePushJobs(this.d.deliverQueue, pushes, jobs, true);
    return jobs.map((j) => j.channel);
  }
}
