import { createHash } from 'node:crypto';
import type { ControlDb } from '../db';
import { documents } from '../db/repositories';
import { modeOf } from '../db/repositories/installation';
import { type Change, type ChangeKind, type Clock, revisionContentSchema } from '../domain';
import { UserError } from '../errors';
import type { Registry } from '../registry';
import { appendLog } from '../usagelog';
import { renderHtml } from './html';
import { buildForm, type FormDocument, type FormInput } from './model';
import { renderPdf } from './pdf';

export { buildForm, CHANGE_KIND_ZH, FORM_TITLE, type Block, type FormDocument, type FormInput, type Run } from './model';
export { escapeHtml, renderHtml } from './html';
export { renderPdf } from './pdf';

export type FormFormat = 'html' | 'pdf';

/** The printable 申請暨異動書 of a link revision (form item 9: NIA staff stamp and file it). */
export class FormService {
  constructor(
    private readonly cdb: ControlDb,
    private readonly registry: Registry,
    private readonly clock: Clock,
  ) {}

  /** The form's content for a revision (the current one by default). */
  async model(linkId: number, revision?: number): Promise<FormDocument> {
    const view = await this.registry.show(linkId);
    const { revisions, changes } = await this.registry.history(linkId);
    const number = revision ?? view.revision;
    const rev = revisions.find((r) => r.number === number);
    if (!rev) throw new UserError(`link ${linkId} has no revision ${number} (revisions 1–${view.revision})`, 'form.revision');
    const content = revisionContentSchema.parse(rev.content);
    const cr = rev.changeRequestId === null ? undefined : changes.find((c) => c.id === rev.changeRequestId);
    const input: FormInput = {
      linkId,
      agencyName: view.agencyName,
      revision: { number, content, createdAt: rev.createdAt },
      change: cr
        ? { id: cr.id, kind: cr.kind as ChangeKind, change: cr.change as Change, filedAt: cr.filedAt, decidedAt: cr.decidedAt, rulesVersion: cr.rulesDocument === null ? null : (await documents.meta(this.cdb.db, cr.rulesDocument))?.version ?? null, letter: cr.letterNo && cr.letterDate ? { no: cr.letterNo, date: cr.letterDate } : null }
        : null,
      sponsor: view.sponsor,
      appliedAt: view.appliedAt,
      letter: view.letterNo && view.letterDate ? { no: view.letterNo, date: view.letterDate } : null,
      approvedAt: view.approvedAt,
      rulesVersion: content.rulesDocument === null ? null : (await documents.meta(this.cdb.db, content.rulesDocument))?.version ?? null,
      catalog: this.registry.catalogs.get(content.dataset),
      generatedAt: this.clock.now(),
      drill: (await modeOf(this.cdb.db)) === 'drill',
    };
    return buildForm(input);
  }

  /** Render and log it: who printed which revision, and the digest of what they got. */
  async render(linkId: number, opts: { revision?: number; format: FormFormat }, actor: string): Promise<{ form: FormDocument; output: Buffer }> {
    const form = await this.model(linkId, opts.revision);
    const output = opts.format === 'pdf' ? await renderPdf(form) : Buffer.from(renderHtml(form), 'utf8');
    const view = await this.registry.show(linkId);
    const now = this.clock.now();
    await this.cdb.write((tx) =>
      appendLog(
        tx,
        {
          type: 'form.rendered',
          agency: view.agency,
          linkId,
          revision: form.revision,
          actor,
          object: `form:${linkId}/${form.revision}`,
          detail: { format: opts.format, bytes: output.length, sha256: createHash('sha256').update(output).digest('hex') },
        },
        now,
      ),
    );
    return { form, output };
  }
}
