import { createHash, randomUUID } from 'node:crypto';
import type * as openpgp from 'openpgp';
import type { ControlDb } from '../db';
import { batch, credentials, deliveries, links } from '../db/repositories';
import { modeOf } from '../db/repositories/installation';
import { detachedSignature, inspectAgencyKey, loadSigningKey, readAgencyEncryptionKey } from '../crypto';
import { type Clock, DRILL_MARK, describeScope, fileExpiresAt, formatField, formatFieldList, formatScope, mayUseChannel, type RevisionContent, sameScope, subjectsOf, taipeiDate } from '../domain';
import { isUserError, PermanentError, SupersededAttempt } from '../errors';
import { type Outbox, type OutboxTemp, publishedFiles, type PublishedFiles, stageFile } from '../outbox';
import { publishDelivery } from '../outbox/publish';
import type { LinkState, Registry } from '../registry';
import { appendLog } from '../usagelog';
import { buildExtract } from './build';
import { compileScope } from './scope-sql';
import type { ExtractSource } from './source';
import { channelSecret } from './transforms';

/** Two revisions select the same columns and records: an increment may continue from one to the other. */
function sameSelection(a: RevisionContent, b: RevisionContent): boolean {
  return a.dataset === b.dataset && formatFieldList(a.fields) === formatFieldList(b.fields) && sameScope(a.scope, b.scope);
}


export interface ExtractRequest {
  /** The job's id: a job that runs again finds its delivery instead of making a second one. */
  key: string;
  linkId: number;
  full: boolean;
  trigger: 'manual' | 'schedule';
  /** Who asked for a manual extract; the usage log records the extract as theirs (else the worker's). */
  by?: string;
}

export interface DeliveryView {
  id: number;
  link: number;
  revision: number;
  status: string;
  trigger: string;
  mode: string;
  dataset: string;
  rows: number | null;
  fields: string[];
  path: string | null;
  manifest: string | null;
  sha256: string | null;
  plainSha256: string | null;
  bytes: number | null;
  durationMs: number | null;
  createdAt: string;
  builtAt: string | null;
  expiresAt: string | null;
  error: string | null;
  /** Per push channel: status (queued, sent, failed, refused), attempts, time, remote path or message id. */
  channels: Record<string, unknown>;
}

/** Form item 7, carried in every manifest (R-F7). */
export const CONFIDENTIALITY_NOTICE = {
  zh: '本資料由內政部移民署依「各機關應用移民資訊連結作業及管理要點」提供，僅限於申請書所載之法令依據及目的範圍內使用；非經移民署同意，不得提供予第三人；違反者，依法追究責任。',
  en: 'Provided by the National Immigration Agency under its Guidelines for Agencies\' Linkage to Immigration Information, for the legal basis and purpose stated in the application only. No onward transfer without NIA\'s consent; misuse is referred for prosecution.',
};

export interface ExtractDeps {
  cdb: ControlDb;
  registry: Registry;
  clock: Clock;
  outbox: Outbox;
  keysDir: string;
  retentionDays: number;
  openSource: () => ExtractSource;
}

const stamp = (d: Date) => new Date(d.getTime() + 8 * 3600e3).toISOString().slice(0, 19).replace(/[-:]/g, '');

/**
 * Builds extract files for links: checks the link may be used now, projects to the approved fields,
 * signs and encrypts, writes the signed manifest, and records the delivery and its usage-log record
 * in one transaction.
 */
export class ExtractService {
  private signingKey?: openpgp.PrivateKey;

  constructor(private readonly d: ExtractDeps) {}

  /** Where delivery files live (extracts, batch answers, usage records): one port for every reader and writer. */
  get outbox(): Outbox {
    return this.d.outbox;
  }

  /** The files a built delivery publishes in its link's folder, by name; null before it is built. */
  filesOf(row: Pick<deliveries.DeliveryRow, 'fileName'>): PublishedFiles | null {
    return row.fileName ? publishedFiles(row.fileName) : null;
  }

  view(row: deliveries.DeliveryRow): DeliveryView {
    const files = this.filesOf(row);
    return {
      id: row.id,
      link: row.linkId,
      revision: row.revision,
      status: row.status,
      trigger: row.trigger,
      mode: row.mode,
      dataset: row.dataset,
      rows: row.rows,
      fields: row.fields,
      path: files ? this.d.outbox.pathOf(row.linkId, files.data) : null,
      manifest: files ? this.d.outbox.pathOf(row.linkId, files.manifest) : null,
      sha256: row.cipherSha256,
      plainSha256: row.plainSha256,
      bytes: row.bytes,
      durationMs: row.durationMs,
      createdAt: row.createdAt,
      builtAt: row.builtAt,
      expiresAt: row.expiresAt,
      error: row.error,
      channels: row.channels,
    };
  }

  /** Refuse (and log why) an extract for a link that may not have data now. Re-checked when a job runs: a scheduler may fire around a suspension. */
  async assertUsable(s: LinkState, req: Pick<ExtractRequest, 'key' | 'trigger' | 'by'>, now: Date): Promise<void> {
    const r = mayUseChannel(s, 'extract', { today: taipeiDate(now) });
    if (r.ok) return;
    await this.logFailure(s, s.link.id, req, r.refusal.code, r.refusal.message, now);
    throw new PermanentError(`link ${s.link.id}: ${r.refusal.message}`, r.refusal.code);
  }

  /** `attempt`: the failing attempt's token once it owns the delivery; a row another attempt owns is left alone. */
  private async logFailure(s: LinkState | null, linkId: number, req: Pick<ExtractRequest, 'key' | 'trigger' | 'by'>, code: string, message: string, now: Date, attempt?: string): Promise<void> {
    await this.d.cdb.write(async (tx) => {
      const row = await deliveries.byKey(tx, req.key);
      if (row && attempt !== undefined && row.attempt !== attempt) throw new SupersededAttempt(row.id);
      if (row && row.status !== 'built' && row.status !== 'purged') await deliveries.update(tx, row.id, { status: 'failed', error: message });
      await appendLog(tx, { type: 'extract.failed', agency: s?.agency.code ?? null, linkId, revision: s?.link.currentRevision ?? null, actor: req.by ?? 'worker', channel: 'extract', object: row ? `delivery:${row.id}` : null, detail: { code, reason: message, trigger: req.trigger, job: req.key } }, now);
    });
  }

  async run(req: ExtractRequest, opts: { finalAttempt: boolean }): Promise<DeliveryView> {
    const started = Date.now();
    const now = this.d.clock.now();
    let s: LinkState | null = null;
    try {
      s = await this.d.registry.state(req.linkId);
    } catch (err) {
      if (!isUserError(err)) throw err;
      await this.logFailure(null, req.linkId, req, 'link.unknown', err.message, now);
      throw new PermanentError(err.message, 'link.unknown');
    }
    const done = await deliveries.byKey(this.d.cdb.db, req.key);
    if (done?.status === 'built' || done?.status === 'purged') return this.view(done);

    await this.assertUsable(s, req, now);
    const keyRow = await credentials.pgpKeyFor(this.d.cdb.db, s.agency.id, s.content.pgpFingerprint);
    try {
      if (!keyRow) throw new PermanentError(`agency key ${s.content.pgpFingerprint} is not on file`, 'pgp.missing');
      await inspectAgencyKey(keyRow.armored, now);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      await this.logFailure(s, req.linkId, req, 'pgp.unusable', message, now);
      throw new PermanentError(message, 'pgp.unusable');
    }

    // A link whose selection (dataset, fields, scope) changed since its last file starts again from a
    // full extract: an increment would miss the records the new selection adds.
    const last = await deliveries.lastBuilt(this.d.cdb.db, req.linkId);
    const prev = req.full ? undefined : last;
    const continues = prev !== undefined && sameSelection(await this.d.registry.revisionOf(req.linkId, prev.revision), s.content);
    // This attempt takes the delivery: from now on only it may publish. An older attempt of the same job
    // that is still alive (stalled past its lock) finds the row taken when it tries and publishes nothing.
    const attempt = randomUUID();
    const claimed = await this.d.cdb.write((tx) =>
      deliveries.claim(tx, req.key, attempt, () => ({
        linkId: req.linkId,
        revision: s!.link.currentRevision,
        trigger: req.trigger,
        mode: continues ? 'incremental' : 'full',
        dataset: s!.content.dataset,
        fields: s!.content.fields.map(formatField),
        createdAt: now.toISOString(),
      })),
    );
    if ('done' in claimed) return this.view(claimed.done);
    const row = claimed.row;
    // Fields, scope and label all come from the revision the delivery row names, also when a retry
    // runs after a change was approved.
    const content = await this.d.registry.revisionOf(req.linkId, row.revision);
    const fields = content.fields;
    const catalog = this.d.registry.catalogs.get(content.dataset);
    if (!catalog) throw new PermanentError(`dataset ${content.dataset} has no catalog`, 'dataset.unknown');
    const asOf = taipeiDate(now);
    // A subjects scope (R3.4) reads the link's list in force; persons added to it since the previous
    // file get their older records too. Without a list there is nothing the link may receive.
    const subjects = subjectsOf(content.scope) ? await batch.subjectFilter(this.d.cdb.db, req.linkId, row.mode === 'full' ? null : last?.createdAt ?? null) : undefined;
    if (subjectsOf(content.scope) && !subjects) {
      const message = `link ${req.linkId}: its scope limits records to the agency's subject list, and none has been uploaded yet (subjects-NAME.csv.pgp in /inbox)`;
      await this.logFailure(s, req.linkId, req, 'subjects.missing', message, now, attempt);
      throw new PermanentError(message, 'subjects.missing');
    }

    // Final names come from the delivery row; each attempt writes its own temporary files, so two
    // attempts never write one file (one a dead worker left is removed by purge's sweep of stale temps).
    const base = `${content.dataset}-L${req.linkId}-r${row.revision}-${stamp(new Date(row.createdAt))}-D${row.id}`;
    const fileName = `${base}.csv.pgp`;
    const names = publishedFiles(fileName);
    const tmp = this.d.outbox.create(req.linkId, names.data);
    const temps: OutboxTemp[] = [tmp];
    let source: ExtractSource | undefined;
    try {
      source = this.d.openSource();
      const since = row.mode === 'full' ? null : last?.watermarkTo ?? null;
      const newest = await source.watermark(content.dataset);
      const until = [newest, since].filter((x): x is string => x !== null).sort().pop() ?? new Date(0).toISOString();
      const result = await buildExtract({
        source,
        dataset: content.dataset,
        fields,
        hmacSecret: channelSecret(s.link.hmacSecret, 'file'),
        range: { since, until, scope: compileScope(content.scope, catalog, asOf, subjects) },
        signingKey: await this.nia(),
        encryptionKey: await readAgencyEncryptionKey(keyRow!.armored),
        file: tmp.path,
      });

      const manifest = {
        type: 'nia-link.delivery-manifest',
        version: 1,
        delivery: row.id,
        file: fileName,
        link: req.linkId,
        revision: row.revision,
        agency: { code: s.agency.code, name: s.agency.nameZh },
        dataset: content.dataset,
        fields: row.fields,
        scope: { ...content.scope, asOf, text: { zh: describeScope(content.scope, catalog, 'zh'), en: describeScope(content.scope, catalog, 'en') } },
        legalBasis: content.legalBasis,
        purpose: content.purpose,
        mode: row.mode,
        changedSince: since,
        changedUntil: until,
        rows: result.rows,
        bytes: result.bytes,
        sha256: { plaintext: result.plainSha256, ciphertext: result.cipherSha256 },
        createdAt: now.toISOString(),
        signer: (await this.nia()).getFingerprint().toUpperCase(),
        confidentiality: CONFIDENTIALITY_NOTICE,
        // A drill's files are marked inside the signed manifest, so none can pass for real data.
        ...((await modeOf(this.d.cdb.db)) === 'drill' ? { drill: DRILL_MARK } : {}),
      };
      const manifestText = Buffer.from(JSON.stringify(manifest, null, 2) + '\n', 'utf8');
      const signature = await detachedSignature(manifestText, await this.nia());
      // Published before the data file, in the same transaction.
      temps.unshift(stageFile(this.d.outbox, req.linkId, names.manifest, manifestText), stageFile(this.d.outbox, req.linkId, names.signature, signature));

      const builtAt = this.d.clock.now();
      const expiresAt = fileExpiresAt(builtAt, this.d.retentionDays, s.content.period.to);
      const durationMs = Date.now() - started;
      // Publishing is one step (outbox/publish.ts): only while this attempt still owns the building row
      // are the files renamed, the row marked built and extract.built recorded.
      await publishDelivery(this.d.cdb, row.id, attempt, temps, async (tx) => {
        await deliveries.update(tx, row.id, {
          status: 'built',
          rows: result.rows,
          fileName,
          bytes: result.bytes,
          plainSha256: result.plainSha256,
          cipherSha256: result.cipherSha256,
          manifestSha256: createHash('sha256').update(manifestText).digest('hex'),
          watermarkFrom: since,
          watermarkTo: until,
          builtAt: builtAt.toISOString(),
          durationMs,
          expiresAt,
          error: null,
        });
        await appendLog(
          tx,
          {
            type: 'extract.built',
            agency: s!.agency.code,
            linkId: req.linkId,
            revision: row.revision,
            actor: req.by ?? 'worker',
            channel: 'extract',
            object: fileName,
            detail: { delivery: row.id, rows: result.rows, fields: formatFieldList(fields), scope: formatScope(content.scope), bytes: result.bytes, sha256: result.cipherSha256, plainSha256: result.plainSha256, mode: row.mode, trigger: req.trigger },
          },
          builtAt,
        );
      });
      return this.view((await deliveries.byId(this.d.cdb.db, row.id))!);
    } catch (err) {
      for (const t of temps) t.discard();
      if (err instanceof SupersededAttempt) throw err;
      const message = err instanceof Error ? err.message : String(err);
      if (opts.finalAttempt) await this.logFailure(s, req.linkId, req, 'extract.error', message, this.d.clock.now(), attempt);
      else
        await this.d.cdb.write(async (tx) => {
          if (await deliveries.owns(tx, row.id, attempt)) await deliveries.update(tx, row.id, { error: message });
        });
      throw err;
    } finally {
      await source?.close();
    }
  }

  private async nia(): Promise<openpgp.PrivateKey> {
    return (this.signingKey ??= await loadSigningKey(this.d.keysDir));
  }

  async list(linkId?: number): Promise<DeliveryView[]> {
    return (await deliveries.list(this.d.cdb.db, linkId)).map((r) => this.view(r));
  }

  async get(id: number): Promise<DeliveryView | undefined> {
    const r = await deliveries.byId(this.d.cdb.db, id);
    return r ? this.view(r) : undefined;
  }

  /**
   * Remove delivered files whose time is up, and every file of a link that has ended (R-F5). The
   * delivery record and the usage log keep the hashes. Also removes partial files a dead worker left.
   */
  async purge(actor: string): Promise<{ purged: number; partials: number }> {
    const now = this.d.clock.now();
    const due = new Map<number, deliveries.DeliveryRow>();
    for (const r of await deliveries.expired(this.d.cdb.db, now.toISOString())) due.set(r.id, r);
    // Only active or suspended links ever had deliveries; of those, an ended one keeps no files.
    for (const l of await links.list(this.d.cdb.db, 'terminated')) for (const r of await deliveries.builtForLink(this.d.cdb.db, l.id)) due.set(r.id, r);
    // An ended link keeps no subject list either (R3.4): the log keeps its count and hash.
    for (const l of await links.list(this.d.cdb.db, 'terminated')) {
      const list = await batch.subjectListOf(this.d.cdb.db, l.id);
      if (!list) continue;
      await this.d.cdb.write(async (tx) => {
        await batch.dropSubjects(tx, l.id);
        await appendLog(tx, { type: 'subjects.disposed', linkId: l.id, actor, channel: 'outbox', detail: { upload: list.uploadId, count: list.count, sha256: list.sha256, key: list.keyField } }, now);
      });
    }
    for (const r of due.values()) {
      const files = this.filesOf(r);
      if (files) for (const f of [files.data, files.manifest, files.signature]) this.d.outbox.remove(r.linkId, f);
      await this.d.cdb.write(async (tx) => {
        await deliveries.update(tx, r.id, { status: 'purged', purgedAt: now.toISOString() });
        const s = await this.d.registry.stateIn(tx, r.linkId);
        await appendLog(tx, { type: 'delivery.purged', agency: s.agency.code, linkId: r.linkId, revision: r.revision, actor, channel: 'outbox', object: r.fileName, detail: { delivery: r.id, sha256: r.cipherSha256, expiresAt: r.expiresAt, linkStatus: s.link.status } }, now);
      });
    }
    // A day is far longer than any build: a temporary file that old belongs to a process that died.
    const partials = this.d.outbox.removeStaleTemps(now, 24 * 3600e3);
    return { purged: due.size, partials };
  }
}
