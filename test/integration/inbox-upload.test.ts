import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import type { Config } from '../../src/config';
import { inbox } from '../../src/db/repositories';
import type { RunningService } from '../../src/main';
import { connection, QUEUES, queuePrefix } from '../../src/queue';
import { spoolDirOf } from '../../src/sftp/inbox';
import { listLog } from '../../src/usagelog';
import { sftpBatch, sftpConfig, startSftp } from '../helpers/sftp';
import { approvedLink, cleanupKeys, makeAgencyKeys, openTestWorld, refuseInserts, tmpDir, type AgencyKeys, type AnyWorld } from '../helpers/world';

let keys: AgencyKeys;
let w: AnyWorld;
let config: Config;
let svc: RunningService;
let port: number;
let dir: string;
let batchLink: number;
let plainLink: number;
let queue: Queue;

const logOf = async (type: string) => (await listLog(w.cdb.db, { type })).map((r) => ({ ...r, detail: JSON.parse(r.detail) }));
/** What the server answered, without the commands `sftp -b` echoes. */
const answers = (stdout: string) => stdout.split('\n').filter((l) => !l.startsWith('sftp>')).join('\n');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const spool = () => spoolDirOf(config.dataDir);
const spoolFiles = () => {
  try {
    return readdirSync(spool());
  } catch {
    return [];
  }
};
/** A file of random bytes in the test's directory (its content does not matter to the inbox). */
function localFile(name: string, bytes: number): { file: string; content: Buffer } {
  const content = randomBytes(bytes);
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return { file, content };
}

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = await openTestWorld();
  dir = tmpDir('nia-link-inbox-upload-');
  config = sftpConfig(w.dataDir, { NIA_LINK_SFTP_RECHECK: '60' });
  batchLink = await approvedLink(w, keys, { account: 'a001', methods: ['sftp-pull', 'batch-query'] });
  plainLink = await approvedLink(w, keys, { account: 'p001', methods: ['sftp-pull'] });
  ({ svc, port } = await startSftp(config, w));
  queue = new Queue(QUEUES.batch, { connection: connection(config.redisUrl!), prefix: queuePrefix(config) });
});
afterAll(async () => {
  await queue?.close();
  await svc?.stop();
  await w?.close();
  cleanupKeys(keys);
  rmSync(dir, { recursive: true, force: true });
});

describe('R2.2 uploads to /inbox with the OpenSSH client', () => {
  it('R2.2: `sftp put` makes exactly one pending request with file.uploaded (account, address, name, bytes, SHA-256), queued as one batch job', async () => {
    const { file, content } = localFile('req1.csv.pgp', 200_000);
    const r = await sftpBatch(port, keys.sshPrivateFile, 'a001', `put ${file} /inbox/req1.csv.pgp`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rows = (await inbox.uploadsOf(w.cdb.db, { linkId: batchLink })).filter((u) => u.name === 'req1.csv.pgp');
    expect(rows).toHaveLength(1);
    const row = rows[0];
    expect(row).toMatchObject({ account: 'a001', ip: '127.0.0.1', kind: 'batch', bytes: content.length, sha256: sha256(content), state: 'pending' });
    const recs = (await logOf('file.uploaded')).filter((x) => x.object === 'req1.csv.pgp');
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ actor: 'a001', ip: '127.0.0.1', linkId: batchLink, object: 'req1.csv.pgp' });
    expect(recs[0].detail).toMatchObject({ upload: row.id, bytes: content.length, sha256: sha256(content), kind: 'batch' });
    // The bytes on disk are the bytes sent.
    expect(statSync(row.spool).size).toBe(content.length);
    // One job per upload on the batch queue, named by the upload.
    let job = await queue.getJob(`upload-${row.id}`);
    for (let i = 0; i < 50 && !job; i++) {
      await new Promise((res) => setTimeout(res, 100));
      job = await queue.getJob(`upload-${row.id}`);
    }
    expect(job?.name).toBe('batch-request');
    expect(job?.data).toEqual({ uploadId: row.id });
  });

  it('R2.2: a CLOSE whose record cannot be committed is answered FAILURE: the client never sees success for an upload nobody recorded, and nothing is left', async () => {
    const { file } = localFile('req-unrecorded.csv.pgp', 10_000);
    const undo = await refuseInserts(w.cdb, 'inbox_upload');
    let r;
    try {
      r = await sftpBatch(port, keys.sshPrivateFile, 'a001', `put ${file} /inbox/req-unrecorded.csv.pgp`);
    } finally {
      await undo();
    }
    expect(r.code).not.toBe(0);
    expect((await inbox.uploadsOf(w.cdb.db, { linkId: batchLink })).some((u) => u.name === 'req-unrecorded.csv.pgp')).toBe(false);
    expect((await logOf('file.uploaded')).some((x) => x.object === 'req-unrecorded.csv.pgp')).toBe(false);
    expect((await logOf('upload.aborted')).some((x) => x.object === 'req-unrecorded.csv.pgp' && x.detail.reason === 'upload.not-recorded')).toBe(true);
    const pending = new Set((await inbox.pendingUploads(w.cdb.db, batchLink)).map((u) => path.basename(u.spool)));
    expect(spoolFiles().filter((f) => !pending.has(f))).toEqual([]);
  });

  it('R2.2: `ls /inbox` lists the account\'s pending uploads with their sizes, and a subject list is recorded as one', async () => {
    const { file, content } = localFile('subjects-2026.csv.pgp', 1234);
    const put = await sftpBatch(port, keys.sshPrivateFile, 'a001', `put ${file} /inbox/subjects-2026.csv.pgp`);
    expect(put.code).toBe(0);
    const r = await sftpBatch(port, keys.sshPrivateFile, 'a001', 'ls -l /inbox\nls /\nls -l /inbox/subjects-2026.csv.pgp');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`--w------- +1 nia +a001 +${content.length} .* subjects-2026\\.csv\\.pgp`));
    expect(r.stdout).toMatch(/ 200000 .*req1\.csv\.pgp/);
    expect(answers(r.stdout)).toMatch(/\/inbox\s+\/outbox/);
    const row = (await inbox.uploadsOf(w.cdb.db, { linkId: batchLink })).find((u) => u.name === 'subjects-2026.csv.pgp');
    expect(row?.kind).toBe('subjects');
  });

  it('R2.2: the spool file is private (0600 in a 0700 directory) and outside anything SFTP can list or name', async () => {
    const row = (await inbox.uploadsOf(w.cdb.db, { linkId: batchLink })).find((u) => u.name === 'req1.csv.pgp')!;
    expect(path.dirname(row.spool)).toBe(spool());
    expect(statSync(row.spool).mode & 0o777).toBe(0o600);
    expect(statSync(spool()).mode & 0o777).toBe(0o700);
    // The spool name is random: not the uploaded name.
    expect(path.basename(row.spool)).not.toContain('req1');
    const r = await sftpBatch(port, keys.sshPrivateFile, 'a001', `-get /inbox/${path.basename(row.spool)} ${dir}/x\n-get ../spool/inbox/${path.basename(row.spool)} ${dir}/y\n-get /inbox/req1.csv.pgp ${dir}/z\nls /\nls /inbox\nls /outbox`);
    expect(answers(r.stdout)).toContain('/inbox/req1.csv.pgp');
    expect(answers(r.stdout)).not.toContain(path.basename(row.spool));
    expect(spoolFiles()).toContain(path.basename(row.spool));
    expect(() => statSync(`${dir}/x`)).toThrow();
    expect(() => statSync(`${dir}/y`)).toThrow();
    expect(() => statSync(`${dir}/z`)).toThrow();
  });

  it('R2.2: an account whose link has no batch-query and no subject list has no /inbox and cannot write anywhere', async () => {
    const { file } = localFile('req-plain.csv.pgp', 100);
    const before = spoolFiles().length;
    const put = await sftpBatch(port, keys.sshPrivateFile, 'p001', `put ${file} /inbox/req-plain.csv.pgp`);
    expect(put.code).not.toBe(0);
    const ls = await sftpBatch(port, keys.sshPrivateFile, 'p001', 'ls /\n-ls /inbox');
    expect(answers(ls.stdout)).toMatch(/\/outbox/);
    expect(answers(ls.stdout)).not.toContain('inbox');
    expect(ls.stderr).toMatch(/not found|No such file/i);
    expect(await inbox.uploadsOf(w.cdb.db, { linkId: plainLink })).toHaveLength(0);
    expect(spoolFiles().length).toBe(before);
  });
});
