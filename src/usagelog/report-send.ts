import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type * as openpgp from 'openpgp';
import type { ControlDb } from '../db';
import * as agencies from '../db/repositories/agencies';
import * as credentials from '../db/repositories/credentials';
import * as deliveries from '../db/repositories/deliveries';
import * as links from '../db/repositories/links';
import * as repo from '../db/repositories/usageLog';
import { detachedSignature, inspectAgencyKey, loadSigningKey, readAgencyEncryptionKey, signEncryptToFile } from '../crypto';
import { addDays, addMonths, fileExpiresAt, type Clock, type DatasetCatalog, type IsoDate, isValidDate, mayUse, type RevisionContent, revisionContentSchema, startOfTaipeiDay, taipeiDate } from '../domain';
import { SupersededAttempt, UserError } from '../errors';
import { type Outbox, type OutboxTemp, stageFile } from '../outbox';
import { publishDelivery } from '../outbox/publish';
import { exportEvidence } from './evidence';
import { appendLog } from './log';
import { usageReport } from './report';
import { type TarEntry, tarStream } from './tar';
import { verifyUsageLog } from './verify';

/** The `dataset` of a delivery that carries an agency's usage records rather than immigration data. */
export const USAGE_RECORDS = 'usage-log';

/** The files of an evidence package (src/usagelog/evidence.ts), in the order an auditor reads them. */
const EVIDENCE_FILES = ['README.txt', 'manifest.json', 'manifest.json.asc', 'records.jsonl', 'checkpoints.json', 'verification.json', 'nia-signing.pub.asc'];

export interface UsageRecordsDeps {
  cdb: ControlDb;
  clock: Clock;
  keysDir: string;
  /** Where delivered files live (the SFTP tree lists them from their delivery rows). */
  outbox: Outbox;
  /**
   * A private directory on this host (the data directory, 0700) where the plaintext records are
   * staged while the archive is built: never /tmp, and never the outbox, which other hosts may share.
   */
  stagingDir: string;
  retentionDays: number;
  catalogs?: ReadonlyMap<string, DatasetCatalog>;
}

export interface UsageRecordsDelivery {
  delivery: number;
  link: number;
  file: string;
  path: string;
  bytes: number;
  sha256: string;
}

export interface SentUsageRecords {
  agency: string;
  from: IsoDate;
  to: IsoDate;
  /** Records of the agency's links, in full. */
  records: number;
  /** The links whose records it holds (each as an evidence package). */
  links: number[];
  deliveries: UsageRecordsDelivery[];
}

const README = (agency: string, from: IsoDate, to: IsoDate, root: string, linkIds: number[]) => `nia-link: the usage records of agency ${agency}, ${from} to ${to} (R6.5)

Kept by the agency itself for at least five years (point 6 of the regulation).

summary.json        what \`nia-link report usage --agency ${agency} --from ${from} --to ${to}\` reports
${linkIds.map((id) => `L${id}/`.padEnd(20) + `evidence package of link ${id}: its records in full, every other record as {seq, digest}`).join('\n') || '(no link of the agency has records in this period)'}

This archive came signed by NIA and encrypted to the agency's key; \`gpg --decrypt\` said whose
signature it carries. Each evidence package is also signed on its own and checks offline, without
NIA's database and without showing other agencies' records:

  nia-link log verify --evidence ${root}/L<link> --key nia-signing.pub.asc

with NIA's public key as the agency obtained it from NIA (\`nia-link key export-signing\` on NIA's
side), never the copy inside the package.
`;

/** A Web stream over a generator of chunks (what openpgp reads). */
function webStream(gen: AsyncGenerator<Buffer>, hash: ReturnType<typeof createHash>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await gen.next();
      if (done) return controller.close();
      hash.update(value);
      controller.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
    },
    async cancel() {
      await gen.return(undefined);
    },
  });
}

/**
 * R6.5: the duty to keep the log lies with the agency, so each agency receives the records of its own
 * use — every usage-log record about its links in full, with the chain evidence to verify them, and
 * the summary of `report usage` — as one archive signed by NIA and encrypted to each link's agency key,
 * delivered like an extract (a delivery row of dataset `usage-log`: listed in the link's SFTP outbox,
 * pushed through its push channels, expired and purged like the rest).
 */
export class UsageRecordsService {
  private signingKey?: openpgp.PrivateKey;

  constructor(private readonly d: UsageRecordsDeps) {}

  /** The previous Taipei month of `now`: what the monthly job sends on the first day of a month. */
  static previousMonth(now: Date): { from: IsoDate; to: IsoDate } {
    const first = `${taipeiDate(now).slice(0, 7)}-01`;
    return { from: addMonths(first, -1), to: addDays(first, -1) };
  }

  /**
   * Build the archive once and put it in the outbox of each of the agency's links in use. A scheduled
   * send is idempotent per link and period (a retried job reuses what it built); one on request always
   * makes new files. Nothing is delivered unless every link's key is usable.
   */
  async send(agencyCode: string, from: IsoDate, to: IsoDate, o: { trigger: 'manual' | 'schedule'; actor: string }): Promise<SentUsageRecords> {
    const now = this.d.clock.now();
    const today = taipeiDate(now);
    if (!isValidDate(from)) throw new UserError(`--from '${from}' is not a date (YYYY-MM-DD)`);
    if (!isValidDate(to)) throw new UserError(`--to '${to}' is not a date (YYYY-MM-DD)`);
    if (to < from) throw new UserError(`--to ${to} is before --from ${from}`);
    if (to > today) throw new UserError(`--to ${to} is in the future (today is ${today}): records are sent for days that have happened`, 'report.future');
    const db = this.d.cdb.db;
    const agency = await agencies.byCode(db, agencyCode.trim().toUpperCase());
    if (!agency) throw new UserError(`agency ${agencyCode} is not registered`, 'agency.unknown');

    const all = (await links.list(db)).filter((l) => l.agencyId === agency.id);
    const targets: { link: links.LinkRow; content: RevisionContent }[] = [];
    for (const link of all) {
      const rev = await links.revision(db, link.id, link.currentRevision);
      const content = rev ? revisionContentSchema.parse(rev.content) : undefined;
      if (content && mayUse(link, content.period, today).ok) targets.push({ link, content });
    }
    if (targets.length === 0) throw new UserError(`agency ${agency.code} has no link in use whose outbox could take its usage records`, 'report.no-link');
    const keys = new Map<number, openpgp.Key>();
    for (const t of targets) {
      const row = await credentials.pgpKeyFor(db, agency.id, t.content.pgpFingerprint);
      if (!row) throw new UserError(`link ${t.link.id}: agency key ${t.content.pgpFingerprint} is not on file; nothing was sent`, 'pgp.missing');
      try {
        await inspectAgencyKey(row.armored, now);
      } catch (err) {
        throw new UserError(`link ${t.link.id}: the agency key cannot be used (${(err as Error).message}); nothing was sent`, 'pgp.unusable');
      }
      keys.set(t.link.id, await readAgencyEncryptionKey(row.armored));
    }

    const key = (linkId: number) =>
      o.trigger === 'schedule' ? `usage:${linkId}:${from}:${to}:schedule` : `usage:${linkId}:${from}:${to}:manual:${now.getTime()}-${randomBytes(4).toString('hex')}`;
    const keyOf = new Map(targets.map((t) => [t.link.id, key(t.link.id)]));
    const built = async (id: number) => {
      const r = await deliveries.byKey(db, keyOf.get(id)!);
      return r && (r.status === 'built' || r.status === 'purged') ? r : undefined;
    };
    const todo: typeof targets = [];
    for (const t of targets) if (!(await built(t.link.id))) todo.push(t);

    const root = `usage-${agency.code}-${from}-${to}`;
    const fromAt = startOfTaipeiDay(from).toISOString();
    const toAt = startOfTaipeiDay(addDays(to, 1)).toISOString();
    const own = new Set(all.map((l) => l.id));
    const withRecords = new Set<number>();
    for await (const r of repo.scopeRows(this.d.cdb.db, { fromAt, toAt, agency: agency.code })) {
      if (r.linkId !== null && own.has(r.linkId)) withRecords.add(r.linkId);
    }
    const linkIds = [...withRecords].sort((a, b) => a - b);
    let records = 0;
    const done = (rows: deliveries.DeliveryRow[]): SentUsageRecords => ({
      agency: agency.code,
      from,
      to,
      records,
      links: linkIds,
      deliveries: rows.map((r) => ({ delivery: r.id, link: r.linkId, file: r.fileName!, path: this.d.outbox.pathOf(r.linkId, r.fileName!), bytes: r.bytes ?? 0, sha256: r.cipherSha256 ?? '' })),
    });
    if (todo.length === 0) {
      const rows: deliveries.DeliveryRow[] = [];
      for (const t of targets) rows.push((await built(t.link.id))!);
      records = rows[0].rows ?? 0;
      return done(rows);
    }

    mkdirSync(this.d.stagingDir, { recursive: true, mode: 0o700 });
    const staging = mkdtempSync(path.join(this.d.stagingDir, '.usage-staging-'));
    try {
      const base = path.join(staging, root);
      mkdirSync(base, { mode: 0o700 });
      const summary = await usageReport(this.d.cdb, { agency: agency.code }, from, to, now, this.d.catalogs);
      writeFileSync(path.join(base, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
      writeFileSync(path.join(base, 'README.txt'), README(agency.code, from, to, root, linkIds));
      const entries: TarEntry[] = [`README.txt`, 'summary.json'].map((f) => ({ name: `${root}/${f}`, file: path.join(base, f) }));
      const dirs = [root];
      if (linkIds.length) {
        // One verification of the whole log serves every package of this send.
        const verification = await verifyUsageLog(this.d.cdb, { keysDir: this.d.keysDir });
        for (const id of linkIds) {
          records += (await exportEvidence(this.d.cdb, { keysDir: this.d.keysDir, linkId: id, from, to, out: path.join(base, `L${id}`), now, verification })).full;
          dirs.push(`${root}/L${id}`);
          for (const f of EVIDENCE_FILES) entries.push({ name: `${root}/L${id}/${f}`, file: path.join(base, `L${id}`, f) });
        }
      }
      const rows: deliveries.DeliveryRow[] = [];
      for (const t of targets) {
        const b = await built(t.link.id);
        if (b) rows.push(b);
      }
      for (const t of todo) {
        rows.push(await this.deliver({ agency, link: t.link, period: t.content.period, key: keyOf.get(t.link.id)!, encryptTo: keys.get(t.link.id)!, from, to, root, dirs, entries, records, linkIds, trigger: o.trigger, actor: o.actor }));
      }
      return done(rows);
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }

  private async deliver(p: {
    agency: agencies.AgencyRow;
    link: links.LinkRow;
    period: { from: string; to: string };
    key: string;
    encryptTo: openpgp.Key;
    from: IsoDate;
    to: IsoDate;
    root: string;
    dirs: string[];
    entries: TarEntry[];
    records: number;
    linkIds: number[];
    trigger: 'manual' | 'schedule';
    actor: string;
  }): Promise<deliveries.DeliveryRow> {
    const started = Date.now();
    const now = this.d.clock.now();
    // This attempt takes the delivery; an earlier attempt of the job still alive publishes nothing.
    const attempt = randomUUID();
    const claimed = await this.d.cdb.write((tx) =>
      deliveries.claim(tx, p.key, attempt, () => ({
        linkId: p.link.id,
        revision: p.link.currentRevision,
        trigger: p.trigger,
        mode: 'full',
        dataset: USAGE_RECORDS,
        fields: [],
        createdAt: now.toISOString(),
      })),
    );
    if ('done' in claimed) return claimed.done;
    const row = claimed.row;
    // Not `.csv.pgp`: the archive is no extract, and a reader tells the two apart by name.
    const base = `usage-${p.agency.code}-${p.from}-${p.to}-L${p.link.id}-D${row.id}`;
    const fileName = `${base}.pgp`;
    const manifestName = `${base}.manifest.json`;
    const tmp = this.d.outbox.create(p.link.id, fileName);
    const temps: OutboxTemp[] = [tmp];
    try {
      const plain = createHash('sha256');
      const nia = await this.nia();
      const sealed = await signEncryptToFile(webStream(tarStream(p.dirs, p.entries, now.getTime()), plain), nia, p.encryptTo, tmp.path);
      const manifest = {
        type: 'nia-link.usage-records-manifest',
        version: 1,
        delivery: row.id,
        file: fileName,
        format: 'ustar archive, signed by NIA and encrypted to the agency key (OpenPGP)',
        link: p.link.id,
        agency: { code: p.agency.code, name: p.agency.nameZh },
        from: p.from,
        to: p.to,
        records: p.records,
        links: p.linkIds,
        bytes: sealed.bytes,
        sha256: { plaintext: plain.digest('hex'), ciphertext: sealed.cipherSha256 },
        createdAt: now.toISOString(),
        signer: nia.getFingerprint().toUpperCase(),
        verify: `gpg --decrypt ${fileName} | tar -x; nia-link log verify --evidence ${p.root}/L<link> --key nia-signing.pub.asc`,
      };
      const manifestText = Buffer.from(JSON.stringify(manifest, null, 2) + '\n', 'utf8');
      temps.unshift(stageFile(this.d.outbox, p.link.id, manifestName, manifestText), stageFile(this.d.outbox, p.link.id, `${manifestName}.asc`, await detachedSignature(manifestText, nia)));
      const builtAt = this.d.clock.now();
      // Like an extract's file: kept for the retention days, never past the use period.
      const expiresAt = fileExpiresAt(builtAt, this.d.retentionDays, p.period.to);
      return await publishDelivery(this.d.cdb, row.id, attempt, temps, async (tx) => {
        await deliveries.update(tx, row.id, {
          status: 'built',
          rows: p.records,
          fileName,
          bytes: sealed.bytes,
          plainSha256: manifest.sha256.plaintext,
          cipherSha256: sealed.cipherSha256,
          manifestSha256: createHash('sha256').update(manifestText).digest('hex'),
          builtAt: builtAt.toISOString(),
          durationMs: Date.now() - started,
          expiresAt,
          error: null,
        });
        await appendLog(
          tx,
          {
            type: 'report.sent',
            agency: p.agency.code,
            linkId: p.link.id,
            revision: p.link.currentRevision,
            actor: p.actor,
            channel: 'outbox',
            object: fileName,
            detail: { delivery: row.id, from: p.from, to: p.to, records: p.records, links: p.linkIds, bytes: sealed.bytes, sha256: sealed.cipherSha256, trigger: p.trigger },
          },
          builtAt,
        );
        return (await deliveries.byId(tx, row.id))!;
      });
    } catch (err) {
      for (const t of temps) t.discard();
      if (err instanceof SupersededAttempt) throw err;
      const message = err instanceof Error ? err.message : String(err);
      await this.d.cdb.write(async (tx) => {
        if (await deliveries.owns(tx, row.id, attempt)) await deliveries.update(tx, row.id, { status: 'failed', error: message });
      });
      throw err;
    }
  }

  /**
   * The monthly job: the previous month's records to every agency with a link in use. One agency's
   * failure does not hold back the others; the failures are returned for the job to report.
   */
  async sendMonthly(actor: string): Promise<{ from: IsoDate; to: IsoDate; sent: SentUsageRecords[]; failed: { agency: string; error: string }[] }> {
    const now = this.d.clock.now();
    const { from, to } = UsageRecordsService.previousMonth(now);
    const today = taipeiDate(now);
    const db = this.d.cdb.db;
    const inUse = new Set<number>();
    for (const l of await links.list(db, 'active')) {
      const rev = await links.revision(db, l.id, l.currentRevision);
      if (rev && mayUse(l, revisionContentSchema.parse(rev.content).period, today).ok) inUse.add(l.agencyId);
    }
    const sent: SentUsageRecords[] = [];
    const failed: { agency: string; error: string }[] = [];
    for (const a of (await agencies.all(db)).filter((x) => inUse.has(x.id))) {
      try {
        sent.push(await this.send(a.code, from, to, { trigger: 'schedule', actor }));
      } catch (err) {
        failed.push({ agency: a.code, error: err instanceof Error ? err.message : String(err) });
      }
    }
    return { from, to, sent, failed };
  }

  private async nia(): Promise<openpgp.PrivateKey> {
    return (this.signingKey ??= await loadSigningKey(this.d.keysDir));
  }
}
