import type { ControlDb, Db } from '../db';
import { agencies, documents, links, rulesReviews } from '../db/repositories';
import { checkRulesReviewed, type Clock, missingTopics, parseCovers, type Result, revisionContentSchema } from '../domain';
import { refusalError, UserError } from '../errors';
import { appendLog } from '../usagelog';
import { checkDocument, type CheckedDocument } from './documents';
import type { Registry } from './registry';

export const RULES_KIND = 'management-rules';

export interface RulesVersion extends documents.DocumentMeta {
  agency: string;
  /** The review in force (the newest), or null when nobody has reviewed this version yet. */
  review: { id: number; covers: number[]; missing: number[]; note: string | null; reviewedBy: string; reviewedAt: string } | null;
}

/**
 * Store a management-rules document as the agency's next version (R4.1), with its usage-log record.
 * The content is kept as bytes, checked by content and never opened or run.
 */
export async function storeRulesDocument(tx: Db, agency: agencies.AgencyRow, linkId: number | null, doc: CheckedDocument, actor: string, now: Date): Promise<documents.DocumentMeta> {
  const version = (await documents.latestVersion(tx, agency.id, RULES_KIND)) + 1;
  const { content: _content, ...meta } = await documents.insert(tx, { agencyId: agency.id, linkId, kind: RULES_KIND, version, ...doc, createdAt: now.toISOString() });
  await appendLog(
    tx,
    {
      type: 'rules.added',
      agency: agency.code,
      linkId,
      actor,
      object: `document:${meta.id}`,
      detail: { version, filename: doc.filename, mediaType: doc.mediaType, size: doc.size, sha256: doc.sha256 },
    },
    now,
  );
  return meta;
}

/** R4.1: only a rules version whose latest review covers all eight topics lets a link be approved. */
export async function rulesGate(tx: Db, documentId: number | null): Promise<Result<true>> {
  const doc = documentId === null ? undefined : await documents.meta(tx, documentId);
  const review = doc ? await rulesReviews.latest(tx, doc.id) : undefined;
  return checkRulesReviewed(doc ?? null, review ? review.covers : null);
}

/** Management rules: versions per agency, the eight-topic review, and rules change requests. */
export class RulesService {
  constructor(
    private readonly cdb: ControlDb,
    private readonly registry: Registry,
    private readonly clock: Clock,
  ) {}

  /**
   * A new version of an agency's rules. With a link (active or suspended), a `rules` change request
   * is filed pointing the link at it; it can be approved once the version is reviewed (point 5).
   */
  async add(input: { agency: string; file: { filename: string; content: Buffer }; linkId?: number }, actor: string): Promise<{ document: RulesVersion; changeId: number | null }> {
    const doc = checkDocument(input.file.filename, input.file.content);
    const now = this.clock.now();
    return this.cdb.write(async (tx) => {
      const agency = await agencies.byCode(tx, input.agency.trim().toUpperCase());
      if (!agency) throw new UserError(`agency ${input.agency} is not registered`, 'agency.unknown');
      if (input.linkId === undefined) {
        const meta = await storeRulesDocument(tx, agency, null, doc, actor, now);
        return { document: await this.version(tx, meta), changeId: null };
      }
      const s = await this.registry.load(tx, input.linkId);
      if (s.agency.id !== agency.id) throw new UserError(`link ${input.linkId} belongs to agency ${s.agency.code}, not ${agency.code}`, 'rules.agency-mismatch');
      if (s.link.status === 'pending') {
        throw new UserError(
          `link ${input.linkId} is pending: its application carries its rules; review them, or reject it and apply again with the amended rules`,
          'rules.link-pending',
        );
      }
      const meta = await storeRulesDocument(tx, agency, s.link.id, doc, actor, now);
      const cr = await this.registry.fileChangeIn(tx, s.link.id, { kind: 'rules', rulesDocument: meta.id }, actor, now);
      return { document: await this.version(tx, meta), changeId: cr.id };
    });
  }

  /** Record the eight-topic checklist for a version; the newest review is the one in force. */
  async review(target: { documentId: number } | { linkId: number }, coversText: string, note: string | undefined, actor: string): Promise<RulesVersion> {
    const covers = parseCovers(coversText);
    if (!covers.ok) throw refusalError(covers.refusal);
    const now = this.clock.now();
    return this.cdb.write(async (tx) => {
      const doc = await this.resolve(tx, target);
      const agency = (await agencies.byId(tx, doc.agencyId))!;
      const missing = missingTopics(covers.value).map((t) => t.n);
      await rulesReviews.insert(tx, { documentId: doc.id, covers: covers.value, note: note?.trim() || null, reviewedBy: actor, reviewedAt: now.toISOString() });
      await appendLog(
        tx,
        {
          type: 'rules.reviewed',
          agency: agency.code,
          linkId: 'linkId' in target ? target.linkId : doc.linkId,
          actor,
          object: `document:${doc.id}`,
          detail: { version: doc.version, covers: covers.value, missing, note: note?.trim() || null },
        },
        now,
      );
      return this.version(tx, doc);
    });
  }

  async show(documentId: number): Promise<RulesVersion & { reviews: rulesReviews.RulesReviewRow[] }> {
    const db = this.cdb.db;
    const doc = await this.resolve(db, { documentId });
    return { ...(await this.version(db, doc)), reviews: await rulesReviews.forDocument(db, doc.id) };
  }

  /** The stored bytes, for an operator to read with a viewer of their choice; logged like every document action. */
  async export(documentId: number, actor: string): Promise<{ meta: documents.DocumentMeta; content: Buffer }> {
    const now = this.clock.now();
    return this.cdb.write(async (tx) => {
      const row = await documents.byId(tx, documentId);
      if (!row || row.kind !== RULES_KIND) throw new UserError(`management-rules document ${documentId} does not exist`, 'rules.unknown');
      const { content, ...meta } = row;
      const agency = (await agencies.byId(tx, meta.agencyId))!;
      await appendLog(tx, { type: 'rules.exported', agency: agency.code, linkId: meta.linkId, actor, object: `document:${meta.id}`, detail: { version: meta.version, sha256: meta.sha256 } }, now);
      return { meta, content };
    });
  }

  async list(opts: { agency?: string; linkId?: number } = {}): Promise<RulesVersion[]> {
    const db = this.cdb.db;
    let agencyId: number | undefined;
    if (opts.agency !== undefined) {
      const a = await agencies.byCode(db, opts.agency.trim().toUpperCase());
      if (!a) throw new UserError(`agency ${opts.agency} is not registered`, 'agency.unknown');
      agencyId = a.id;
    }
    if (opts.linkId !== undefined) {
      // The versions a link has pointed at, in any revision, and those filed for it.
      const s = await this.registry.load(db, opts.linkId);
      const ids = new Set((await links.revisions(db, s.link.id)).map((r) => revisionContentSchema.parse(r.content).rulesDocument));
      return this.versions(db, (await documents.listMeta(db, { agencyId: s.agency.id, kind: RULES_KIND })).filter((d) => d.linkId === s.link.id || ids.has(d.id)));
    }
    return this.versions(db, await documents.listMeta(db, { agencyId, kind: RULES_KIND }));
  }

  private async resolve(tx: Db, target: { documentId: number } | { linkId: number }): Promise<documents.DocumentMeta> {
    if ('linkId' in target) {
      const s = await this.registry.load(tx, target.linkId);
      if (s.content.rulesDocument === null) {
        const fix =
          s.link.status === 'pending'
            ? 'an application carries them: reject it and apply again with the rules'
            : `agency ${s.agency.code} files them for the link first`;
        throw new UserError(`link ${target.linkId} has no management rules on file: ${fix}`, 'rules.missing');
      }
      return (await documents.meta(tx, s.content.rulesDocument))!;
    }
    const doc = await documents.meta(tx, target.documentId);
    if (!doc || doc.kind !== RULES_KIND) throw new UserError(`management-rules document ${target.documentId} does not exist`, 'rules.unknown');
    return doc;
  }

  private async version(tx: Db, doc: documents.DocumentMeta): Promise<RulesVersion> {
    return (await this.versions(tx, [doc]))[0];
  }

  /** Versions as shown, their agencies and reviews read for all of them at once. */
  private async versions(tx: Db, docs: readonly documents.DocumentMeta[]): Promise<RulesVersion[]> {
    if (docs.length === 0) return [];
    const codes = new Map((await agencies.byIds(tx, [...new Set(docs.map((d) => d.agencyId))])).map((a) => [a.id, a.code]));
    const reviews = new Map((await rulesReviews.latestOf(tx, docs.map((d) => d.id))).map((r) => [r.documentId, r]));
    return docs.map((doc) => {
      const r = reviews.get(doc.id);
      return {
        ...doc,
        agency: codes.get(doc.agencyId)!,
        review: r ? { id: r.id, covers: r.covers, missing: missingTopics(r.covers).map((t) => t.n), note: r.note, reviewedBy: r.reviewedBy, reviewedAt: r.reviewedAt } : null,
      };
    });
  }
}
