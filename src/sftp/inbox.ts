import { createHash, type Hash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants, fsync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config';
import type { ControlDb, Db } from '../db';
import { isUniqueViolation } from '../db/dialect';
import { inbox as repo } from '../db/repositories';
import type { Clock } from '../domain';
import { appendLog, type LogEntry } from '../usagelog';

/** The one writable directory of the SFTP tree. */
export const INBOX = '/inbox';
/** Names an upload may have: no path, no leading dot or dash, no spaces or control characters. */
export const INBOX_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.csv\.pgp$/;
/** Usage-log channel of what arrives in /inbox. */
const CHANNEL = 'batch-query';
/** Small WRITEs are gathered into this much before one write(2). */
const STAGE_BYTES = 64 * 1024;
const PART = '.part';

/**
 * Whether an account sees /inbox: its link answers batch requests, or its scope names a subject list
 * (the scope's form is checked loosely: any `subjects` key anywhere in it).
 */
export function inboxEnabled(content: { methods: readonly string[]; scope: unknown }): boolean {
  return content.methods.includes('batch-query') || JSON.stringify(content.scope ?? null).includes('"subjects"');
}

/** 'subjects' for a subject list (`subjects-NAME.csv.pgp`), 'batch' for a batch request. */
export const uploadKind = (name: string): 'batch' | 'subjects' => (name.startsWith('subjects-') ? 'subjects' : 'batch');

/** Where uploads are spooled: under the data directory, outside anything the SFTP tree lists. */
export const spoolDirOf = (dataDir: string): string => path.join(dataDir, 'spool', 'inbox');

/** Why an upload was refused or discarded: a stable code, and what the client is told. */
export interface UploadError {
  code: string;
  message: string;
  /** PERMISSION_DENIED rather than FAILURE. */
  denied?: boolean;
}

/** What a link already has against its upload quotas: files and bytes waiting for an answer, uploads in the last hour. */
interface QuotaUse {
  files: number;
  bytes: number;
  lastHour: number;
}

/**
 * The one rule of the upload quotas: the quota one more upload of `bytes` bytes would pass, given
 * what the link has (null: none). Asked at OPEN, counting the uploads in progress in this process
 * (with the most each may still grow to, and the new one needing room for at least a byte), and
 * again when an upload is recorded, inside the transaction that records it, counting what is
 * recorded: there, writes take turns across processes and hosts, so uploads that several front
 * ends let through side by side still never pass the quota together.
 */
function quotaPassed(s: Config['inbox'], have: QuotaUse, bytes: number): UploadError | null {
  if (have.files + 1 > s.maxPendingFiles) return { code: 'inbox.pending-files', message: `quota: ${s.maxPendingFiles} uploads already wait for an answer` };
  if (have.bytes + bytes > s.maxPendingBytes) return { code: 'inbox.pending-bytes', message: `quota: ${s.maxPendingBytes} bytes already wait for an answer` };
  if (have.lastHour + 1 > s.maxUploadsPerHour) return { code: 'inbox.rate', message: `quota: ${s.maxUploadsPerHour} uploads per hour` };
  return null;
}

/** The link's uploads waiting for an answer, and what they and the last hour's uploads count against the quotas. */
async function quotaUse(db: Db, linkId: number, now: Date): Promise<QuotaUse & { pending: repo.InboxUploadRow[] }> {
  const pending = await repo.pendingUploads(db, linkId);
  const lastHour = await repo.uploadsSince(db, linkId, new Date(now.getTime() - 3600_000).toISOString());
  return { pending, files: pending.length, bytes: pending.reduce((n, r) => n + r.bytes, 0), lastHour };
}

/** An upload the quota refused when it was about to be recorded. */
class QuotaRefused extends Error {
  constructor(readonly refusal: UploadError) {
    super(refusal.message);
  }
}

/** Who uploads: the account's link and its fields for the usage log. */
export interface Uploader {
  linkId: number;
  account: string;
  ip: string;
  /** agency, linkId and revision as usage-log records carry them. */
  logFields: Pick<LogEntry, 'agency' | 'linkId' | 'revision'>;
}

export interface InboxDeps {
  cdb: ControlDb;
  clock: Clock;
  settings: Config['inbox'];
  spoolDir: string;
  /** A usage-log record whose loss must not stop anything (upload.aborted). */
  record(entry: LogEntry): void;
  /** An upload's row and `file.uploaded` were committed: hand it to the processor. */
  onUploaded(uploadId: number): void;
}

/** A pending upload as `ls /inbox` shows it. */
export interface Listed {
  name: string;
  bytes: number;
  receivedAt: string;
}

/**
 * The uploads of one SFTP process: the quota checks at OPEN, and the uploads in progress, which
 * count against their link's quota (and hold their name) beside those already received.
 */
export class InboxService {
  private readonly open = new Map<number, Set<Upload>>();
  private spoolReady = false;

  constructor(readonly d: InboxDeps) {}

  /** The link's uploads waiting for an answer. */
  async listing(linkId: number): Promise<Listed[]> {
    return (await repo.pendingUploads(this.d.cdb.db, linkId)).map((r) => ({ name: r.name, bytes: r.bytes, receivedAt: r.receivedAt }));
  }

  /** Open a new upload of `name`, or say why not (a name taken, a quota reached, no spool). */
  async begin(who: Uploader, name: string): Promise<Upload | UploadError> {
    if (!INBOX_NAME.test(name)) return { code: 'inbox.name', message: 'name not allowed', denied: true };
    // The database is read first; the checks against the uploads in progress and the registering of this
    // one follow without a pause, so uploads begun side by side (other sessions) are all counted.
    const db = this.d.cdb.db;
    const use = await quotaUse(db, who.linkId, this.d.clock.now());
    const mine = this.open.get(who.linkId) ?? new Set<Upload>();
    if ([...mine].some((u) => u.name === name)) return { code: 'inbox.name-taken', message: 'an upload of this name is in progress', denied: true };
    if (use.pending.some((r) => r.name === name)) return { code: 'inbox.name-taken', message: 'an upload of this name is pending', denied: true };
    const s = this.d.settings;
    // An upload in progress holds the most it may still grow to, not what it has so far: uploads opened
    // side by side can never add up to more than the quota left.
    const bytes = use.bytes + [...mine].reduce((n, u) => n + u.limit, 0);
    const refused = quotaPassed(s, { files: use.files + mine.size, bytes, lastHour: use.lastHour + mine.size }, 1);
    if (refused) return refused;
    let fd: number;
    let part: string;
    try {
      this.ensureSpool();
      // Random names, created exclusively and never through a link: nothing the client sends names a file on disk.
      part = path.join(this.d.spoolDir, `${process.pid}-${randomBytes(16).toString('hex')}${PART}`);
      fd = openSync(part, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    } catch {
      this.spoolReady = false;
      return { code: 'inbox.spool', message: 'cannot store uploads now' };
    }
    // The pending bytes left at OPEN (after what the uploads in progress hold) bound this upload, so the
    // bytes quota holds without a check per WRITE.
    const limit = Math.min(s.maxBytes, s.maxPendingBytes - bytes);
    const u = new Upload(this, who, name, fd, part, limit);
    mine.add(u);
    this.open.set(who.linkId, mine);
    return u;
  }

  /** The upload no longer counts as in progress. */
  forget(u: Upload): void {
    const mine = this.open.get(u.who.linkId);
    mine?.delete(u);
    if (mine?.size === 0) this.open.delete(u.who.linkId);
  }

  /** The spool directory exists, is a directory of our own (not a link), and only we may enter it. */
  private ensureSpool(): void {
    if (this.spoolReady) return;
    const dir = this.d.spoolDir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
    chmodSync(dir, 0o700);
    chmodSync(path.dirname(dir), 0o700);
    this.spoolReady = true;
  }

  /**
   * Partial uploads left by a process that died mid-upload (a crash, kill -9): their session never
   * ended, so nothing deleted them. Only files of processes no longer running are removed.
   */
  sweepOrphans(): number {
    let n = 0;
    let names: string[];
    try {
      names = readdirSync(this.d.spoolDir);
    } catch {
      return 0;
    }
    for (const f of names) {
      const m = /^(\d+)-[0-9a-f]{32}\.part$/.exec(f);
      if (!m || processAlive(Number(m[1]))) continue;
      try {
        unlinkSync(path.join(this.d.spoolDir, f));
        n++;
      } catch {
        /* gone already */
      }
    }
    return n;
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One upload in progress: bytes arrive in order into a private spool file and are hashed as they
 * come. It becomes a request only by finish(): every byte on disk, then its row and `file.uploaded`
 * in one transaction. Anything else (a hole, a rewrite, too many bytes, the session ending) discards
 * it and its file.
 */
export class Upload {
  /** Bytes received so far: the offset the next WRITE must have. */
  bytes = 0;
  /** Set once discarded: the reason, and no more is written. */
  failed: UploadError | null = null;
  private readonly hash: Hash = createHash('sha256');
  private stage: Buffer | null = null;
  private staged = 0;
  private fd: number | null;
  private finishing = false;

  constructor(
    private readonly service: InboxService,
    readonly who: Uploader,
    readonly name: string,
    fd: number,
    private readonly part: string,
    /** The most this upload may hold: what it reserved of its link's pending-bytes quota at OPEN. */
    readonly limit: number,
  ) {
    this.fd = fd;
  }

  /** One WRITE. Null when taken; otherwise the upload is discarded and the error says why. */
  write(offset: number, data: Buffer): UploadError | null {
    if (this.failed) return this.failed;
    if (offset !== this.bytes) {
      return this.discard(offset < this.bytes ? { code: 'upload.rewrite', message: 'writes must be contiguous: earlier bytes may not be written again' } : { code: 'upload.hole', message: 'writes must be contiguous: no holes' });
    }
    if (this.bytes + data.length > this.limit) return this.discard({ code: 'upload.too-large', message: `file too large (at most ${this.limit} bytes)` });
    try {
      this.put(data);
    } catch {
      return this.discard({ code: 'upload.spool-write', message: 'cannot store the upload' });
    }
    this.hash.update(data);
    this.bytes += data.length;
    return null;
  }

  private put(data: Buffer): void {
    if (data.length >= STAGE_BYTES) {
      this.flush();
      writeAll(this.fd!, data);
      return;
    }
    if (!this.stage) this.stage = Buffer.allocUnsafe(STAGE_BYTES);
    if (this.staged + data.length > STAGE_BYTES) this.flush();
    data.copy(this.stage, this.staged);
    this.staged += data.length;
  }

  private flush(): void {
    if (this.staged === 0 || !this.stage) return;
    writeAll(this.fd!, this.stage.subarray(0, this.staged));
    this.staged = 0;
  }

  /**
   * CLOSE: the bytes reach the disk, the file takes its final name, and the row and `file.uploaded`
   * are committed in one transaction; only then is `done` called (and CLOSE answered), and the
   * processor told. On any failure the upload is discarded.
   */
  finish(done: (err: UploadError | null, id?: number) => void): void {
    if (this.failed) return done(this.failed);
    this.finishing = true;
    try {
      this.flush();
    } catch {
      return done(this.discard({ code: 'upload.spool-write', message: 'cannot store the upload' }));
    }
    fsync(this.fd!, (err) => {
      if (err) return done(this.discard({ code: 'upload.spool-write', message: 'cannot store the upload' }));
      void this.commit().then((r) => done(...r));
    });
  }

  private async commit(): Promise<[UploadError | null, number?]> {
    const d = this.service.d;
    const final = this.part.slice(0, -PART.length);
    const sha256 = this.hash.digest('hex');
    try {
      closeSync(this.fd!);
      this.fd = null;
      renameSync(this.part, final);
      syncDir(path.dirname(final));
    } catch {
      return [this.discard({ code: 'upload.spool-write', message: 'cannot store the upload' })];
    }
    let id: number;
    try {
      id = await d.cdb.write(async (tx) => {
        const now = d.clock.now();
        const refused = quotaPassed(d.settings, await quotaUse(tx, this.who.linkId, now), this.bytes);
        if (refused) throw new QuotaRefused(refused);
        const uploadId = await repo.insertUpload(tx, {
          linkId: this.who.linkId,
          account: this.who.account,
          ip: this.who.ip,
          name: this.name,
          kind: uploadKind(this.name),
          bytes: this.bytes,
          sha256,
          spool: final,
          receivedAt: now.toISOString(),
        });
        await appendLog(
          tx,
          { type: 'file.uploaded', ...this.who.logFields, actor: this.who.account, ip: this.who.ip, channel: CHANNEL, object: this.name, detail: { upload: uploadId, kind: uploadKind(this.name), bytes: this.bytes, sha256 } },
          now,
        );
        return uploadId;
      });
    } catch (err) {
      removeFile(final);
      if (err instanceof QuotaRefused) return [this.discard(err.refusal)];
      const e = isUniqueViolation(err) ? { code: 'inbox.name-taken', message: 'an upload of this name is pending', denied: true } : { code: 'upload.not-recorded', message: 'the upload could not be recorded' };
      return [this.discard(e)];
    }
    this.service.forget(this);
    try {
      d.onUploaded(id);
    } catch {
      /* the processor's sweep finds pending uploads without a job */
    }
    return [null, id];
  }

  /** The session ended (or the client broke the rules) before CLOSE: nothing is kept, and it is logged. */
  abort(reason: string): void {
    if (this.failed || this.finishing) return;
    this.discard({ code: reason, message: 'upload aborted' });
  }

  /** Drop the file and log `upload.aborted`: an upload that is not a request leaves nothing but that record. */
  private discard(e: UploadError): UploadError {
    if (this.failed) return this.failed;
    this.failed = e;
    this.stage = null;
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        /* closed */
      }
      this.fd = null;
    }
    removeFile(this.part);
    this.service.forget(this);
    this.service.d.record({ type: 'upload.aborted', ...this.who.logFields, actor: this.who.account, ip: this.who.ip, channel: CHANNEL, object: this.name, detail: { bytes: this.bytes, reason: e.code } });
    return e;
  }
}

function writeAll(fd: number, b: Buffer): void {
  let off = 0;
  while (off < b.length) off += writeSync(fd, b, off, b.length - off);
}

function syncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function removeFile(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    /* not there */
  }
}
