import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { type AuthContext, type Connection, type ParsedKey, Server as SshServer, utils } from 'ssh2';
import type { Config } from '../config';
import type { ControlDb } from '../db';
import { deliveries } from '../db/repositories';
import { dummyPasswordHash, hostKeys, verifyPassword } from '../crypto';
import { type Clock, normaliseIp } from '../domain';
import type { Logger } from '../logger';
import { queuePrefix } from '../queue';
import { linkEventsChannel } from '../queue/link-events';
import type { LinkState } from '../registry';
import type { Services } from '../services';
import { appendLog, type LogEntry } from '../usagelog';
import { type AccountRow, AccountService } from './accounts';
import { Defender } from './defender';
import { RefusalLog } from './refusals';
import { type DownloadRecord, SftpSession } from './session';
import { OutboxTree, type Published } from './tree';

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

export interface SftpDeps {
  config: Config;
  cdb: ControlDb;
  services: Services;
  redisUrl: string;
  clock: Clock;
  log: Logger;
}

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
  lastActivity: number;
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
  const conns = new Set<Conn>();
  const byPeer = new Map<string, Conn>();
  let gating = 0;
  let closing = false;

  const record = (entry: LogEntry) => {
    try {
      cdb.write((tx) => appendLog(tx, { channel: CHANNEL, ...entry }, clock.now()));
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

  const countFrom = (ip: string) => {
    let n = 0;
    for (const c of conns) if (c.ip === ip) n++;
    return n;
  };
  async function gate(ip: string): Promise<string | null> {
    if (conns.size + gating > s.maxConnections) return 'capacity';
    if (countFrom(ip) >= s.maxConnectionsPerIp) return 'capacity.address';
    if (!accounts.anyMayPullFrom(ip, clock.now())) return 'ip.not-allowed';
    try {
      const banned = await Promise.race([defender.isBanned(ip), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 1 s')), 1000).unref())]);
      if (banned) return 'banned';
    } catch (err) {
      // The allow-list and the login checks still hold; the defender is a second line.
      log.warn({ err: (err as Error).message }, 'sftp: ban check failed (redis); connection allowed');
    }
    return null;
  }

  async function accept(socket: Socket): Promise<void> {
    const ip = normaliseIp(socket.remoteAddress ?? '');
    socket.on('error', () => undefined);
    if (closing) return void socket.destroy();
    gating++;
    let refusal: string | null;
    try {
      refusal = await gate(ip);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'sftp: gate failed; connection refused');
      refusal = 'error';
    } finally {
      gating--;
    }
    if (refusal) {
      refusals.note(ip, refusal);
      return void socket.destroy();
    }
    if (socket.destroyed || closing) return void socket.destroy();
    const conn: Conn = { ip, socket, authRequests: 0, sessions: new Set(), channels: 0, lastActivity: Date.now() };
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    conns.add(conn);
    byPeer.set(peer, conn);
    conn.grace = setTimeout(() => !conn.account && socket.destroy(), s.loginGraceSec * 1000);
    socket.once('close', () => {
      clearTimeout(conn.grace);
      conns.delete(conn);
      byPeer.delete(peer);
      for (const ss of conn.sessions) ss.closeAll();
    });
    ssh.injectSocket(socket);
  }

  // ---- authentication ----

  const methods = s.passwordAuth ? ['publickey', 'password'] : ['publickey'];

  function refuse(conn: Conn, ctx: AuthContext, reason: string, account?: AccountRow, extra: Record<string, unknown> = {}): void {
    ctx.reject(methods as any);
    let st: LinkState | undefined;
    try {
      st = account ? services.registry.state(account.linkId) : undefined;
    } catch {
      /* a link the account points at must exist; the record is written without it otherwise */
    }
    record({ type: 'auth.failed', ...linkFields(st), actor: account?.username ?? null, ip: conn.ip, detail: { method: ctx.method, reason, ...(account ? {} : { username: printable(ctx.username) }), ...extra } });
    defender
      .fail(conn.ip, reason)
      .then((ban) => {
        if (!ban) return;
        record({ type: 'defender.banned', ip: ban.ip, actor: 'sftp', detail: { score: ban.score, bans: ban.bans, until: ban.until, reason } });
        for (const c of conns) if (c.ip === ban.ip && !c.account) c.socket.destroy();
      })
      .catch((err) => log.warn({ err: (err as Error).message }, 'sftp: defender not updated (redis)'));
  }

  function loggedIn(conn: Conn, ctx: AuthContext, account: AccountRow, st: LinkState, key?: { id: number; fingerprint: string; algorithm: string }): void {
    if (conn.socket.destroyed) return;
    conn.account = account;
    conn.state = st;
    conn.keyId = key?.id;
    clearTimeout(conn.grace);
    ctx.accept();
    record({ type: 'auth.succeeded', ...linkFields(st), actor: account.username, ip: conn.ip, detail: { method: ctx.method, ...(key ? { key: key.fingerprint, algorithm: key.algorithm } : {}) } });
  }

  async function authenticate(conn: Conn, ctx: AuthContext): Promise<void> {
    if (++conn.authRequests > MAX_AUTH_REQUESTS) {
      ctx.reject();
      return void conn.client?.end();
    }
    // Every client starts with `none` to learn the methods: not a failed login.
    if (ctx.method === 'none') return ctx.reject(methods as any);
    if (ctx.method !== 'publickey' && !(ctx.method === 'password' && s.passwordAuth)) return refuse(conn, ctx, 'method.not-allowed');
    const account = accounts.find(ctx.username);
    const now = clock.now();

    if (ctx.method === 'password') {
      const matches = await verifyPassword(ctx.password, account?.passwordHash ?? (await dummyPasswordHash()));
      if (!account) return refuse(conn, ctx, 'account.unknown');
      if (!account.passwordHash) return refuse(conn, ctx, 'password.not-set', account);
      if (!matches) return refuse(conn, ctx, 'password.wrong', account);
      const may = accounts.mayPull(account, conn.ip, now);
      if (!may.ok) return refuse(conn, ctx, may.refusal.code, account);
      return loggedIn(conn, ctx, account, may.value);
    }

    if (ctx.method !== 'publickey') return;
    if (!account) return refuse(conn, ctx, 'account.unknown');
    const offered = ctx.key.data;
    const key = accounts.activeKeys(account.id).find((k) => publicKey(k.publicKey)?.getPublicSSH().equals(offered));
    if (!key) return refuse(conn, ctx, 'key.unknown', account, { probe: !ctx.signature });
    // The algorithm the client names must be the key's own (ssh2 reports rsa-sha2-* as ssh-rsa plus a hash).
    if (ctx.key.algo !== key.algorithm) return refuse(conn, ctx, 'key.algorithm-mismatch', account, { key: key.fingerprint, algorithm: ctx.key.algo });
    if (key.algorithm === 'ssh-rsa' && !ctx.hashAlgo) return refuse(conn, ctx, 'key.sha1-signature', account, { key: key.fingerprint });
    const may = accounts.mayPull(account, conn.ip, now);
    if (!may.ok) return refuse(conn, ctx, may.refusal.code, account, { key: key.fingerprint });
    // A probe without a signature only learns that the key would do (PK_OK); it is not logged in.
    if (!ctx.signature || !ctx.blob) return ctx.accept();
    // verify() can return an Error object, which is truthy: only `true` is a valid signature.
    const valid = publicKey(key.publicKey)?.verify(ctx.blob, ctx.signature, ctx.hashAlgo as any) === true;
    if (!valid) return refuse(conn, ctx, 'signature.invalid', account, { key: key.fingerprint });
    loggedIn(conn, ctx, account, may.value, key);
  }

  // ---- sessions ----

  function published(linkId: number): Published[] {
    return deliveries.builtForLink(cdb.db, linkId).flatMap((row) => {
      const v = services.extracts.view(row);
      if (!v.path || !v.manifest) return [];
      return [
        { delivery: row.id, role: 'data' as const, disk: v.path, createdAt: row.builtAt ?? row.createdAt },
        { delivery: row.id, role: 'manifest' as const, disk: v.manifest, createdAt: row.builtAt ?? row.createdAt },
        { delivery: row.id, role: 'signature' as const, disk: `${v.manifest}.asc`, createdAt: row.builtAt ?? row.createdAt },
      ];
    });
  }

  function downloaded(conn: Conn, r: DownloadRecord): void {
    const account = conn.account!;
    const row = deliveries.byId(cdb.db, r.file.delivery);
    record({
      type: 'file.downloaded',
      ...linkFields(conn.state),
      revision: row?.revision ?? conn.state?.link.currentRevision ?? null,
      actor: account.username,
      ip: conn.ip,
      object: r.file.name,
      detail: { delivery: r.file.delivery, file: r.file.role, bytes: r.bytes, size: r.file.size, from: r.from, to: r.to, result: r.result },
    });
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
          const tree = new OutboxTree(() => published(conn.account!.linkId));
          const ss = new SftpSession(channel, tree, {
            username: conn.account!.username,
            activity: () => (conn.lastActivity = Date.now()),
            downloaded: (r) => downloaded(conn, r),
            socket: conn.socket,
            abuse: (reason) => {
              log.warn({ reason }, 'sftp: session ended for abuse');
              end(conn);
            },
          });
          conn.sessions.add(ss);
          channel.on('close', () => conn.sessions.delete(ss));
        });
      });
    });
  }

  // ---- re-checks: idle sessions, and links that stopped being usable ----

  function recheck(linkId?: number): void {
    const now = clock.now();
    for (const c of conns) {
      if (!c.account || c.ending || (linkId !== undefined && c.account.linkId !== linkId)) continue;
      let reason: string | null = null;
      try {
        const may = accounts.mayPull(c.account, c.ip, now);
        if (!may.ok) reason = may.refusal.code;
        else if (c.keyId !== undefined && !accounts.activeKeys(c.account.id).some((k) => k.id === c.keyId)) reason = 'key.revoked';
      } catch (err) {
        log.error({ err: (err as Error).message }, 'sftp: session re-check failed');
        continue;
      }
      if (reason) {
        record({ type: 'session.closed', ...linkFields(c.state), actor: c.account.username, ip: c.ip, detail: { reason } });
        end(c);
      }
    }
  }
  let ticks = 0;
  const timer = setInterval(() => {
    const idleBefore = Date.now() - s.idleTimeoutSec * 1000;
    for (const c of conns) if (c.account && c.lastActivity < idleBefore) end(c);
    if (++ticks % s.recheckSec === 0) recheck();
  }, 1000);
  timer.unref();

  const subscriber = new Redis(d.redisUrl, { maxRetriesPerRequest: null });
  subscriber.on('error', (err) => log.warn({ err: err.message }, 'sftp: redis subscriber error'));
  subscriber.on('message', (_channel: string, message: string) => {
    const id = Number(message);
    if (Number.isInteger(id) && id > 0) recheck(id);
  });
  await subscriber.subscribe(linkEventsChannel(config));

  // ---- listening ----

  const ssh = new SshServer({ hostKeys: hostKeys(config.keysDir).map((k) => k.private), algorithms: ALGORITHMS as any, ident: 'nia-link' }, onClient);
  const server: NetServer = createServer({ pauseOnConnect: true }, (socket) => void accept(socket));
  refusals.start();
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
    refusals.stop();
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
      refusals.stop();
      await subscriber.quit().catch(() => subscriber.disconnect());
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
