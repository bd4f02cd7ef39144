import type { ControlDb } from '../db';
import { agencies, compliance, vendors } from '../db/repositories';
import { allowListWithout, checkVendorMachines, type Clock } from '../domain';
import { refusalError, required, UserError } from '../errors';
import { appendLog } from '../usagelog';
import type { Registry } from './registry';

export type VendorRow = vendors.VendorRow;

/** A vendor with what R9.2 asks of it: the audits that named it and the evidence it gave in each. */
export type VendorDetail = VendorRow & {
  agency: string;
  subcontractors: { id: number; name: string; removedAt: string | null }[];
  audits: { id: number; date: string; kind: string; auditor: string; summary: string; agency: string; linkId: number | null; evidence: string | null }[];
};

function text(value: string | undefined, what: string, field: string, max: number): string {
  const v = value?.trim() ?? '';
  if (v === '') throw required(what, field, `vendor.${field}`);
  if (v.length > max) throw new UserError(`${what} is longer than ${max} characters`, `vendor.${field}`, { kind: 'invalid', field });
  return v;
}

/**
 * R8.1, R9.1: the outsourced contractors and sub-contractors that handle a link's data, each with
 * its dedicated machines, which must be designated IPs of the link.
 */
export class VendorService {
  constructor(
    private readonly cdb: ControlDb,
    private readonly registry: Registry,
    private readonly clock: Clock,
  ) {}

  async add(input: { linkId: number; name: string; contact: string; machines: string[]; parentId?: number }, actor: string): Promise<VendorRow> {
    const name = text(input.name, "the vendor's name", 'name', 200);
    const contact = text(input.contact, "the vendor's contact", 'contact', 500);
    const now = this.clock.now();
    return this.cdb.write(async (tx) => {
      const s = await this.registry.load(tx, input.linkId);
      if (s.link.status === 'terminated' || s.link.status === 'rejected') {
        throw new UserError(`link ${input.linkId} is ${s.link.status}: it takes no vendors`, 'vendor.link-status');
      }
      const machines = checkVendorMachines(input.machines, s.content.allowIps);
      if (!machines.ok) throw refusalError(machines.refusal);
      let parent: VendorRow | undefined;
      if (input.parentId !== undefined) {
        parent = await vendors.byId(tx, input.parentId);
        if (!parent || parent.linkId !== s.link.id || parent.removedAt) {
          throw new UserError(`the contractor ${input.parentId} named as parent is not a current vendor of link ${s.link.id}`, 'vendor.parent', { field: 'parentId' });
        }
      }
      const same = (await vendors.forLink(tx, s.link.id)).find((v) => v.name === name && v.parentId === (parent?.id ?? null));
      if (same) throw new UserError(`vendor ${same.id} "${name}" is already recorded for link ${s.link.id}`, 'vendor.exists');
      const row = await vendors.insert(tx, {
        linkId: s.link.id,
        parentId: parent?.id ?? null,
        name,
        contact,
        machines: machines.value,
        addedAt: now.toISOString(),
        addedBy: actor,
        removedAt: null,
        removedBy: null,
        removalChangeId: null,
      });
      await appendLog(
        tx,
        {
          type: 'vendor.added',
          agency: s.agency.code,
          linkId: s.link.id,
          revision: s.link.currentRevision,
          actor,
          object: `vendor:${row.id}`,
          detail: { name, contact, machines: machines.value, parent: parent?.id ?? null },
        },
        now,
      );
      return row;
    });
  }

  /**
   * A vendor leaves: it is marked removed (history stays), and on an approved link an `ips` change
   * request drops its machines that no other current vendor uses, so the allow-list changes by a
   * new revision once NIA approves it.
   */
  async remove(id: number, reason: string | undefined, actor: string): Promise<{ vendor: VendorRow; changeId: number | null; allowIps: string[] | null }> {
    const now = this.clock.now();
    const out = await this.cdb.write(async (tx) => {
      const v = await vendors.byId(tx, id);
      if (!v) throw new UserError(`vendor ${id} does not exist`, 'vendor.unknown');
      if (v.removedAt) throw new UserError(`vendor ${id} was removed already (${v.removedAt})`, 'vendor.removed');
      const s = await this.registry.load(tx, v.linkId);
      const current = await vendors.forLink(tx, v.linkId);
      const subs = current.filter((c) => c.parentId === v.id);
      if (subs.length) {
        throw new UserError(`vendor ${id} has sub-contractors ${subs.map((c) => c.id).join(', ')}: remove them first`, 'vendor.has-subcontractors');
      }
      const others = new Set(current.filter((c) => c.id !== v.id).flatMap((c) => c.machines));
      const drop = v.machines.filter((m) => !others.has(m));
      // Gone before the change is filed, so the change's own check does not count its machines.
      await vendors.update(tx, v.id, { removedAt: now.toISOString(), removedBy: actor });
      let changeId: number | null = null;
      let allowIps: string[] | null = null;
      if (drop.length && (s.link.status === 'active' || s.link.status === 'suspended')) {
        allowIps = allowListWithout(s.content.allowIps, drop);
        if (allowIps.length === 0) {
          throw new UserError(
            `removing vendor ${id} would leave link ${s.link.id} with no allowed IP: file an ips change with the agency's own machines first, or stop the link`,
            'vendor.last-machines',
          );
        }
        changeId = (await this.registry.fileChangeIn(tx, s.link.id, { kind: 'ips', allowIps }, actor, now)).id;
        await vendors.update(tx, v.id, { removalChangeId: changeId });
      }
      await appendLog(
        tx,
        {
          type: 'vendor.removed',
          agency: s.agency.code,
          linkId: s.link.id,
          revision: s.link.currentRevision,
          actor,
          object: `vendor:${v.id}`,
          detail: { name: v.name, machines: v.machines, reason: reason?.trim() || null, change: changeId },
        },
        now,
      );
      // Its machines are off the allow-list in force now (Registry.load): open sessions from them close.
      this.registry.changedAfterCommit(tx, s.link.id);
      return { vendor: (await vendors.byId(tx, v.id))!, changeId, allowIps };
    });
    return out;
  }

  /** One vendor, current or removed, with its sub-contractors and the audits that named it (R9.2). */
  async show(id: number): Promise<VendorDetail> {
    const db = this.cdb.db;
    const v = await vendors.byId(db, id);
    if (!v) throw new UserError(`vendor ${id} does not exist`, 'vendor.unknown');
    const s = await this.registry.state(v.linkId);
    const subcontractors = (await vendors.forLink(db, v.linkId, { removed: true }))
      .filter((c) => c.parentId === v.id)
      .map((c) => ({ id: c.id, name: c.name, removedAt: c.removedAt }));
    const named = await compliance.auditsOfVendor(db, v.id);
    const codes = new Map((await agencies.byIds(db, [...new Set(named.map((a) => a.agencyId))])).map((a) => [a.id, a.code]));
    const audits = named.map((a) => ({
      id: a.id,
      date: a.date,
      kind: a.kind,
      auditor: a.auditor,
      summary: a.summary,
      agency: codes.get(a.agencyId) ?? String(a.agencyId),
      linkId: a.linkId,
      evidence: a.evidence,
    }));
    return { ...v, agency: s.agency.code, subcontractors, audits };
  }

  async list(opts: { linkId?: number; removed?: boolean } = {}): Promise<VendorRow[]> {
    if (opts.linkId !== undefined) {
      await this.registry.state(opts.linkId);
      return vendors.forLink(this.cdb.db, opts.linkId, { removed: opts.removed });
    }
    return vendors.list(this.cdb.db, { removed: opts.removed });
  }
}
