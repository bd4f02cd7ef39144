import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { parseCidr } from './domain/net';
import { UserError } from './errors';

/**
 * The one place that reads the environment. Everything else receives a Config.
 * Sources, later ones winning: defaults < `<data-dir>/config.json` (or NIA_LINK_CONFIG) < environment < flags.
 */
const port = z.coerce.number().int().min(0).max(65535);
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time HH:MM (24-hour)');
function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
const ANOMALY_DEFAULTS = {
  everyMinutes: 5,
  businessHours: { timeZone: 'Asia/Taipei', start: '08:00', end: '18:00', weekdays: [1, 2, 3, 4, 5] },
  refusedIp: { enabled: true, perDay: 5 },
  failedLogins: { enabled: true, threshold: 5, windowMinutes: 15 },
  volume: { enabled: true, factor: 5, baselineDays: 30, minBytes: 10 * 1024 * 1024 },
  offHours: { enabled: true },
  repeatedDownload: { enabled: true, threshold: 3, windowHours: 24 },
  inactiveLink: { enabled: true },
  queryVolume: { enabled: true, factor: 5, baselineDays: 30, minIds: 100 },
  queryDistinct: { enabled: true, perDay: 500 },
  queryOffHours: { enabled: true },
  queryNotFound: { enabled: true, share: 0.8, minIds: 50 },
  // R3.5: a batch request this large, or this many refused uploads of one link within the window.
  batchLarge: { enabled: true, minIds: 20_000 },
  batchRefused: { enabled: true, threshold: 5, windowHours: 24 },
};
const HTTP_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  secureCookies: 'auto',
  trustProxy: false,
  sessionIdleMinutes: 30,
  sessionMaxHours: 12,
  login: { maxFailures: 5, lockoutMinutes: 15, ipMaxAttempts: 20, ipWindowMinutes: 15 },
};
/** Defaults under the file's values, one level of nesting deep (a rule given in part keeps its other defaults). */
function withDefaults<T extends Record<string, unknown>>(defaults: T, given: unknown): T {
  if (typeof given !== 'object' || given === null || Array.isArray(given)) return given === undefined ? defaults : (given as T);
  const out: Record<string, unknown> = { ...defaults, ...given };
  for (const [k, v] of Object.entries(defaults)) {
    const g = (given as Record<string, unknown>)[k];
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && typeof g === 'object' && g !== null && !Array.isArray(g)) out[k] = { ...v, ...g };
  }
  return out as T;
}
/**
 * `http.trustProxy`: a list (array, or comma-separated text) of proxy addresses/CIDRs; false or unset
 * for none. `true` would believe every hop, so the client itself could write the address that the
 * login limit, the lockouts and the usage log go by: it is refused.
 */
const trustProxyList = z.preprocess(
  (v) => {
    if (v === undefined || v === null || v === false) return [];
    if (typeof v !== 'string') return v;
    const t = v.trim();
    if (/^(false|no|off|0)?$/i.test(t)) return [];
    if (/^(true|yes|on|1)$/i.test(t)) return true;
    return t.split(',').map((x) => x.trim());
  },
  z
    .array(z.string().refine((x) => parseCidr(x) !== null, 'each entry must be an IP address or CIDR of a proxy in front, e.g. 127.0.0.1 or 10.0.0.0/8'), {
      error: 'list the addresses or CIDRs of the proxies in front (e.g. ["127.0.0.1"] or "10.0.0.5,10.0.0.6"); true would believe X-Forwarded-For from every client',
    })
    .max(256),
);
const schema = z.object({
  dataDir: z.string().min(1),
  keysDir: z.string().min(1),
  instanceId: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, 'letters, digits, _ and - only (1–40)'),
  redisUrl: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://').optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  http: z.object({
    host: z.string().min(1),
    port,
    // Session cookies carry Secure when the request came over TLS ('auto'), always, or never (plain-http tests only).
    secureCookies: z.enum(['auto', 'always', 'never']),
    // The proxies in front (addresses or CIDRs) whose X-Forwarded-For/-Proto are believed; the client is
    // the right-most address they did not add. Empty: the peer is the client.
    trustProxy: trustProxyList,
    sessionIdleMinutes: z.coerce.number().int().min(1).max(1440),
    sessionMaxHours: z.coerce.number().int().min(1).max(168),
    login: z.object({
      // Consecutive failures that lock an operator, and for how long.
      maxFailures: z.coerce.number().int().min(1).max(100),
      lockoutMinutes: z.coerce.number().int().min(1),
      // Attempts one address may make in the window, whichever operator names it.
      ipMaxAttempts: z.coerce.number().int().min(1),
      ipWindowMinutes: z.coerce.number().int().min(1),
    }),
    // Prometheus may scrape /metrics with `Authorization: Bearer <token>`; without one, only an admin or auditor session may.
    metricsToken: z.string().min(32, 'at least 32 characters (e.g. `openssl rand -hex 32`)').optional(),
  }),
  sftp: z.object({
    host: z.string().min(1),
    port,
    // Several processes accept on one port (Node cluster), so downloads use every core.
    processes: z.coerce.number().int().min(1).max(64),
    idleTimeoutSec: z.coerce.number().int().min(1),
    loginGraceSec: z.coerce.number().int().min(1),
    maxConnections: z.coerce.number().int().min(1),
    maxConnectionsPerIp: z.coerce.number().int().min(1),
    // Off by default: public keys only. When on, only accounts that have a password hash may use one.
    passwordAuth: z.boolean(),
    recheckSec: z.coerce.number().int().min(1).max(60),
    // connection.refused is written once per source IP and interval, for at most refusedLogMaxIps IPs (the rest in one record).
    refusedLogIntervalSec: z.coerce.number().int().min(1),
    refusedLogMaxIps: z.coerce.number().int().min(1),
    // New connections one address (IPv4) or /64 (IPv6) may open: a bucket of acceptBurstPerIp, refilled at acceptRatePerIp a second.
    acceptRatePerIp: z.coerce.number().positive(),
    acceptBurstPerIp: z.coerce.number().int().min(1),
    // Bytes a session may hold (requests waiting plus answers its client has not taken), and a connection's sessions together.
    // At least 1 MiB: a session must have room for one maximal answer.
    sessionBufferBytes: z.coerce.number().int().min(1024 * 1024),
    connectionBufferBytes: z.coerce.number().int().min(1024 * 1024),
    // A session whose client takes none of its answers this long is closed.
    stallTimeoutSec: z.coerce.number().int().min(1),
    maxHandlesPerConnection: z.coerce.number().int().min(1),
    maxHandlesPerAccount: z.coerce.number().int().min(1),
    // file.downloaded: a file's further downloads in one session within this long are summed up in one record.
    downloadLogIntervalSec: z.coerce.number().int().min(1),
    defender: z.object({
      enabled: z.boolean(),
      threshold: z.coerce.number().int().min(1),
      windowSec: z.coerce.number().int().min(1),
      banSec: z.coerce.number().int().min(1),
      // Each further ban of the same IP within a day lasts this much longer (percent of banSec).
      banGrowthPct: z.coerce.number().int().min(0).max(1000),
    }),
  }),
  usageLog: z.object({
    // R6.2: five years is a floor that no setting can lower.
    retentionYears: z.coerce.number().int().min(5, 'must be at least 5 (R6.2: usage logs are kept five years)'),
    // The scheduler signs the log's head this often (only when it moved).
    checkpointEveryMinutes: z.coerce.number().int().min(1).max(10080),
  }),
  // R7.1: rules of the anomaly scan over new usage-log records; each can be switched off.
  anomaly: z.object({
    everyMinutes: z.coerce.number().int().min(1).max(1440),
    businessHours: z.object({
      timeZone: z.string().refine(validTimeZone, 'not an IANA time zone, e.g. Asia/Taipei'),
      start: hhmm,
      end: hhmm,
      // 0 = Sunday … 6 = Saturday
      weekdays: z.array(z.number().int().min(0).max(6)),
    }),
    refusedIp: z.object({ enabled: z.boolean(), perDay: z.coerce.number().int().min(1) }),
    failedLogins: z.object({ enabled: z.boolean(), threshold: z.coerce.number().int().min(1), windowMinutes: z.coerce.number().int().min(1) }),
    volume: z.object({ enabled: z.boolean(), factor: z.coerce.number().min(1), baselineDays: z.coerce.number().int().min(1), minBytes: z.coerce.number().int().min(0) }),
    offHours: z.object({ enabled: z.boolean() }),
    repeatedDownload: z.object({ enabled: z.boolean(), threshold: z.coerce.number().int().min(2), windowHours: z.coerce.number().int().min(1) }),
    inactiveLink: z.object({ enabled: z.boolean() }),
    queryVolume: z.object({ enabled: z.boolean(), factor: z.coerce.number().min(1), baselineDays: z.coerce.number().int().min(1), minIds: z.coerce.number().int().min(0) }),
    queryDistinct: z.object({ enabled: z.boolean(), perDay: z.coerce.number().int().min(1) }),
    queryOffHours: z.object({ enabled: z.boolean() }),
    // share: the fraction of identifiers asked that matched no record, 0 < share ≤ 1.
    queryNotFound: z.object({ enabled: z.boolean(), share: z.coerce.number().gt(0).max(1), minIds: z.coerce.number().int().min(1) }),
    batchLarge: z.object({ enabled: z.boolean(), minIds: z.coerce.number().int().min(1) }),
    batchRefused: z.object({ enabled: z.boolean(), threshold: z.coerce.number().int().min(2), windowHours: z.coerce.number().int().min(1) }),
  }),
  policy: z.object({ autoSuspend: z.boolean() }),
  outbox: z.object({
    // Shared by every host of an installation when roles run on several (a mount such as NFS).
    dir: z.string().min(1).refine((d) => path.isAbsolute(d), 'must be an absolute path, e.g. /srv/nia-link/outbox'),
    retentionDays: z.coerce.number().int().min(1).max(3650),
  }),
  worker: z.object({ attempts: z.coerce.number().int().min(1).max(50), backoffMs: z.coerce.number().int().min(100), lockMs: z.coerce.number().int().min(1000) }),
  push: z.object({ connectTimeoutMs: z.coerce.number().int().min(1000) }),
  smtp: z.object({
    host: z.string().min(1).optional(),
    port,
    // secure: TLS from the first byte (465); otherwise STARTTLS, required unless requireTLS is off.
    secure: z.boolean(),
    requireTLS: z.boolean(),
    rejectUnauthorized: z.boolean(),
    user: z.string().optional(),
    password: z.string().optional(),
    from: z.string().min(3),
  }),
  email: z.object({ maxAttachmentBytes: z.coerce.number().int().min(0) }),
  query: z.object({
    host: z.string().min(1),
    port,
    maxIds: z.coerce.number().int().min(1).max(10000),
    maxRecords: z.coerce.number().int().min(1),
    ratePerMinute: z.coerce.number().int().min(1),
    // Several processes accept on one port (Node cluster), so look-ups use every core.
    processes: z.coerce.number().int().min(1).max(64),
    // Further connections are closed at accept, before any TLS work (shared out among the processes).
    maxConnections: z.coerce.number().int().min(1),
    maxConnectionsPerIp: z.coerce.number().int().min(1),
    // Refusals no rate limit bounds are written once per link (or address) and code per interval, for at most refusedLogMaxIps unknown addresses (the rest in one record).
    refusedLogIntervalSec: z.coerce.number().int().min(1).max(3600),
    refusedLogMaxIps: z.coerce.number().int().min(1),
  }),
  // R2.2: what one link may upload to /inbox (checked as bytes arrive, and at OPEN).
  inbox: z.object({
    maxBytes: z.coerce.number().int().min(1),
    maxPendingFiles: z.coerce.number().int().min(1),
    maxPendingBytes: z.coerce.number().int().min(1),
    maxUploadsPerHour: z.coerce.number().int().min(1),
  }),
  // R2.2: batch requests. maxIds: identifiers per request; maxPlainBytes: a request's size once
  // decrypted and decompressed (stops a compressed bomb); sweepSec/staleSec: uploads left pending
  // longer than staleSec (a worker died between the commit and the enqueue) are queued again.
  // The control database: unset, the SQLite file <data-dir>/nia-link.db; a postgres:// URL (TLS
  // options in its query), a PostgreSQL database that several hosts share.
  database: z.object({
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//i, 'must start with postgres:// or postgresql://')
      .optional(),
  }),
  // The extract source: unset, the embedded SQLite file <data-dir>/source.db; a postgres:// URL, a
  // PostgreSQL server (tables named after the datasets, in the URL's default schema).
  source: z.object({
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//i, 'must start with postgres:// or postgresql://')
      .optional(),
  }),
  batch: z.object({
    maxIds: z.coerce.number().int().min(1).max(10_000_000),
    maxPlainBytes: z.coerce.number().int().min(1024),
    sweepSec: z.coerce.number().int().min(1),
    staleSec: z.coerce.number().int().min(1),
  }),
});
export type Config = z.infer<typeof schema>;

type Env = Record<string, string | undefined>;

function bool(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  return v as unknown as boolean; // left for zod to reject with the key's name
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`config file ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as Record<string, unknown>;
  } catch {
    throw new UserError(`config file ${file}: not a JSON object`);
  }
}

/** Instance ids keep installations that share a Redis apart; by default each data directory is one. */
export function defaultInstanceId(dataDir: string): string {
  return 'nl' + createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 10);
}

export interface ConfigFlags {
  dataDir?: string;
}

export function loadConfig(flags: ConfigFlags = {}, env: Env = process.env): Config {
  const dataDir = path.resolve(flags.dataDir ?? env.NIA_LINK_DATA_DIR ?? './data');
  const file = env.NIA_LINK_CONFIG ?? path.join(dataDir, 'config.json');
  const fromFile = env.NIA_LINK_CONFIG || existsSync(file) ? readConfigFile(file) : {};
  const f = fromFile as Partial<Record<string, any>>;
  const merged = {
    dataDir,
    keysDir: path.resolve(env.NIA_LINK_KEYS_DIR ?? f.keysDir ?? path.join(dataDir, 'keys')),
    instanceId: env.NIA_LINK_INSTANCE_ID ?? f.instanceId ?? defaultInstanceId(dataDir),
    redisUrl: env.REDIS_URL ?? f.redisUrl,
    logLevel: env.NIA_LINK_LOG_LEVEL ?? f.logLevel ?? 'info',
    http: {
      ...withDefaults(HTTP_DEFAULTS, f.http),
      ...defined({
        host: env.NIA_LINK_HTTP_HOST,
        port: env.NIA_LINK_HTTP_PORT,
        secureCookies: env.NIA_LINK_HTTP_SECURE_COOKIES,
        trustProxy: env.NIA_LINK_HTTP_TRUST_PROXY,
        sessionIdleMinutes: env.NIA_LINK_SESSION_IDLE_MINUTES,
        sessionMaxHours: env.NIA_LINK_SESSION_MAX_HOURS,
        metricsToken: env.NIA_LINK_METRICS_TOKEN,
      }),
    },
    sftp: {
      host: '0.0.0.0',
      port: 2222,
      // One per core (up to 4): the primary hands connections to them, so 16 downloads use both cores here.
      processes: Math.min(availableParallelism(), 4),
      idleTimeoutSec: 900,
      loginGraceSec: 30,
      maxConnections: 200,
      maxConnectionsPerIp: 20,
      passwordAuth: false,
      recheckSec: 5,
      refusedLogIntervalSec: 60,
      refusedLogMaxIps: 20,
      acceptRatePerIp: 2,
      acceptBurstPerIp: 20,
      sessionBufferBytes: 8 * 1024 * 1024,
      connectionBufferBytes: 32 * 1024 * 1024,
      stallTimeoutSec: 120,
      maxHandlesPerConnection: 64,
      maxHandlesPerAccount: 256,
      downloadLogIntervalSec: 60,
      ...f.sftp,
      ...defined({
        host: env.NIA_LINK_SFTP_HOST,
        port: env.NIA_LINK_SFTP_PORT,
        processes: env.NIA_LINK_SFTP_PROCESSES,
        idleTimeoutSec: env.NIA_LINK_SFTP_IDLE_TIMEOUT,
        loginGraceSec: env.NIA_LINK_SFTP_LOGIN_GRACE,
        maxConnections: env.NIA_LINK_SFTP_MAX_CONNECTIONS,
        maxConnectionsPerIp: env.NIA_LINK_SFTP_MAX_CONNECTIONS_PER_IP,
        passwordAuth: bool(env.NIA_LINK_SFTP_PASSWORD_AUTH),
        recheckSec: env.NIA_LINK_SFTP_RECHECK,
        refusedLogIntervalSec: env.NIA_LINK_SFTP_REFUSED_LOG_INTERVAL,
        acceptRatePerIp: env.NIA_LINK_SFTP_ACCEPT_RATE,
        acceptBurstPerIp: env.NIA_LINK_SFTP_ACCEPT_BURST,
        sessionBufferBytes: env.NIA_LINK_SFTP_SESSION_BUFFER,
        connectionBufferBytes: env.NIA_LINK_SFTP_CONNECTION_BUFFER,
        stallTimeoutSec: env.NIA_LINK_SFTP_STALL_TIMEOUT,
        maxHandlesPerConnection: env.NIA_LINK_SFTP_MAX_HANDLES_PER_CONNECTION,
        maxHandlesPerAccount: env.NIA_LINK_SFTP_MAX_HANDLES_PER_ACCOUNT,
        downloadLogIntervalSec: env.NIA_LINK_SFTP_DOWNLOAD_LOG_INTERVAL,
      }),
      defender: {
        enabled: true,
        threshold: 10,
        windowSec: 600,
        banSec: 900,
        banGrowthPct: 100,
        ...f.sftp?.defender,
        ...defined({
          enabled: bool(env.NIA_LINK_SFTP_DEFENDER),
          threshold: env.NIA_LINK_SFTP_BAN_THRESHOLD,
          windowSec: env.NIA_LINK_SFTP_BAN_WINDOW,
          banSec: env.NIA_LINK_SFTP_BAN_SECONDS,
        }),
      },
    },
    usageLog: { retentionYears: 5, checkpointEveryMinutes: 60, ...f.usageLog, ...defined({ retentionYears: env.NIA_LINK_RETENTION_YEARS, checkpointEveryMinutes: env.NIA_LINK_CHECKPOINT_MINUTES }) },
    anomaly: { ...withDefaults(ANOMALY_DEFAULTS, f.anomaly), ...defined({ everyMinutes: env.NIA_LINK_ANOMALY_MINUTES }) },
    policy: { autoSuspend: true, ...f.policy, ...defined({ autoSuspend: bool(env.NIA_LINK_AUTO_SUSPEND) }) },
    outbox: { dir: path.join(dataDir, 'outbox'), retentionDays: 30, ...f.outbox, ...defined({ dir: env.NIA_LINK_OUTBOX_DIR, retentionDays: env.NIA_LINK_OUTBOX_RETENTION_DAYS }) },
    worker: { attempts: 5, backoffMs: 5000, lockMs: 120000, ...f.worker, ...defined({ attempts: env.NIA_LINK_JOB_ATTEMPTS, backoffMs: env.NIA_LINK_JOB_BACKOFF_MS, lockMs: env.NIA_LINK_JOB_LOCK_MS }) },
    push: { connectTimeoutMs: 15000, ...f.push, ...defined({ connectTimeoutMs: env.NIA_LINK_PUSH_CONNECT_TIMEOUT_MS }) },
    smtp: {
      port: 587,
      secure: false,
      requireTLS: true,
      rejectUnauthorized: true,
      from: 'nia-link <nia-link@immigration.gov.tw>',
      ...f.smtp,
      ...defined({
        host: env.NIA_LINK_SMTP_HOST,
        port: env.NIA_LINK_SMTP_PORT,
        secure: bool(env.NIA_LINK_SMTP_SECURE),
        requireTLS: bool(env.NIA_LINK_SMTP_REQUIRE_TLS),
        rejectUnauthorized: bool(env.NIA_LINK_SMTP_REJECT_UNAUTHORIZED),
        user: env.NIA_LINK_SMTP_USER,
        password: env.NIA_LINK_SMTP_PASSWORD,
        from: env.NIA_LINK_SMTP_FROM,
      }),
    },
    email: { maxAttachmentBytes: 10 * 1024 * 1024, ...f.email, ...defined({ maxAttachmentBytes: env.NIA_LINK_EMAIL_MAX_ATTACHMENT_BYTES }) },
    query: {
      host: '0.0.0.0',
      port: 8443,
      maxIds: 100,
      maxRecords: 5000,
      ratePerMinute: 120,
      // A query process keeps more than one core busy (its event loop, its usage-log thread, V8's
      // helper threads): one per two cores answers with the shortest tail (bench/README.md).
      processes: Math.max(1, Math.min(Math.floor(availableParallelism() / 2), 4)),
      // An agency's system keeps a pool of keep-alive connections (the benchmark's 50 fit well inside).
      maxConnections: 1000,
      maxConnectionsPerIp: 100,
      refusedLogIntervalSec: 60,
      refusedLogMaxIps: 20,
      ...f.query,
      ...defined({
        host: env.NIA_LINK_QUERY_HOST,
        port: env.NIA_LINK_QUERY_PORT,
        maxIds: env.NIA_LINK_QUERY_MAX_IDS,
        ratePerMinute: env.NIA_LINK_QUERY_RATE_PER_MINUTE,
        processes: env.NIA_LINK_QUERY_PROCESSES,
        maxConnections: env.NIA_LINK_QUERY_MAX_CONNECTIONS,
        maxConnectionsPerIp: env.NIA_LINK_QUERY_MAX_CONNECTIONS_PER_IP,
        refusedLogIntervalSec: env.NIA_LINK_QUERY_REFUSED_LOG_INTERVAL,
      }),
    },
    inbox: {
      maxBytes: 64 * 1024 * 1024,
      maxPendingFiles: 10,
      maxPendingBytes: 256 * 1024 * 1024,
      maxUploadsPerHour: 60,
      ...(f.inbox as object | undefined),
      ...defined({
        maxBytes: env.NIA_LINK_INBOX_MAX_BYTES,
        maxPendingFiles: env.NIA_LINK_INBOX_MAX_PENDING_FILES,
        maxPendingBytes: env.NIA_LINK_INBOX_MAX_PENDING_BYTES,
        maxUploadsPerHour: env.NIA_LINK_INBOX_MAX_UPLOADS_PER_HOUR,
      }),
    },
    database: { ...(f.database as object | undefined), ...defined({ url: env.NIA_LINK_DATABASE_URL || undefined }) },
    source: { ...(f.source as object | undefined), ...defined({ url: env.NIA_LINK_SOURCE_URL || undefined }) },
    batch: {
      maxIds: 100_000,
      maxPlainBytes: 256 * 1024 * 1024,
      sweepSec: 30,
      staleSec: 60,
      ...(f.batch as object | undefined),
      ...defined({ maxIds: env.NIA_LINK_BATCH_MAX_IDS }),
    },
  };
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UserError(`invalid configuration: ${issue.path.join('.')}: ${issue.message}`, 'config.invalid');
  }
  return parsed.data;
}
