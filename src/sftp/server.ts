import { createServer, type Server as NetServer, Socket as NetSocket, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { type AuthContext, type Connection, type ParsedKey, Server as SshServer, utils } from 'ssh2';
import type { Config } from '../config';
import type { ControlDb } from '../db';
import { deliveries, queries } from '../db/repositories';
import { dummyPasswordHash, hostKeys, verifyPassword } from '../crypto';
import { type Clock, normaliseIp, taipeiDate } from '../domain';
import { publishedFiles } from '../outbox';
import type { Logger } from '../logger';
import type { TypedQueue } from '../queue';
import { QUEUES, queuePrefix } from '../queue/names';
import { linkEventsChannel } from '../queue/link-events';
import type { LinkState } from '../registry';
import type { FrontEndServices } from '../services';
import { appendLog, type LogEntry } from '../usagelog';
import { type AccountRow, AccountService } from '../registry/accounts';
import { Defender } from './defender';
import { Gate } from './gate';
import { InboxService, inboxEnabled, spoolDirOf, Upload } from './inbox';
import { RefusalLog } from './refusals';
import { type ConnectionShare, type DownloadRecord, guardWindow, SftpSession } from './session';
import { type FileNode, OutboxTree, type Published } from './tree';

/**
 * What the server offers, strongest first: no SHA-1 (MACs, key exchange, signatures), no CBC, no
 * DH group1/group14-sha1. README lists the same.
 */
export const ALGORITHMS = {
  kex: [
    'curve25519-sha256',
    'curve25519-sha256@libssh.org',
    'ecdh-sha2-nistp256',
    'ecdh-sha2-nistp384',
    'ecdh-sha2-nistp521',
    'diffie-hellman-group-exchange-sha256',
    'diffie-hellman-group16-sha512',
    'diffie-hellman-group18-sha512',
    'diffie-hellman-group14-sha256',
  ],
  serverHostKey: ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256'],
  cipher: ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr'],
  hmac: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512'],
  compress: ['none'],
} as const;

/** Auth requests one connection may make (OpenSSH's MaxAuthTries is 6 failures; `none` and probes count here too). */
const MAX_AUTH_REQUESTS = 20;
/** Session channels per connection (OpenSSH's MaxSessions). */
const MAX_SESSIONS = 10;
const CHANNEL = 'sftp-pull';
/** A session closed for its client's shut window gets this long to go; then the whole connection goes. */
const CLOSE_GRACE_MS = 5000;

/** "This address was banned", on Redis: every SFTP process closes its connections from there that have not logged in. */
export function banEventsChannel(config: Pick<Config, 'instanceId'>): string {
  return `nia:${config.instanceId}:events:sftp-banned`;
}

export interface SftpDeps {
  config: Config;
  cdb: ControlDb;
  services: FrontEndServices;
  redisUrl: string;
  clock: Clock;
  log: Logger;
  /**
   * One of several SFTP processes: the primary accepts and gates connections and hands on those that
   * passed, over IPC (message HANDOFF with the socket); this process does not listen itself.
   */
  handedOn?: boolean;
  /** An upload to /inbox was recorded; by default it is queued for processing (queue `batch`). */
  onUploaded?: (uploadId: number) => void;
}

/** The IPC message with which the primary hands a connection to an SFTP worker process. */
export const HANDOFF = 'nia-link:sftp-connection';

export interface RunningSftp {
  port: number;
  close(): Promise<void>;
}

interface Conn {
  ip: string;
  socket: Socket;
  client?: Connection;
  authRequests: number;
  /** Set once logged in. */
  account?: AccountRow;
  /** The key it logged in with: revoking it closes the session. */
  keyId?: number;
  state?: LinkState;
  sessions: Set<SftpSession>;
  /** Session channels open, with or without the sftp subsystem. */
  channels: number;
  /** The budget, meter and handles its sessions share. */
  share: ConnectionShare;
  handles: number;
  lastActivity: number;
  /** Bytes the kernel had taken from the socket when last seen moving, and when: a peer that takes nothing at all is let go. */
  written: { bytes: number; at: number };
  grace?: NodeJS.Timeout;
  ending?: boolean;
}

/** An authorized key as stored (one `type base64 comment` line); null if ssh2 cannot read it. */
function publicKey(line: string): ParsedKey | null {
  const parsed = utils.parseKey(line);
  if (parsed instanceof Error) return null;
  return Array.isArray(parsed) ? parsed[0] : parsed;
}

/** Strip what a client could use to forge log lines or bloat records: user names are attacker input. */
const printable = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);

/**
 * The SFTP role: agencies pull their link's deliveries, read-only, from a per-account virtual tree.
 * Addresses no account may use are refused at TCP accept, before any SSH byte is sent; banned
 * addresses too. Logins are checked against the database every time, and sessions are re-checked
 * every few seconds and whenever a link change is announced on Redis.
 */
export async function startSftpServer(d: SftpDeps): Promise<RunningSftp> {
  const { config, cdb, services, clock, log } = d;
  const s = config.sftp;
  const accounts = new AccountService(cdb, services.registry, clock, (id) => services.linkEvents.publish(id));
  const redis = new Redis(d.redisUrl, { maxRetriesPerRequest: 1 });
  redis.on('error', (err) => log.warn({ err: err.message }, 'sftp: redis error'));
  const defender = new Defender(redis, queuePrefix(config), s.defender);
  const refusals = new RefusalLog(cdb, clock, { intervalSec: s.refusedLogIntervalSec, maxIps: s.refusedLogMaxIps }, (err) => log.error({ err: err.message }, 'sftp: refused connections not logged'));
  // Uploads refused at OPEN (a quota, a name), counted per account and address like refused connections.
  const uploadRefusals = new RefusalLog(cdb, clock, { intervalSec: s.refusedLogIntervalSec, maxIps: s.refusedLogMaxIps }, (err) => log.error({ err: err.message }, 'sftp: refused uploads not logged'), { type: 'upload.refused', channel: 'batch-query' });
  // Uploads are queued for the batch processor; without Redis they stay pending, and its sweep finds them.
  // BullMQ is loaded with the first upload: a front end that only serves downloads never carries it.
  let batchQueue: Promise<TypedQueue<'batch'>> | undefined;
  const closeBatchQueue = async () => {
    const queue = await batchQueue?.catch(() => undefined);
    if (queue) await (await import('../queue')).closeQueues([queue], d.redisUrl);
  };
  const enqueueUpload = (uploadId: number) => {
    batchQueue ??= import('../queue').then((q) => q.openQueue(QUEUES.batch, config, d.redisUrl, log));
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 5 s')), 5000).unref());
    Promise.race([batchQueue.then((q) => q.add('batch-request', { uploadId }, { jobId: `upload-${uploadId}` })), timeout]).catch((err) =>
      log.warn({ err: (err as Error).message, uploadId }, 'sftp: upload not queued (redis); it stays pending for the batch sweep'),
    );
  };
  const inbox = new InboxService({
    cdb,
    clock,
    settings: config.inbox,
    spoolDir: spoolDirOf(config.dataDir),
    record: (entry) => void record(entry),
    onUploaded: (id) => (d.onUploaded ?? enqueueUpload)(id),
  });
  inbox.sweepOrphans();
  const conns = new Set<Conn>();
  const byPeer = new Map<string, Conn>();
  const perIp = new Map<string, number>();
  const handlesOf = new Map<number, number>();
  let gating = 0;
  let closing = false;

  /** Resolves once the record is committed, or its loss logged: it never rejects. */
  const record = async (entry: LogEntry): Promise<void> => {
    try {
      await cdb.write((tx) => appendLog(tx, { channel: CHANNEL, ...entry }, clock.now()));
    } catch (err) {
      log.error({ err: (err as Error).message, type: entry.type }, 'sftp: usage-log record not written');
    }
  };
  /** End a connection politely, and for good after two seconds if the client does not close it. */
  const end = (c: Conn) => {
    if (c.ending) return;
    c.ending = true;
    c.client?.end();
    setTimeout(() => c.socket.destroy(), 2000).unref();
  };
  const linkFields = (st?: LinkState) => (st ? { agency: st.agency.code, linkId: st.link.id, revision: st.link.currentRevision } : {});

  // ---- the gate, at TCP accept ----

  // Every connection is refused or let through at the cost of a few map look-ups, whatever the number
  // of links. With several processes the primary has run the gate already (sftp/cluster.ts); what it
  // hands on is only counted against this process's share of the limits.
  const gate = new Gate({ cdb, accounts, clock, defender, settings: s, log });
  let changeThisTurn: Promise<string> | undefined;
  const databaseChange = (): Promise<string> => {
    if (changeThisTurn === undefined) {
      changeThisTurn = queries.dataChangeToken(cdb.db);
      setImmediate(() => (changeThisTurn = undefined));
    }
    return changeThisTurn;
  };

  function capacity(ip: string): string | null {
    if (conns.size + gating >= s.maxConnections) return 'capacity';
    if ((perIp.get(ip) ?? 0) >= s.maxConnectionsPerIp) return 'capacity.address';
    return null;
  }

  const countIp = (ip: string, d: number) => {
    const n = (perIp.get(ip) ?? 0) + d;
    if (n > 0) perIp.set(ip, n);
    else perIp.delete(ip);
  };

  async function accept(socket: Socket, gated: boolean): Promise<void> {
    const ip = normaliseIp(socket.remoteAddress ?? '');
    if (closing) return void socket.destroy();
    // Before the gate is asked: a reset while it reads the database must not go unheard.
    socket.on('error', () => undefined);
    let refusal: string | null;
    try {
      refusal = (gated ? null : await gate.check(ip)) ?? capacity(ip);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'sftp: gate failed; connection refused');
      refusal = 'error';
    }
    if (refusal) {
      refusals.note(ip, refusal);
      return void socket.destroy();
    }
    if (!gated) {
      // Held while the defender is asked, so the connections waiting for it count against the limits.
      gating++;
      countIp(ip, 1);
      let isBanned: boolean;
      try {
        isBanned = await gate.banned(ip);
      } finally {
        gating--;
        countIp(ip, -1);
      }
      if (isBanned) {
        refusals.note(ip, 'banned');
        return void socket.destroy();
      }
    }
    if (socket.destroyed || closing) return void socket.destroy();
    const share: ConnectionShare = {
      limit: s.connectionBufferBytes,
      meter: { out: 0, parked: 0 },
      socket,
      needRoom: new Set(),
      handles: { take: () => takeHandle(conn), give: () => giveHandle(conn) },
    };
    const conn: Conn = { ip, socket, authRequests: 0, sessions: new Set(), channels: 0, share, handles: 0, lastActivity: Date.now(), written: { bytes: 0, at: Date.now() } };
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    conns.add(conn);
    countIp(ip, 1);
    byPeer.set(peer, conn);
    conn.grace = setTimeout(() => !conn.account && socket.destroy(), s.loginGraceSec * 1000);
    // The socket took what ssh2 had for it: sessions held back by the connection's budget may go on.
    socket.on('drain', () => {
      for (const ss of conn.sessions) ss.wake();
    });
    socket.once('close', () => {
      clearTimeout(conn.grace);
      conns.delete(conn);
      countIp(ip, -1);
      byPeer.delete(peer);
      for (const ss of conn.sessions) ss.closeAll();
    });
    ssh.injectSocket(socket);
  }

  // ---- handles: per connection, and per account in this process ----

  function takeHandle(c: Conn): boolean {
    const account = c.account?.id;
    if (account === undefined || c.handles >= s.maxHandlesPerConnection) return false;
    const n = handlesOf.get(account) ?? 0;
    if (n >= s.maxHandlesPerAccount) return false;
    handlesOf.set(account, n + 1);
    c.handles++;
    return true;
  }
  function giveHandle(c: Conn): void {
    const account = c.account?.id;
    if (account === undefined || c.handles === 0) return;
    c.handles--;
    const n = (handlesOf.get(account) ?? 1) - 1;
    if (n > 0) handlesOf.set(account, n);
    else handlesOf.delete(account);
  }

  // ---- authentication ----

  const methods = s.passwordAuth ? ['publickey', 'password'] : ['publickey'];

  async function refuse(conn: Conn, ctx: AuthContext, reason: string, account?: AccountRow, extra: Record<string, unknown> = {}): Promise<void> {
    ctx.reject(methods as any);
    let st: LinkState | undefined;
    try {
      st = account ? await services.registry.state(account.linkId) : undefined;
    } catch {
      /* a link the account points at must exist; the record is written without it otherwise */
    }
    await record({ type: 'auth.failed', ...linkFields(st), actor: account?.username ?? null, ip: conn.ip, detail: { method: ctx.method, reason, ...(account ? {} : { username: printable(ctx.username) }), ...extra } });
    defender
      .fail(conn.ip, reason)
      .then((ban) => {
        if (!ban) return;
        void record({ type: 'defender.banned', ip: ban.ip, actor: 'sftp', detail: { score: ban.score, bans: ban.bans, until: ban.until, reason } });
        dropPending(ban.ip);
        // The other SFTP processes hold connections from there too (the kernel spreads them out).
        redis.publish(banEventsChannel(config), ban.ip).catch((err) => log.warn({ err: (err as Error).message }, 'sftp: ban not announced (redis)'));
      })
      .catch((err) => log.warn({ err: (err as Error).message }, 'sftp: defender not updated (redis)'));
  }

  async function loggedIn(conn: Conn, ctx: AuthContext, account: AccountRow, st: LinkState, key?: { id: number; fingerprint: string; algorithm: string }): Promise<void> {
    if (conn.socket.destroyed) return;
    conn.account = account;
    conn.state = st;
    conn.keyId = key?.id;
    clearTimeout(conn.grace);
    ctx.accept();
    await record({ type: 'auth.succeeded', ...linkFields(st), actor: account.username, ip: conn.ip, detail: { method: ctx.method, ...(key ? { key: key.fingerprint, algorithm: key.algorithm } : {}) } });
  }

  async function authenticate(conn: Conn, ctx: AuthContext): Promise<void> {
    if (++conn.authRequests > MAX_AUTH_REQUESTS) {
      ctx.reject();
      return void conn.client?.end();
    }
    // Every client starts with `none` to learn the methods: not a failed login.
    if (ctx.method === 'none') return ctx.reject(methods as any);
    if (ctx.method !== 'publickey' && !(ctx.method === 'password' && s.passwordAuth)) return refuse(conn, ctx, 'method.not-allowed');
    const account = await accounts.find(ctx.username);
    const now = clock.now();

    if (ctx.method === 'password') {
      const matches = await verifyPassword(ctx.password, account?.passwordHash ?? (await dummyPasswordHash()));
      if (!account) return refuse(conn, ctx, 'account.unknown');
      if (!account.passwordHash) return refuse(conn, ctx, 'password.not-set', account);
      if (!matches) return refuse(conn, ctx, 'password.wrong', account);
      const may = await accounts.mayPull(account, conn.ip, now);
      if (!may.ok) return refuse(conn, ctx, may.refusal.code, account);
      return loggedIn(conn, ctx, account, may.value);
    }

    if (ctx.method !== 'publickey') return;
    if (!account) return refuse(conn, ctx, 'account.unknown');
    const offered = ctx.key.data;
    const key = (await accounts.activeKeys(account.id)).find((k) => publicKey(k.publicKey)?.getPublicSSH().equals(offered));
    if (!key) return refuse(conn, ctx, 'key.unknown', account, { probe: !ctx.signature });
    // The algorithm the client names must be the key's own (ssh2 reports rsa-sha2-* as ssh-rsa plus a hash).
    if (ctx.key.algo !== key.algorithm) return refuse(conn, ctx, 'key.algorithm-mismatch', account, { key: key.fingerprint, algorithm: ctx.key.algo });
    if (key.algorithm === 'ssh-rsa' && !ctx.hashAlgo) return refuse(conn, ctx, 'key.sha1-signature', account, { key: key.fingerprint });
    const may = await accounts.mayPull(account, conn.ip, now);
    if (!may.ok) return refuse(conn, ctx, may.refusal.code, account, { key: key.fingerprint });
    // A probe without a signature only learns that the key would do (PK_OK); it is not logged in.
    if (!ctx.signature || !ctx.blob) return ctx.accept();
    // verify() can return an Error object, which is truthy: only `true` is a valid signature.
    const valid = publicKey(key.publicKey)?.verify(ctx.blob, ctx.signature, ctx.hashAlgo as any) === true;
    if (!valid) return refuse(conn, ctx, 'signature.invalid', account, { key: key.fingerprint });
    await loggedIn(conn, ctx, account, may.value, key);
  }

  // ---- sessions ----

  /** Connections from `ip` that have not logged in are closed (a ban, here or in another process). */
  function dropPending(ip: string): void {
    for (const c of conns) if (c.ip === ip && !c.account) c.socket.destroy();
  }


  /** Never rejects: a record that cannot be written is logged, like record()'s. */
  async function downloaded(conn: Conn, r: DownloadRecord): Promise<void> {
    const account = conn.account!;
    let row: deliveries.DeliveryRow | undefined;
    try {
      row = await deliveries.byId(cdb.db, r.file.delivery);
    } catch (err) {
      return log.error({ err: (err as Error).message, type: 'file.downloaded' }, 'sftp: usage-log record not written');
    }
    await record({
      type: 'file.downloaded',
      ...linkFields(conn.state),
      revision: row?.revision ?? conn.state?.link.currentRevision ?? null,
      actor: account.username,
      ip: conn.ip,
      object: r.file.name,
      detail: { delivery: r.file.delivery, file: r.file.role, bytes: r.bytes, size: r.file.size, from: r.from, to: r.to, result: r.result, ...(r.opens ? { opens: r.opens } : {}) },
    });
  }

  /** R6.1: committed before the first byte of `file` is served; false (the OPEN is refused) when it cannot be. */
  async function downloadStarting(conn: Conn, file: FileNode): Promise<boolean> {
    try {
      const row = await deliveries.byId(cdb.db, file.delivery);
      await cdb.write((tx) =>
        appendLog(
          tx,
          {
            type: 'file.download-started',
            channel: CHANNEL,
            ...linkFields(conn.state),
            revision: row?.revision ?? conn.state?.link.currentRevision ?? null,
            actor: conn.account!.username,
            ip: conn.ip,
            object: file.name,
            detail: { delivery: file.delivery, file: file.role, size: file.size, offset: 0 },
          },
          clock.now(),
        ),
      );
      return true;
    } catch (err) {
      log.error({ err: (err as Error).message }, 'sftp: download not logged; the file is not served');
      return false;
    }
  }

  /** Whether the link takes uploads now (its current revision); a link that cannot be read takes none. */
  async function takesUploads(linkId: number): Promise<boolean> {
    try {
      return inboxEnabled((await services.registry.state(linkId)).content);
    } catch {
      return false;
    }
  }

  function onClient(client: Connection, info: { ip: string; port: number }): void {
    const conn = byPeer.get(`${info.ip}:${info.port}`);
    if (!conn) return void client.end();
    conn.client = client;
    client.on('error', (err) => log.debug({ err: err.message }, 'sftp: client error'));
    client.on('authentication', (ctx) => {
      authenticate(conn, ctx).catch((err) => {
        log.error({ err: (err as Error).message }, 'sftp: authentication failed with an error');
        ctx.reject();
      });
    });
    client.on('ready', () => {
      conn.lastActivity = Date.now();
      client.on('session', (acceptSession, rejectSession) => {
        if (conn.channels >= MAX_SESSIONS) return rejectSession();
        const session = acceptSession();
        conn.channels++;
        session.once('close', () => conn.channels--);
        // Only the sftp subsystem: without listeners ssh2 refuses shell, exec, env, pty, x11 and agent
        // requests, and (no 'tcpip' / 'request' listeners) every kind of forwarding.
        session.on('subsystem', (acceptSubsystem, rejectSubsystem, info) => {
          if (info.name !== 'sftp') return rejectSubsystem();
          const channel = acceptSubsystem();
          const linkId = conn.account!.linkId;
          const tree = new OutboxTree({
            published: () => publishedFor(cdb, linkId),
            stat: (name) => services.outbox.stat(linkId, name),
            version: databaseChange,
            now: () => clock.now().getTime(),
            inbox: { enabled: () => takesUploads(linkId), pending: () => inbox.listing(linkId) },
          });
          const username = conn.account!.username;
          const ss = new SftpSession(channel, tree, {
            username: conn.account!.username,
            limit: s.sessionBufferBytes,
            share: conn.share,
            downloadLogIntervalMs: s.downloadLogIntervalSec * 1000,
            activity: () => (conn.lastActivity = Date.now()),
            downloaded: (r) => void downloaded(conn, r),
            downloadStarting: (file) => downloadStarting(conn, file),
            open: (file) => services.outbox.open(linkId, file.name),
            inbox: {
              begin: async (name) => {
                const r = await inbox.begin({ linkId, account: username, ip: conn.ip, logFields: linkFields(conn.state) }, name);
                if (!(r instanceof Upload)) uploadRefusals.note(conn.ip, r.code, { ...linkFields(conn.state), account: username });
                return r;
              },
            },
            abuse: (reason) => {
              log.warn({ reason }, 'sftp: session ended for abuse');
              end(conn);
            },
          });
          guardWindow(channel, () => ss.overrun());
          conn.sessions.add(ss);
          channel.on('close', () => conn.sessions.delete(ss));
        });
      });
    });
  }

  // ---- re-checks: idle sessions, and links that stopped being usable ----

  async function recheck(linkId?: number): Promise<void> {
    const now = clock.now();
    for (const c of conns) {
      if (!c.account || c.ending || (linkId !== undefined && c.account.linkId !== linkId)) continue;
      let reason: string | null = null;
      try {
        const may = await accounts.mayPull(c.account, c.ip, now);
        if (!may.ok) reason = may.refusal.code;
        else if (c.keyId !== undefined && !(await accounts.activeKeys(c.account.id)).some((k) => k.id === c.keyId)) reason = 'key.revoked';
      } catch (err) {
        // Fail closed: a session stays open only while it is known to be allowed.
        log.error({ err: (err as Error).message }, 'sftp: session re-check failed; session closed');
        reason = 'check.failed';
      }
      // Another re-check may have ended it meanwhile: one record.
      if (reason && !c.ending) {
        void record({ type: 'session.closed', ...linkFields(c.state), actor: c.account.username, ip: c.ip, detail: { reason } });
        end(c);
      }
    }
  }
  /** A client that takes none of a session's answers for stallTimeoutSec loses the session; one that takes nothing at all, the connection. */
  function stalled(c: Conn, now: number): void {
    const limit = s.stallTimeoutSec * 1000;
    for (const ss of c.sessions) {
      if (ss.stalledFor(now) <= limit) continue;
      void record({ type: 'session.closed', ...linkFields(c.state), actor: c.account?.username ?? null, ip: c.ip, detail: { reason: 'window.shut', seconds: s.stallTimeoutSec } });
      ss.shut();
      c.sessions.delete(ss);
      setTimeout(() => !ss.channelClosed && end(c), CLOSE_GRACE_MS).unref();
    }
    // bytesWritten counts what is still buffered too: what the kernel took is the difference.
    const sent = c.socket.bytesWritten - c.socket.writableLength;
    const w = c.written;
    if (sent !== w.bytes || c.socket.writableLength === 0) {
      w.bytes = sent;
      w.at = now;
    } else if (now - w.at > limit) {
      end(c);
    }
  }

  let ticks = 0;
  const timer = setInterval(() => {
    const now = Date.now();
    const idleBefore = now - s.idleTimeoutSec * 1000;
    const clockNow = clock.now().getTime();
    for (const c of conns) {
      if (c.account && c.lastActivity < idleBefore) end(c);
      for (const ss of c.sessions) ss.tick(clockNow);
      stalled(c, now);
    }
    if (++ticks % s.recheckSec === 0) {
      // Accounts changed behind the service's back move no registry version: the allow-set is made again now and then.
      gate.tick();
      void recheck().catch((err) => log.error({ err: (err as Error).message }, 'sftp: session re-check failed'));
    }
  }, 1000);
  timer.unref();

  const subscriber = new Redis(d.redisUrl, { maxRetriesPerRequest: null });
  subscriber.on('error', (err) => log.warn({ err: err.message }, 'sftp: redis subscriber error'));
  const bans = banEventsChannel(config);
  subscriber.on('message', (channel: string, message: string) => {
    if (channel === bans) return dropPending(normaliseIp(message));
    gate.invalidate();
    const id = Number(message);
    if (Number.isInteger(id) && id > 0) void recheck(id).catch((err) => log.error({ err: (err as Error).message }, 'sftp: session re-check failed'));
  });
  await subscriber.subscribe(linkEventsChannel(config), bans);

  // ---- listening ----

  const ssh = new SshServer({ hostKeys: hostKeys(config.keysDir).map((k) => k.private), algorithms: ALGORITHMS as any, ident: 'nia-link' }, onClient);
  refusals.start();
  uploadRefusals.start();
  if (d.handedOn) {
    const handed = (m: unknown, socket: unknown) => {
      if (m === HANDOFF && socket instanceof NetSocket) void accept(socket, true);
    };
    process.on('message', handed);
    return {
      port: s.port,
      async close() {
        closing = true;
        process.off('message', handed);
        clearInterval(timer);
        for (const c of conns) {
          for (const ss of c.sessions) ss.closeAll();
          c.client?.end();
          c.socket.destroy();
        }
        await refusals.stop();
        await uploadRefusals.stop();
        await closeBatchQueue();
        await subscriber.quit().catch(() => subscriber.disconnect());
        await redis.quit().catch(() => redis.disconnect());
      },
    };
  }
  const server: NetServer = createServer({ pauseOnConnect: true }, (socket) => void accept(socket, false));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(s.port, s.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    clearInterval(timer);
    await refusals.stop();
    await uploadRefusals.stop();
    subscriber.disconnect();
    redis.disconnect();
    throw err;
  }
  server.on('error', (err) => log.error({ err: err.message }, 'sftp: listener error'));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : s.port;

  return {
    port,
    async close() {
      closing = true;
      clearInterval(timer);
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of conns) {
        for (const ss of c.sessions) ss.closeAll();
        c.client?.end();
        c.socket.destroy();
      }
      await stopped;
      await refusals.stop();
      await uploadRefusals.stop();
      await closeBatchQueue();
      await subscriber.quit().catch(() => subscriber.disconnect());
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** The files of a link's built deliveries that its SFTP tree may show, by name (from the delivery rows). */
export async function publishedFor(cdb: ControlDb, linkId: number): Promise<Published[]> {
  return (await deliveries.builtForLink(cdb.db, linkId)).flatMap((row) => {
    if (!row.fileName) return [];
    const files = publishedFiles(row.fileName);
    const createdAt = row.builtAt ?? row.createdAt;
    const expiresAt = row.expiresAt;
    return [
      { delivery: row.id, role: 'data' as const, name: files.data, createdAt, expiresAt },
      { delivery: row.id, role: 'manifest' as const, name: files.manifest, createdAt, expiresAt },
      { delivery: row.id, role: 'signature' as const, name: files.signature, createdAt, expiresAt },
    ];
  });
}
