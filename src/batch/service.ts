import { createHash, randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import type * as openpgp from 'openpgp';
import type { ControlDb, Db } from '../db';
import { batch, credentials, deliveries, inbox } from '../db/repositories';
import { detachedSignature, keyedIdHash, loadSigningKey, readAgencyEncryptionKey, signEncryptToFile } from '../crypto';
import { clientRefusal, type Clock, describeScope, fileExpiresAt, formatField, mayUseChannel, subjectsOf, taipeiDate } from '../domain';
import { isUserError } from '../errors';
import { CONFIDENTIALITY_NOTICE } from '../extract/service';
import { compileScope } from '../extract/scope-sql';
import { type Outbox, type OutboxTemp, stageFile } from '../outbox';
import { publishDelivery } from '../outbox/publish';
import { channelSecret } from '../extract/transforms';
import type { DailyCap } from '../query/cap';
import type { LinkState, Registry } from '../registry';
import { appendLog } from '../usagelog';
import type { Source } from '../extract/source';
import { openRequest } from './open';
import { parseRequest, type ParsedRequest } from './request';

export interface BatchDeps {
  cdb: ControlDb;
  registry: Registry;
  clock: Clock;
  outbox: Outbox;
  keysDir: string;
  /** The source answers are read from (opened per answer, closed when it is written). */
  openSource: () => Source;
  retentionDays: number;
  settings: { maxIds: number; maxPlainBytes: number };
  /** The daily identifier cap the online query draws from too (R3.5). */
  cap: DailyCap;
  /** The key of the keyed hashes under which looked-up identifiers go into the usage log (who-queried). */
  idSecret: Buffer;
}

/** What became of an upload: answered (a result), in-force (a subject list), refused (an error file). */
export interface BatchOutcome {
  upload: number;
  state: string;
  code: string | null;
  delivery: number | null;
}

/** Why an upload is refused: a stable code and a sentence for the agency, written into its error file. */
class Refusal {
  constructor(
    readonly code: string,
    readonly message: string,
    readonly detail: Record<string, unknown> = {},
  ) {}
}

const OPEN_STATES = new Set(['pending', 'processing']);
/** Uploaded names end so; the outbox files are named after what comes before. */
const requestBase = (name: string) => name.replace(/\.csv\.pgp$/, '');

/**
 * Batch requests and subject lists (R2.2, R3.4): one upload at a time, from its spool file to its
 * outcome. The envelope is opened (NIA's key) and its signature checked against the link's agency
 * key before any identifier is read; then the identifiers are validated and counted, looked up
 * inside the link's scope and approved fields, and the answer published like an extract (signed,
 * encrypted, manifest, /outbox, push channels). A refusal publishes only a signed error file. The
 * upload's bytes are deleted once its outcome is committed; processing an upload again never
 * publishes twice (its delivery row is keyed by the upload).
 */
export class BatchService {
  private signingKey?: openpgp.PrivateKey;

  constructor(private readonly d: BatchDeps) {}

  private async nia(): Promise<openpgp.PrivateKey> {
    return (this.signingKey ??= await loadSigningKey(this.d.keysDir));
  }

  /** Process upload `uploadId` (a job of queue `batch`). Returns its outcome; a second run finds it. */
  async process(uploadId: number): Promise<BatchOutcome> {
    const up = await inbox.uploadById(this.d.cdb.db, uploadId);
    if (!up) return { upload: uploadId, state: 'unknown', code: null, delivery: null };
    const key = `batch:${up.id}`;
    if (!OPEN_STATES.has(up.state)) {
      // Done before (a job run again, or the sweep): only the spool file may be left to remove.
      rmSync(up.spool, { force: true });
      return { upload: up.id, state: up.state, code: up.outcomeCode, delivery: (await deliveries.byKey(this.d.cdb.db, key))?.id ?? null };
    }
    const now = this.d.clock.now();
    if (up.state === 'pending') await this.d.cdb.write((tx) => inbox.setState(tx, up.id, 'processing', { at: now.toISOString() }));

    let s: LinkState | null = null;
    try {
      s = await this.d.registry.state(up.linkId);
    } catch (err) {
      if (!isUserError(err)) throw err;
    }
    if (!s) return this.unpublishedRefusal(up, 'link.not-usable', `link ${up.linkId} does not exist`);
    try {
      const parsed = await this.check(up, s, now);
      if (up.kind === 'subjects') return await this.putInForce(up, s, parsed);
      return await this.answer(up, s, parsed, key);
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      return this.refuse(up, s, key, err);
    }
  }

  /**
   * The last attempt at an upload failed on something no retry fixed (not a refusal: the source is
   * missing, the disk is full): the agency gets an error file rather than a request that waits for ever.
   */
  async fail(uploadId: number, message: string): Promise<BatchOutcome> {
    const up = await inbox.uploadById(this.d.cdb.db, uploadId);
    if (!up || !OPEN_STATES.has(up.state)) return { upload: uploadId, state: up?.state ?? 'unknown', code: up?.outcomeCode ?? null, delivery: null };
    let s: LinkState;
    try {
      s = await this.d.registry.state(up.linkId);
    } catch {
      return this.unpublishedRefusal(up, 'internal.error', message);
    }
    return this.refuse(up, s, `batch:${up.id}`, new Refusal('internal.error', 'the request could not be processed; NIA has been told. Send it again later.', { error: message }));
  }

  /** Everything a request must pass before a record is read; returns its identifiers. */
  private async check(up: inbox.InboxUploadRow, s: LinkState, now: Date): Promise<{ req: ParsedRequest; plainSha256: string; signer: string }> {
    const today = taipeiDate(now);
    // A subject list scopes the link's files; a batch request is its own method.
    const may = mayUseChannel(s, up.kind === 'batch' ? 'batch-query' : 'extract', { today });
    if (!may.ok) {
      const code = clientRefusal(may.refusal.code).code;
      throw new Refusal(code === 'channel.not-approved' ? 'method.not-approved' : code, may.refusal.message, { reason: may.refusal.code });
    }
    const subjects = subjectsOf(s.content.scope);
    if (up.kind === 'subjects' && !subjects) throw new Refusal('method.not-approved', `link ${s.link.id}'s scope has no subject list (the condition subjects)`);
    const catalog = this.d.registry.catalogs.get(s.content.dataset);
    if (!catalog) throw new Refusal('link.not-usable', `dataset ${s.content.dataset} has no catalog`);
    const keyRow = await credentials.pgpKeyFor(this.d.cdb.db, s.agency.id, s.content.pgpFingerprint);
    if (!keyRow) throw new Refusal('signature.unknown-key', `the agency key ${s.content.pgpFingerprint} of link ${s.link.id} is not on file`);
    let bytes: Buffer;
    try {
      bytes = readFileSync(up.spool);
    } catch {
      throw new Refusal('upload.lost', 'the uploaded bytes are no longer on the server: upload the request again');
    }
    const opened = await openRequest(bytes, await this.nia(), keyRow.armored, { maxPlainBytes: this.d.settings.maxPlainBytes, now });
    if (!opened.ok) throw new Refusal(opened.refusal.code, opened.refusal.message);
    const plainSha256 = createHash('sha256').update(opened.plain).digest('hex');
    const maxIds = up.kind === 'subjects' ? subjects!.max : this.d.settings.maxIds;
    const parsed = parseRequest(opened.plain, catalog, { maxIds });
    opened.plain.fill(0); // the plaintext is not kept beyond what the parse took from it
    if (!parsed.ok) {
      const code = parsed.refusal.code === 'ids.too-many' && up.kind === 'subjects' ? 'subjects.too-many' : parsed.refusal.code;
      throw new Refusal(code, parsed.refusal.message, { plainSha256 });
    }
    const req = parsed.value;
    if (up.kind === 'batch' && !req.reference) {
      throw new Refusal('reference.missing', 'a batch request carries its reference (the case or document number it is for) as a first line `# reference: …`', { plainSha256 });
    }
    if (up.kind === 'batch') {
      const taken = await this.d.cap.take(s.link.id, today, req.ids.length, s.content.maxIdsPerDay);
      if (!taken.ok) {
        throw new Refusal('cap.reached', `link ${s.link.id} may look up ${s.content.maxIdsPerDay} identifiers a day; ${Math.max(0, s.content.maxIdsPerDay - taken.used)} remain today and the request has ${req.ids.length}`, { plainSha256, ids: req.ids.length, reference: req.reference });
      }
    }
    return { req, plainSha256, signer: opened.signer };
  }

  /**
   * The delivery row of this upload's outcome, made once whatever the number of runs, taken by this
   * attempt (`done`: an earlier attempt finished it). Only the attempt that holds it may publish.
   */
  private async claimDelivery(key: string, s: LinkState, now: Date, attempt: string): Promise<{ done: deliveries.DeliveryRow } | { row: deliveries.DeliveryRow }> {
    return this.d.cdb.write((tx) =>
      deliveries.claim(tx, key, attempt, () => ({
        linkId: s.link.id,
        revision: s.link.currentRevision,
        trigger: 'manual',
        mode: 'full',
        dataset: s.content.dataset,
        fields: s.content.fields.map(formatField),
        createdAt: now.toISOString(),
      })),
    );
  }

  /** Publish staged files with the outcome (outbox/publish.ts), only while the upload is still open too. */
  private async publish(rowId: number, uploadId: number, attempt: string, temps: OutboxTemp[], commit: (tx: Db) => Promise<void>): Promise<void> {
    await publishDelivery(this.d.cdb, rowId, attempt, temps, commit, async (tx) => OPEN_STATES.has((await inbox.uploadById(tx, uploadId))?.state ?? ''));
  }

  /** Is `fileName` already published for the link by another upload (a name sent again while its answer is still in /outbox)? */
  private async nameInUse(linkId: number, fileName: string, key: string): Promise<boolean> {
    return (await deliveries.builtForLink(this.d.cdb.db, linkId)).some((r) => r.fileName === fileName && r.idempotencyKey !== key);
  }

  private async answer(up: inbox.InboxUploadRow, s: LinkState, checked: { req: ParsedRequest; plainSha256: string; signer: string }, key: string): Promise<BatchOutcome> {
    const started = Date.now();
    const { req, plainSha256 } = checked;
    const base = `${requestBase(up.name)}.result`;
    const fileName = `${base}.csv.pgp`;
    if (await this.nameInUse(s.link.id, fileName, key)) throw new Refusal('name.in-use', `${fileName} of an earlier request is still in /outbox: name the request differently`);
    const now = this.d.clock.now();
    const attempt = randomUUID();
    const claimed = await this.claimDelivery(key, s, now, attempt);
    if ('done' in claimed) return { upload: up.id, state: (await inbox.uploadById(this.d.cdb.db, up.id))?.state ?? 'unknown', code: null, delivery: claimed.done.id };
    const row = claimed.row;
    const content = await this.d.registry.revisionOf(s.link.id, row.revision);
    const catalog = this.d.registry.catalogs.get(content.dataset)!;
    const asOf = taipeiDate(now);
    const scope = compileScope(content.scope, catalog, asOf, await this.subjectFilter(s.link.id, content.scope));
    const keyRow = (await credentials.pgpKeyFor(this.d.cdb.db, s.agency.id, content.pgpFingerprint))!;
    const tmp = this.d.outbox.create(s.link.id, fileName);
    const source = this.d.openSource();
    let sealed;
    let result;
    try {
      const answer = source.answerCsv({ dataset: content.dataset, keyField: req.keyField, fields: content.fields, hmacSecret: channelSecret(s.link.hmacSecret, 'batch-query'), scope, ids: req.ids });
      sealed = await signEncryptToFile(answer.stream, await this.nia(), await readAgencyEncryptionKey(keyRow.armored), tmp.path);
      result = await answer.done;
    } catch (err) {
      tmp.discard();
      throw err;
    } finally {
      await source.close();
    }
    const counts = { sent: req.lines, valid: req.ids.length, duplicates: req.duplicates, invalid: req.invalidCount, matched: result.matched, notMatched: req.ids.length - result.matched };
    const manifest = {
      type: 'nia-link.batch-result-manifest',
      version: 1,
      delivery: row.id,
      file: fileName,
      request: { name: up.name, sha256: up.sha256, plainSha256, receivedAt: up.receivedAt, reference: req.reference, key: req.keyField },
      link: s.link.id,
      revision: row.revision,
      agency: { code: s.agency.code, name: s.agency.nameZh },
      dataset: content.dataset,
      fields: ['request_id', ...row.fields],
      scope: { ...content.scope, asOf, text: { zh: describeScope(content.scope, catalog, 'zh'), en: describeScope(content.scope, catalog, 'en') } },
      legalBasis: content.legalBasis,
      purpose: content.purpose,
      identifiers: counts,
      invalid: req.invalid,
      rows: result.rows,
      bytes: sealed.bytes,
      sha256: { plaintext: result.sha256, ciphertext: sealed.cipherSha256 },
      createdAt: now.toISOString(),
      signer: (await this.nia()).getFingerprint().toUpperCase(),
      confidentiality: CONFIDENTIALITY_NOTICE,
    };
    const manifestText = Buffer.from(JSON.stringify(manifest, null, 2) + '\n', 'utf8');
    const manifestName = `${base}.manifest.json`;
    const signature = await detachedSignature(manifestText, await this.nia());
    const temps = [stageFile(this.d.outbox, s.link.id, manifestName, manifestText), stageFile(this.d.outbox, s.link.id, `${manifestName}.asc`, signature), tmp];

    const at = this.d.clock.now();
    const outcome = { reference: req.reference, key: req.keyField, ...counts, rows: result.rows, delivery: row.id, file: fileName };
    const entry = { agency: s.agency.code, linkId: s.link.id, revision: row.revision, actor: up.account, ip: up.ip, channel: 'batch-query', object: up.name };
    await this.publish(row.id, up.id, attempt, temps, async (tx) => {
      await deliveries.update(tx, row.id, {
        status: 'built',
        rows: result.rows,
        fileName,
        bytes: sealed.bytes,
        plainSha256: result.sha256,
        cipherSha256: sealed.cipherSha256,
        manifestSha256: createHash('sha256').update(manifestText).digest('hex'),
        builtAt: at.toISOString(),
        durationMs: Date.now() - started,
        expiresAt: fileExpiresAt(at, this.d.retentionDays, s.content.period.to),
        error: null,
      });
      await inbox.setState(tx, up.id, 'answered', { code: null, outcome, at: at.toISOString() });
      // The look-up itself, with the identifiers as keyed hashes (who-queried finds them), then its answer.
      await appendLog(tx, { ...entry, type: 'batch.received', detail: { upload: up.id, sha256: up.sha256, plainSha256, reference: req.reference, key: req.keyField, ids: req.ids.length, sent: req.lines, invalid: req.invalidCount, signer: checked.signer, idHashes: req.ids.map((id) => keyedIdHash(this.d.idSecret, id)) } }, at);
      await appendLog(tx, { ...entry, type: 'batch.answered', detail: { upload: up.id, delivery: row.id, reference: req.reference, ...counts, rows: result.rows, bytes: sealed.bytes, sha256: sealed.cipherSha256, plainSha256: result.sha256, file: fileName } }, at);
    });
    rmSync(up.spool, { force: true });
    return { upload: up.id, state: 'answered', code: null, delivery: row.id };
  }

  /** The link's subject list as the compiled scope reads it (undefined: no list, or a scope without one). */
  private async subjectFilter(linkId: number, scope: LinkState['content']['scope']): Promise<batch.SubjectFilter | undefined> {
    return subjectsOf(scope) ? await batch.subjectFilter(this.d.cdb.db, linkId, null) : undefined;
  }

  /** A subject list replaces the link's current one whole, in one transaction; the next delivery uses it. */
  private async putInForce(up: inbox.InboxUploadRow, s: LinkState, checked: { req: ParsedRequest; plainSha256: string; signer: string }): Promise<BatchOutcome> {
    const { req, plainSha256 } = checked;
    const at = this.d.clock.now();
    await this.d.cdb.write(async (tx) => {
      const r = await batch.replaceSubjects(tx, { linkId: s.link.id, uploadId: up.id, keyField: req.keyField, count: req.ids.length, sha256: plainSha256, inForceAt: at.toISOString() }, req.ids);
      if (r.replaced) await inbox.setState(tx, r.replaced.uploadId, 'replaced', { at: at.toISOString() });
      await inbox.setState(tx, up.id, 'in-force', { code: null, outcome: { key: req.keyField, count: req.ids.length, sent: req.lines, invalid: req.invalidCount, duplicates: req.duplicates, added: r.added, removed: r.removed, plainSha256 }, at: at.toISOString() });
      // Only counts and hashes of the list stay; the replaced list's identifiers are gone.
      await appendLog(
        tx,
        {
          type: 'subjects.in-force',
          agency: s.agency.code,
          linkId: s.link.id,
          revision: s.link.currentRevision,
          actor: up.account,
          ip: up.ip,
          channel: 'batch-query',
          object: up.name,
          detail: {
            upload: up.id,
            sha256: up.sha256,
            plainSha256,
            key: req.keyField,
            count: req.ids.length,
            invalid: req.invalidCount,
            added: r.added,
            removed: r.removed,
            replaced: r.replaced ? { upload: r.replaced.uploadId, count: r.replaced.count, sha256: r.replaced.sha256 } : null,
            idHashes: req.ids.map((id) => keyedIdHash(this.d.idSecret, id)),
          },
        },
        at,
      );
    });
    rmSync(up.spool, { force: true });
    return { upload: up.id, state: 'in-force', code: null, delivery: null };
  }

  /** A signed `REQ.error.json` in /outbox and a batch.refused record; nothing else. */
  private async refuse(up: inbox.InboxUploadRow, s: LinkState, key: string, r: Refusal): Promise<BatchOutcome> {
    let fileName = `${requestBase(up.name)}.error.json`;
    if (await this.nameInUse(s.link.id, fileName, key)) fileName = `${requestBase(up.name)}.U${up.id}.error.json`;
    const now = this.d.clock.now();
    const attempt = randomUUID();
    const claimed = await this.claimDelivery(key, s, now, attempt);
    const row = 'done' in claimed ? claimed.done : claimed.row;
    if (!('done' in claimed)) {
      const error = {
        type: 'nia-link.batch-error',
        version: 1,
        request: { name: up.name, sha256: up.sha256, bytes: up.bytes, receivedAt: up.receivedAt },
        link: s.link.id,
        agency: s.agency.code,
        code: r.code,
        message: r.message,
        createdAt: now.toISOString(),
        signer: (await this.nia()).getFingerprint().toUpperCase(),
      };
      const text = Buffer.from(JSON.stringify(error, null, 2) + '\n', 'utf8');
      const signature = await detachedSignature(text, await this.nia());
      const temps = [stageFile(this.d.outbox, s.link.id, `${fileName}.asc`, signature), stageFile(this.d.outbox, s.link.id, fileName, text)];
      const at = this.d.clock.now();
      const sha256 = createHash('sha256').update(text).digest('hex');
      await this.publish(row.id, up.id, attempt, temps, async (tx) => {
        await deliveries.update(tx, row.id, { status: 'built', rows: 0, fileName, bytes: text.length, cipherSha256: sha256, manifestSha256: sha256, builtAt: at.toISOString(), expiresAt: fileExpiresAt(at, this.d.retentionDays, s.content.period.to), error: r.code });
        await this.refusedRecord(tx, up, s, r, at, { delivery: row.id, file: fileName });
      });
    } else {
      await this.d.cdb.write((tx) => this.refusedRecord(tx, up, s, r, this.d.clock.now(), { delivery: row.id, file: row.fileName }));
    }
    rmSync(up.spool, { force: true });
    return { upload: up.id, state: 'refused', code: r.code, delivery: row.id };
  }

  private async refusedRecord(tx: Db, up: inbox.InboxUploadRow, s: LinkState | null, r: Refusal, at: Date, more: Record<string, unknown>): Promise<void> {
    // Marked once: a second run finds the upload refused and writes nothing.
    if (!OPEN_STATES.has((await inbox.uploadById(tx, up.id))?.state ?? '')) return;
    await inbox.setState(tx, up.id, 'refused', { code: r.code, outcome: { code: r.code, message: r.message, ...more }, at: at.toISOString() });
    await appendLog(
      tx,
      {
        type: 'batch.refused',
        agency: s?.agency.code ?? null,
        linkId: up.linkId,
        revision: s?.link.currentRevision ?? null,
        actor: up.account,
        ip: up.ip,
        channel: 'batch-query',
        object: up.name,
        detail: { upload: up.id, kind: up.kind, code: r.code, reason: r.message, sha256: up.sha256, bytes: up.bytes, ...r.detail, ...more },
      },
      at,
    );
  }

  /** A link that no longer exists gets no file (there is no outbox to put it in): the record says why. */
  private async unpublishedRefusal(up: inbox.InboxUploadRow, code: string, message: string): Promise<BatchOutcome> {
    await this.d.cdb.write((tx) => this.refusedRecord(tx, up, null, new Refusal(code, message), this.d.clock.now(), {}));
    rmSync(up.spool, { force: true });
    return { upload: up.id, state: 'refused', code, delivery: null };
  }

  /** Uploads still pending after `staleSec` (a crash between their commit and their job): to be queued again. */
  async stale(staleSec: number): Promise<number[]> {
    return (await inbox.stalePending(this.d.cdb.db, new Date(this.d.clock.now().getTime() - staleSec * 1000).toISOString())).map((r) => r.id);
  }
}
