import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { Client, type SFTPWrapper } from 'ssh2';
import type { ControlDb } from '../db';
import { deliveries } from '../db/repositories';
import { KEY_FILES, sshFingerprint } from '../crypto';
import { type Clock, mayUseChannel, type PushEndpoint, taipeiDate } from '../domain';
import type { DeliveryView, ExtractService } from '../extract';
import type { LinkState, Registry } from '../registry';
import { PermanentError } from '../errors';
import { appendLog } from '../usagelog';

export const PUSH_CHANNELS = ['sftp-push', 'email'] as const;
export type PushChannel = (typeof PUSH_CHANNELS)[number];

/** A push no retry can fix (host key mismatch, authentication refused, channel removed): logged as refused. */
export class PushRefused extends PermanentError {
  override readonly name = 'PushRefused';
}

export interface PushContext {
  delivery: DeliveryView;
  state: LinkState;
  /** The delivery's files in the outbox: the data file, its signed manifest and the manifest's signature. */
  files: { data: OutboxFile; manifest: OutboxFile; signature: OutboxFile };
}

/** A published file: its name (as the agency receives it) and where the outbox keeps it. */
export interface OutboxFile {
  name: string;
  path: string;
}

export interface PushDeps {
  cdb: ControlDb;
  registry: Registry;
  extracts: ExtractService;
  clock: Clock;
  keysDir: string;
  connectTimeoutMs: number;
}

/** The push channels of a link's current revision. */
export function pushChannels(state: LinkState): PushChannel[] {
  return PUSH_CHANNELS.filter((c) => state.content.methods.includes(c));
}

/**
 * What every push checks first, fresh from the database: the delivery exists and still has its
 * file, the link may be used today, and the channel is still on the link's current revision — a
 * change that removes a host or an address stops pushes to it at once.
 */
export async function pushContext(d: PushDeps, deliveryId: number, channel: PushChannel): Promise<PushContext> {
  const row = await deliveries.byId(d.cdb.db, deliveryId);
  if (!row) throw new PushRefused(`delivery ${deliveryId} does not exist`, 'delivery.unknown');
  const delivery = d.extracts.view(row);
  const names = d.extracts.filesOf(row);
  if (delivery.status !== 'built' || !names) throw new PushRefused(`delivery ${deliveryId} is ${delivery.status}: no file to send`, 'delivery.not-built');
  const state = await d.registry.state(delivery.link);
  const may = mayUseChannel(state, channel, { today: taipeiDate(d.clock.now()) });
  if (!may.ok) throw new PushRefused(`link ${delivery.link}: ${may.refusal.message} (revision ${state.link.currentRevision})`, may.refusal.code);
  const file = (name: string): OutboxFile => ({ name, path: d.extracts.outbox.pathOf(row.linkId, name) });
  return { delivery, state, files: { data: file(names.data), manifest: file(names.manifest), signature: file(names.signature) } };
}

/** Outcome bookkeeping and the usage-log record of one push attempt, in one transaction. */
export async function recordPush(d: PushDeps, ctx: { delivery: DeliveryView; state?: LinkState }, channel: PushChannel, type: string, outcome: Record<string, unknown>, detail: Record<string, unknown>, object: string | null = ctx.delivery.path ? path.basename(ctx.delivery.path) : null): Promise<void> {
  const now = d.clock.now();
  await d.cdb.write(async (tx) => {
    await deliveries.setChannel(tx, ctx.delivery.id, channel, { ...outcome, at: now.toISOString() });
    await appendLog(
      tx,
      {
        type,
        agency: ctx.state?.agency.code ?? null,
        linkId: ctx.delivery.link,
        revision: ctx.delivery.revision,
        actor: 'worker',
        channel,
        object,
        detail: { delivery: ctx.delivery.id, ...detail },
      },
      now,
    );
  });
}

/** Resolve the push host and keep only an address on the link's allow-list in force (mayUseChannel's address check); connect to that address. */
async function allowedAddress(host: string, state: LinkState, today: string): Promise<string> {
  const candidates = isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  const ok = candidates.find((a) => mayUseChannel(state, 'sftp-push', { today, ip: a }).ok);
  if (!ok) throw new PushRefused(`push host ${host} (${candidates.join(', ')}) is not in the link's allowed IPs`, 'push.host-not-allowed');
  return ok;
}

function connect(opts: { address: string; endpoint: PushEndpoint; privateKey: string; timeoutMs: number }): Promise<Client> {
  return new Promise((resolve, reject) => {
    const conn = new Client();
    let offered: string | null = null;
    conn.once('ready', () => resolve(conn));
    conn.once('error', (err: Error & { level?: string }) => {
      conn.end();
      if (offered !== null) {
        reject(new PushRefused(`host key mismatch for ${opts.endpoint.host}: pinned ${opts.endpoint.fingerprint}, server offered ${offered}`, 'push.host-key-mismatch'));
      } else if (err.level === 'client-authentication') {
        reject(new PushRefused(`${opts.endpoint.user}@${opts.endpoint.host} refused NIA's key (authorise the key from \`nia-link key export-ssh\`)`, 'push.auth-failed'));
      } else {
        reject(err);
      }
    });
    conn.connect({
      host: opts.address,
      port: opts.endpoint.port,
      username: opts.endpoint.user,
      privateKey: opts.privateKey,
      readyTimeout: opts.timeoutMs,
      // Pinned host key: nothing is sent to a server that is not the agency's.
      hostVerifier: (key: Buffer) => {
        const fp = sshFingerprint(key);
        if (fp === opts.endpoint.fingerprint) return true;
        offered = fp;
        return false;
      },
    });
  });
}

const call = <T>(fn: (cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));

/** Upload under a temporary name, check the size on the server, then rename into place. */
async function putFile(sftp: SFTPWrapper, outbox: ExtractService['outbox'], linkId: number, file: OutboxFile, remoteDir: string): Promise<{ remote: string; bytes: number }> {
  const name = file.name;
  const remote = path.posix.join(remoteDir, name);
  const tmp = path.posix.join(remoteDir, `.${name}.part`);
  const st = outbox.stat(linkId, name);
  if (!st) throw new Error(`${name} of link ${linkId} is no longer in the outbox`);
  const bytes = st.size;
  await call<void>((cb) => sftp.fastPut(file.path, tmp, cb));
  const put = await call<{ size: number }>((cb) => sftp.stat(tmp, cb as never));
  if (put.size !== bytes) throw new Error(`remote size of ${tmp} is ${put.size}, expected ${bytes}`);
  // posix-rename replaces an older copy atomically; plain SFTP rename refuses to.
  await call<void>((cb) => sftp.ext_openssh_rename(tmp, remote, cb)).catch(async () => {
    await call<void>((cb) => sftp.unlink(remote, cb)).catch(() => undefined);
    await call<void>((cb) => sftp.rename(tmp, remote, cb));
  });
  return { remote, bytes };
}

/** sftp-push: the file, then the manifest signature, then the manifest (its arrival says the set is complete). */
export async function pushSftp(d: PushDeps, ctx: PushContext): Promise<{ remote: string; bytes: number; address: string }> {
  const endpoint = ctx.state.content.push;
  if (!endpoint) throw new PushRefused(`link ${ctx.delivery.link} has no sftp-push endpoint`, 'channel.not-approved');
  const address = await allowedAddress(endpoint.host, ctx.state, taipeiDate(d.clock.now()));
  const privateKey = readFileSync(path.join(d.keysDir, KEY_FILES.clientEd25519), 'utf8');
  const conn = await connect({ address, endpoint, privateKey, timeoutMs: d.connectTimeoutMs });
  try {
    const sftp = await call<SFTPWrapper>((cb) => conn.sftp(cb));
    const { data, manifest, signature } = ctx.files;
    const link = ctx.delivery.link;
    const file = await putFile(sftp, d.extracts.outbox, link, data, endpoint.dir);
    await putFile(sftp, d.extracts.outbox, link, signature, endpoint.dir);
    await putFile(sftp, d.extracts.outbox, link, manifest, endpoint.dir);
    sftp.end();
    return { ...file, address };
  } finally {
    conn.end();
  }
}
