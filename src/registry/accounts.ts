import type { ControlDb, Db } from '../db';
import { credentials } from '../db/repositories';
import { hashPassword, inspectSshPublicKey, MIN_PASSWORD_LENGTH } from '../crypto';
import { type Clock, mayUseChannel, ok, refuse, type Result, taipeiDate } from '../domain';
import { UserError } from '../errors';
import type { LinkState, Registry } from './registry';
import { appendLog } from '../usagelog';

export type AccountRow = credentials.AccountRow;
export type SshKeyRow = credentials.SshKeyRow;

export interface AccountView {
  username: string;
  link: number;
  agency: string;
  linkStatus: string;
  enabled: boolean;
  password: boolean;
  createdAt: string;
  keys: { id: number; algorithm: string; fingerprint: string; addedAt: string; revokedAt: string | null }[];
}

/**
 * SFTP accounts: who may pull, with which keys, from where. Every answer is read from the database
 * when asked (another process may have disabled the account or ended the link a moment ago); every
 * change is one transaction with its usage-log record, and is announced so open sessions are re-checked.
 */
export class AccountService {
  constructor(
    private readonly cdb: ControlDb,
    private readonly registry: Registry,
    private readonly clock: Clock,
    private readonly announce: (linkId: number) => void = () => undefined,
  ) {}

  async find(username: string): Promise<AccountRow | undefined> {
    return credentials.accountByName(this.cdb.db, username);
  }

  async activeKeys(accountId: number): Promise<SshKeyRow[]> {
    return credentials.activeSshKeys(this.cdb.db, accountId);
  }

  /**
   * May this account pull from this address now? The rule every channel asks (`mayUseChannel`: the
   * link's state, period, stop date, sftp-pull approved, the address on the allow-list in force), plus
   * the account being enabled and still the link's SFTP account.
   */
  async mayPull(account: AccountRow, ip: string, now: Date): Promise<Result<LinkState>> {
    const fresh = await credentials.accountById(this.cdb.db, account.id);
    if (!fresh) return refuse('account.unknown', 'account no longer exists');
    return this.mayPullFrom(fresh, now, ip);
  }

  /** mayPull for `fresh` as just read from the database; without `ip`, from somewhere on its allow-list. */
  private async mayPullFrom(fresh: AccountRow, now: Date, ip?: string): Promise<Result<LinkState>> {
    if (!fresh.enabled) return refuse('account.disabled', `account ${fresh.username} is disabled`);
    const s = await this.registry.state(fresh.linkId);
    // A link that only sends batch requests logs in too: it uploads to /inbox and fetches the answers from /outbox.
    const channel = !s.content.methods.includes('sftp-pull') && s.content.methods.includes('batch-query') ? 'batch-query' : 'sftp-pull';
    const may = mayUseChannel(s, channel, { today: taipeiDate(now), ip });
    if (!may.ok) return may;
    if (s.content.account !== fresh.username) return refuse('account.not-on-link', `account ${fresh.username} is no longer link ${s.link.id}'s SFTP account`);
    return ok(s);
  }

  /**
   * For the connection gate: the allow-lists of every account that could log in now (from one of
   * them). Reads every account and link, so the gate keeps the answer until the registry changes. A
   * link that cannot be read adds nothing (its logins would fail the same way).
   */
  async reachableCidrs(now: Date): Promise<string[]> {
    const out: string[] = [];
    for (const a of await credentials.enabledAccounts(this.cdb.db)) {
      try {
        const may = await this.mayPullFrom(a, now);
        if (may.ok) out.push(...may.value.allowIps);
      } catch {
        // a link that cannot be read adds nothing
      }
    }
    return out;
  }

  // ---- administration (CLI, console) ----

  private async require(username: string): Promise<AccountRow> {
    const a = await this.find(username.trim());
    if (!a) throw new UserError(`SFTP account ${username} does not exist (see \`nia-link account list\`)`, 'account.unknown');
    return a;
  }

  private async view(a: AccountRow): Promise<AccountView> {
    const s = await this.registry.state(a.linkId);
    return {
      username: a.username,
      link: a.linkId,
      agency: s.agency.code,
      linkStatus: s.link.status,
      enabled: a.enabled,
      password: a.passwordHash !== null,
      createdAt: a.createdAt,
      keys: (await credentials.sshKeysOf(this.cdb.db, a.id)).map((k) => ({ id: k.id, algorithm: k.algorithm, fingerprint: k.fingerprint, addedAt: k.addedAt, revokedAt: k.revokedAt })),
    };
  }

  async list(): Promise<AccountView[]> {
    const out: AccountView[] = [];
    for (const a of await credentials.allAccounts(this.cdb.db)) out.push(await this.view(a));
    return out;
  }

  async show(username: string): Promise<AccountView> {
    return this.view(await this.require(username));
  }

  /** One change to an account, in one transaction with its usage-log record; then announced. */
  private async change(username: string, type: string, actor: string, fn: (tx: Db, a: AccountRow, at: string) => Promise<Record<string, unknown> | void>): Promise<AccountView> {
    const now = this.clock.now();
    const account = await this.cdb.write(async (tx) => {
      const a = await credentials.accountByName(tx, username.trim());
      if (!a) throw new UserError(`SFTP account ${username} does not exist (see \`nia-link account list\`)`, 'account.unknown');
      const detail = (await fn(tx, a, now.toISOString())) ?? {};
      const s = await this.registry.stateIn(tx, a.linkId);
      await appendLog(tx, { type, agency: s.agency.code, linkId: a.linkId, revision: s.link.currentRevision, actor, channel: 'sftp-pull', object: `account:${a.username}`, detail }, now);
      return a;
    });
    this.announce(account.linkId);
    return this.show(account.username);
  }

  async setEnabled(username: string, enabled: boolean, actor: string): Promise<AccountView> {
    return this.change(username, enabled ? 'account.enabled' : 'account.disabled', actor, async (tx, a) => {
      if (a.enabled === enabled) throw new UserError(`account ${a.username} is ${enabled ? 'enabled' : 'disabled'} already`, 'account.unchanged');
      await credentials.updateAccount(tx, a.id, { enabled });
    });
  }

  async addKey(username: string, publicKeyText: string, actor: string): Promise<AccountView> {
    const k = inspectSshPublicKey(publicKeyText);
    return this.change(username, 'account.key.added', actor, async (tx, a, at) => {
      if ((await credentials.activeSshKeys(tx, a.id)).some((x) => x.fingerprint === k.fingerprint)) {
        throw new UserError(`key ${k.fingerprint} is on account ${a.username} already`, 'account.key.exists');
      }
      await credentials.insertSshKey(tx, { accountId: a.id, algorithm: k.algorithm, fingerprint: k.fingerprint, publicKey: k.line, addedAt: at, revokedAt: null });
      return { fingerprint: k.fingerprint, algorithm: k.algorithm };
    });
  }

  /** `which` is a fingerprint (`SHA256:…`) or the public key itself. Sessions opened with the key are closed. */
  async revokeKey(username: string, which: string, actor: string): Promise<AccountView> {
    const fingerprint = which.trim().startsWith('SHA256:') ? which.trim() : inspectSshPublicKey(which).fingerprint;
    return this.change(username, 'account.key.revoked', actor, async (tx, a, at) => {
      const key = (await credentials.activeSshKeys(tx, a.id)).find((x) => x.fingerprint === fingerprint);
      if (!key) throw new UserError(`account ${a.username} has no active key ${fingerprint}`, 'account.key.unknown');
      await credentials.revokeSshKey(tx, key.id, at);
      return { fingerprint, algorithm: key.algorithm };
    });
  }

  async setPassword(username: string, password: string, actor: string): Promise<AccountView> {
    if (password.length < MIN_PASSWORD_LENGTH) throw new UserError(`the password must have at least ${MIN_PASSWORD_LENGTH} characters`, 'account.password.weak');
    await this.require(username);
    const hash = await hashPassword(password);
    return this.change(username, 'account.password.set', actor, (tx, a) => credentials.updateAccount(tx, a.id, { passwordHash: hash }));
  }

  async clearPassword(username: string, actor: string): Promise<AccountView> {
    return this.change(username, 'account.password.cleared', actor, async (tx, a) => {
      if (a.passwordHash === null) throw new UserError(`account ${a.username} has no password`, 'account.unchanged');
      await credentials.updateAccount(tx, a.id, { passwordHash: null });
    });
  }
}
