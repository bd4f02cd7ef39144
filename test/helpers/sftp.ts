import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import path from 'node:path';
import { Client, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { loadConfig, type Config } from '../../src/config';
import { ensureKeys, signingPublicKeyArmored } from '../../src/crypto';
import { deliveries } from '../../src/db/repositories';
import type { DeliveryView } from '../../src/extract';
import { startService, type RunningService } from '../../src/main';
import { buildServices } from '../../src/services';
import { person, writeEntryExitSource } from './source';
import { type AgencyKeys, approvedLink, childPids, type SomeWorld } from './world';

export const REDIS = () => process.env.NIA_TEST_REDIS_URL!;
export const SSH_OPTS = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR'];

/** A config for an in-process SFTP role (one process: the test's clock applies) on a free loopback port, with the test Redis; `env` overrides. */
export function sftpConfig(dataDir: string, env: Record<string, string> = {}): Config {
  return loadConfig({ dataDir }, { REDIS_URL: REDIS(), NIA_LINK_LOG_LEVEL: process.env.NIA_TEST_LOG ?? 'silent', NIA_LINK_SFTP_HOST: '127.0.0.1', NIA_LINK_SFTP_PORT: '0', NIA_LINK_SFTP_PROCESSES: '1', ...env });
}

/** NIA's keys, and NIA's public signing key in the agency's keyring (agencies import it to verify). */
export async function niaKeys(config: Config, keys: AgencyKeys): Promise<void> {
  await ensureKeys(config.keysDir, new Date());
  execFileSync('gpg', ['--batch', '--import'], { input: signingPublicKeyArmored(config.keysDir), env: { ...process.env, GNUPGHOME: keys.gnupgHome }, stdio: ['pipe', 'ignore', 'ignore'] });
}

/** A real delivery, built by the extract pipeline in this process. */
export async function buildDelivery(w: SomeWorld, config: Config, linkId: number, rows = 50): Promise<DeliveryView> {
  writeEntryExitSource(w.dataDir, Array.from({ length: rows }, (_, i) => person(i + 1)), '2026-01-01T00:00:00.000Z');
  const { extracts } = buildServices({ ...config, database: w.database ?? config.database }, w.cdb, w.clock);
  return extracts.run({ key: `test-${linkId}-${Date.now()}-${Math.random()}`, linkId, full: true, trigger: 'manual' }, { finalAttempt: true });
}

/** A large file published as a built delivery (random bytes: its content does not matter, its size does). */
export async function bigDelivery(w: SomeWorld, linkId: number, mib: number): Promise<{ file: string; name: string; id: number }> {
  const name = `entry_exit-L${linkId}-r1-big-${mib}M.csv.pgp`;
  const dir = path.join(w.dataDir, 'outbox', String(linkId));
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < mib; i++) writeSync(fd, randomFillSync(chunk));
  closeSync(fd);
  const now = w.clock.now().toISOString();
  const row = await w.cdb.write((tx) =>
    deliveries.insert(tx, { linkId, revision: 1, idempotencyKey: `big-${linkId}-${mib}-${Math.random()}`, trigger: 'manual', mode: 'full', status: 'built', dataset: 'entry_exit', fields: ['person_id'], rows: 0, fileName: name, bytes: mib << 20, plainSha256: null, cipherSha256: null, manifestSha256: null, watermarkFrom: null, watermarkTo: null, createdAt: now, builtAt: now, durationMs: 0, expiresAt: null, purgedAt: null, error: null, channels: {} }),
  );
  return { file, name, id: row.id };
}

/** The sftp role in this process, on the world's clock. */
export async function startSftp(config: Config, w: SomeWorld): Promise<{ svc: RunningService; port: number }> {
  const svc = await startService({ ...config, database: w.database ?? config.database }, ['sftp'], () => undefined, w.clock);
  return { svc, port: svc.sftpPort! };
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** OpenSSH's `sftp -b -` with the given batch commands. */
export function sftpBatch(port: number, keyFile: string, user: string, commands: string, extra: string[] = [], timeoutMs = 60000): Promise<Run> {
  return run('sftp', ['-P', String(port), '-i', keyFile, ...SSH_OPTS, ...extra, '-b', '-', `${user}@127.0.0.1`], commands.endsWith('\n') ? commands : commands + '\n', timeoutMs);
}

/** A command run without blocking this process (the SFTP server under test lives in it). */
export function run(cmd: string, args: string[], input = '', timeoutMs = 60000, env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
    c.stdin.end(input);
  });
}

/** An ssh2 client connection, or the error that ended it. */
export function connect(cfg: ConnectConfig): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.on('ready', () => resolve(c));
    c.on('error', reject);
    c.on('close', () => reject(new Error('closed before ready')));
    c.connect({ host: '127.0.0.1', readyTimeout: 15000, ...cfg });
  });
}

export function openSftp(c: Client): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => c.sftp((err, s) => (err ? reject(err) : resolve(s))));
}

/** Resolves when the connection closes; rejects after `ms`. */
export function closed(c: Client, ms: number): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`connection still open after ${ms} ms`)), ms);
    c.once('close', () => {
      clearTimeout(t);
      resolve(Date.now() - t0);
    });
  });
}

export { approvedLink };

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** A process and its children (a role's worker processes). */
export function processTree(pid: number): number[] {
  return [pid, ...childPids(pid).flatMap((c) => processTree(c))];
}

/** CPU time (user + system, ms) the processes have used so far; a process that has gone counts 0. */
export function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // The fields after the command name, which is in parentheses and may hold spaces: utime and stime are the 12th and 13th.
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      /* gone */
    }
  }
  return (ticks * 1000) / CLK_TCK;
}

/** Resident memory of a process, MiB (0 when it has gone). */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}
