import { Queue, QueueEvents } from 'bullmq';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { loadConfig, type Config } from '../../src/config';
import { clientPublicKey, ensureKeys } from '../../src/crypto';
import type { DeliveryView } from '../../src/extract';
import { startService, type RunningService } from '../../src/main';
import { connection, openQueue, QUEUES, queuePrefix } from '../../src/queue';
import { buildServices } from '../../src/services';
import { listLog } from '../../src/usagelog';
import { person, writeEntryExitSource } from '../helpers/source';
import { approvedLink, cleanupKeys, cli, makeAgencyKeys, openTestWorld, tmpDir, type AgencyKeys, type AnyWorld } from '../helpers/world';

const REDIS = process.env.NIA_TEST_REDIS_URL!;
let keys: AgencyKeys;
let w: AnyWorld;
let config: Config;
let svc: RunningService;
let extractQ: Queue;
let events: QueueEvents;
let sshd: ChildProcess;
let sshdPort: number;
let sshdDir: string;
let hostFingerprint: string;
let smtp: SMTPServer;
let smtpPort: number;
const mails: { rcpt: string[]; from: string; mail: ParsedMail }[] = [];

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 30000): Promise<T> {
  for (const t0 = Date.now(); Date.now() - t0 < ms; await new Promise((r) => setTimeout(r, 100))) {
    const v = await fn();
    if (v !== undefined) return v;
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Build a delivery through the real worker; its push jobs are enqueued by the worker itself. */
async function deliver(linkId: number): Promise<DeliveryView> {
  const job = await extractQ.add('manual-extract', { linkId, full: true, trigger: 'manual' });
  const { deliveryId } = (await job.waitUntilFinished(events, 60000)) as { deliveryId: number };
  return (await buildServices(config, w.cdb, w.clock).extracts.get(deliveryId))!;
}
const channel = (id: number, c: string) => async () => {
  const o = (await buildServices(config, w.cdb, w.clock).extracts.get(id))!.channels[c] as { status: string; error?: string; attempts?: number; remotePath?: string } | undefined;
  return o && !['queued', 'retrying'].includes(o.status) ? o : undefined;
};

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = await openTestWorld();
  sshdPort = await freePort();
  smtpPort = await freePort();
  config = loadConfig({ dataDir: w.dataDir }, {
    REDIS_URL: REDIS,
    NIA_LINK_LOG_LEVEL: 'silent',
    NIA_LINK_JOB_ATTEMPTS: '2',
    NIA_LINK_JOB_BACKOFF_MS: '200',
    NIA_LINK_JOB_LOCK_MS: '5000',
    NIA_LINK_PUSH_CONNECT_TIMEOUT_MS: '3000',
    NIA_LINK_SMTP_HOST: '127.0.0.1',
    NIA_LINK_SMTP_PORT: String(smtpPort),
    NIA_LINK_SMTP_REQUIRE_TLS: 'false',
    NIA_LINK_EMAIL_MAX_ATTACHMENT_BYTES: '1000000',
  });
  await ensureKeys(config.keysDir, new Date());
  writeEntryExitSource(w.dataDir, Array.from({ length: 50 }, (_, i) => person(i + 1)), '2026-01-01T00:00:00.000Z');

  // The agency's SFTP server: a real OpenSSH sshd on a loopback port that trusts NIA's client key.
  sshdDir = tmpDir('nia-link-sshd-');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(sshdDir, 'hostkey')]);
  hostFingerprint = execFileSync('ssh-keygen', ['-lf', path.join(sshdDir, 'hostkey.pub')]).toString().split(' ')[1];
  writeFileSync(path.join(sshdDir, 'authorized_keys'), clientPublicKey(config.keysDir), { mode: 0o600 });
  mkdirSync(path.join(sshdDir, 'in'));
  writeFileSync(
    path.join(sshdDir, 'sshd_config'),
    [
      `Port ${sshdPort}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${path.join(sshdDir, 'hostkey')}`,
      `PidFile ${path.join(sshdDir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(sshdDir, 'authorized_keys')}`,
      'StrictModes no',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      'Subsystem sftp internal-sftp',
    ].join('\n') + '\n',
  );
  mkdirSync('/run/sshd', { recursive: true });
  sshd = spawn('/usr/sbin/sshd', ['-D', '-f', path.join(sshdDir, 'sshd_config'), '-E', path.join(sshdDir, 'sshd.log')], { stdio: 'ignore' });
  await waitFor('sshd to listen', () => (readdirSync(sshdDir).includes('sshd.pid') ? true : undefined), 10000);

  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, session, cb) {
      simpleParser(stream).then((mail) => {
        mails.push({ rcpt: session.envelope.rcptTo.map((r) => r.address), from: (session.envelope.mailFrom as { address: string }).address, mail });
        cb();
      }, cb);
    },
  });
  await new Promise<void>((r) => smtp.listen(smtpPort, '127.0.0.1', r));

  svc = await startService({ ...config, database: w.database }, ['worker'], () => undefined, w.clock);
  extractQ = openQueue(QUEUES.extract, config, REDIS);
  events = new QueueEvents(QUEUES.extract, { connection: connection(REDIS), prefix: queuePrefix(config) });
  await events.waitUntilReady();
});

afterAll(async () => {
  await events?.close();
  for (const name of [QUEUES.extract, QUEUES.deliver]) {
    const q = new Queue(name, { connection: connection(REDIS), prefix: queuePrefix(config) });
    await q.obliterate({ force: true }).catch(() => undefined);
    await q.close();
  }
  await extractQ?.close();
  await svc?.stop();
  sshd?.kill('SIGTERM');
  await new Promise<void>((r) => smtp?.close(() => r()));
  await w?.close();
  cleanupKeys(keys);
});

const pushLink = (over: Record<string, unknown> = {}) =>
  approvedLink(w, keys, {
    account: undefined,
    sshKeys: [],
    methods: ['sftp-push'],
    push: { host: '127.0.0.1', port: sshdPort, user: os.userInfo().username, dir: path.join(sshdDir, 'in'), fingerprint: hostFingerprint },
    ...over,
  });

describe('sftp-push to a real OpenSSH sshd with a pinned host key', () => {
  it('R2.1 the file, its manifest and signature arrive byte-identical under their final names, and the push is logged', async () => {
    const id = await pushLink();
    const d = await deliver(id);
    const outcome = await waitFor('push outcome', channel(d.id, 'sftp-push'));
    expect(outcome).toMatchObject({ status: 'sent', remotePath: path.join(sshdDir, 'in', path.basename(d.path!)) });
    for (const f of [d.path!, d.manifest!, `${d.manifest!}.asc`]) expect(sha(path.join(sshdDir, 'in', path.basename(f)))).toBe(sha(f));
    expect(readdirSync(path.join(sshdDir, 'in')).filter((f) => f.endsWith('.part'))).toEqual([]);
    const pushed = await listLog(w.cdb.db, { linkId: id, type: 'file.pushed' });
    expect(pushed).toHaveLength(1);
    expect(JSON.parse(pushed[0].detail)).toMatchObject({ delivery: d.id, bytes: d.bytes, fingerprint: hostFingerprint });
  });

  it('a wrong pinned host key is refused at once, before any data is sent, and not retried', async () => {
    const before = readdirSync(path.join(sshdDir, 'in')).length;
    const id = await pushLink({ push: { host: '127.0.0.1', port: sshdPort, user: os.userInfo().username, dir: path.join(sshdDir, 'in'), fingerprint: 'SHA256:' + 'A'.repeat(43) } });
    const d = await deliver(id);
    const outcome = await waitFor('push outcome', channel(d.id, 'sftp-push'));
    expect(outcome).toMatchObject({ status: 'refused', attempts: 1, error: expect.stringMatching(/host key mismatch.*server offered SHA256:/) });
    expect(readdirSync(path.join(sshdDir, 'in')).length).toBe(before);
    expect(JSON.parse((await listLog(w.cdb.db, { linkId: id, type: 'push.refused' }))[0].detail).code).toBe('push.host-key-mismatch');
  });

  it('an unreachable host is retried with backoff, then marked failed, and can be queued again', async () => {
    const dead = await freePort(); // nothing listens there
    const id = await pushLink({ push: { host: '127.0.0.1', port: dead, user: 'nobody', dir: 'in', fingerprint: hostFingerprint } });
    const d = await deliver(id);
    const outcome = await waitFor('push outcome', channel(d.id, 'sftp-push'));
    expect(outcome).toMatchObject({ status: 'failed', attempts: 2, error: expect.stringMatching(/ECONNREFUSED/) });
    expect(await listLog(w.cdb.db, { linkId: id, type: 'push.failed' })).toHaveLength(1);
    expect(await buildServices(config, w.cdb, w.clock).pushes.retryJobs(d.id)).toEqual([{ deliveryId: d.id, channel: 'sftp-push' }]);
    // An operator queues it again from the CLI: recorded, then retried by the worker (and failing again here).
    const r = cli(w.dataDir, ['delivery', 'retry', String(d.id), '--by', 'duty-officer'], { REDIS_URL: REDIS, NIA_LINK_INSTANCE_ID: config.instanceId, NIA_LINK_JOB_ATTEMPTS: '2', NIA_LINK_JOB_BACKOFF_MS: '200' });
    expect(r.stdout).toMatch(/queued sftp-push again/);
    expect(await listLog(w.cdb.db, { linkId: id, type: 'delivery.retry-requested' })).toMatchObject([{ actor: 'duty-officer' }]);
    await waitFor('second failure', async () => ((await listLog(w.cdb.db, { linkId: id, type: 'push.failed' })).length === 2 ? true : undefined));
  });

  it('R5.1 a revision that removes the push channel stops pushes to it at once', async () => {
    const id = await pushLink({ email: ['it@agency.example.gov.tw'] });
    const cr = await w.registry.fileChange(id, 'method', { value: 'email' }, 'agency');
    await w.registry.approveChange(cr.id, 'nia');
    const services = buildServices(config, w.cdb, w.clock);
    const d = await deliver(id);
    expect((await services.pushes.jobsFor(d.id)).map((j) => j.channel)).toEqual(['email']);
    await expect(services.pushes.run({ deliveryId: d.id, channel: 'sftp-push' }, { attempt: 1, finalAttempt: true })).rejects.toThrow(/not approved for sftp-push/);
    expect(JSON.parse((await listLog(w.cdb.db, { linkId: id, type: 'push.refused' })).pop()!.detail).code).toBe('channel.not-approved');
  });
});

describe('e-mail delivery through a real SMTP server', () => {
  it('R2.1 only the registered addresses get the encrypted file, its manifest and signature; never plaintext', async () => {
    const id = await approvedLink(w, keys, { account: undefined, sshKeys: [], methods: ['email'], email: ['it@agency.example.gov.tw', 'chief@agency.example.gov.tw'] });
    const d = await deliver(id);
    const outcome = await waitFor('email outcome', channel(d.id, 'email'));
    expect(outcome).toMatchObject({ status: 'sent', attached: true });
    const m = mails.find((x) => x.mail.subject?.includes(`D${d.id} `))!;
    expect(m.rcpt.sort()).toEqual(['chief@agency.example.gov.tw', 'it@agency.example.gov.tw']);
    const files = Object.fromEntries(m.mail.attachments.map((a) => [a.filename, a.content]));
    expect(Object.keys(files).sort()).toEqual([path.basename(d.manifest!), `${path.basename(d.manifest!)}.asc`, path.basename(d.path!)].sort());
    expect(createHash('sha256').update(files[path.basename(d.path!)]).digest('hex')).toBe(d.sha256);
    expect(m.mail.text).not.toContain('A80000000'); // no record content in the body
    expect(JSON.parse((await listLog(w.cdb.db, { linkId: id, type: 'email.sent' }))[0].detail).recipients.sort()).toEqual(m.rcpt);

    // An address removed by a change never gets the next delivery.
    const cr = await w.registry.fileChange(id, 'method', { value: 'email', email: ['it@agency.example.gov.tw'] }, 'agency');
    await w.registry.approveChange(cr.id, 'nia');
    const d2 = await deliver(id);
    await waitFor('email outcome', channel(d2.id, 'email'));
    expect(mails.find((x) => x.mail.subject?.includes(`D${d2.id} `))!.rcpt).toEqual(['it@agency.example.gov.tw']);
  });

  it('a file over the e-mail limit is never attached: the message points to the SFTP server, or the push is refused without sftp-pull', async () => {
    writeEntryExitSource(w.dataDir, Array.from({ length: 20000 }, (_, i) => person(1000 + i)), '2026-02-01T00:00:00.000Z');
    const noPull = await approvedLink(w, keys, { account: undefined, sshKeys: [], methods: ['email'], email: ['a@agency.example.gov.tw'], fields: [{ name: 'person_id' }, { name: 'name_en' }, { name: 'name_zh' }, { name: 'passport_no' }] });
    const big = await deliver(noPull);
    expect(big.bytes!).toBeGreaterThan(config.email.maxAttachmentBytes);
    expect(await waitFor('email outcome', channel(big.id, 'email'))).toMatchObject({ status: 'refused', error: expect.stringMatching(/larger than the e-mail limit/) });
    const withPull = await approvedLink(w, keys, { account: 'emailpull', methods: ['sftp-pull', 'email'], email: ['b@agency.example.gov.tw'], fields: [{ name: 'person_id' }, { name: 'name_en' }, { name: 'name_zh' }, { name: 'passport_no' }] });
    const big2 = await deliver(withPull);
    expect(await waitFor('email outcome', channel(big2.id, 'email'))).toMatchObject({ status: 'sent', attached: false });
    const m = mails.find((x) => x.mail.subject?.includes(`D${big2.id} `))!;
    expect(m.mail.attachments).toEqual([]);
    expect(m.mail.text).toMatch(/fetch .* from \/outbox/);
  });
});
