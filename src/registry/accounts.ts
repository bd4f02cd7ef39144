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

  find(username: string): AccountRow | undefined {
    return credentials.accountByName(this.cdb.db, username);
  }

  activeKeys(accountId: number): SshKeyRow[] {
    return credentials.activeSshKeys(this.cdb.db, accountId);
  }

  /**
   * May this account pull from this address now? The rule every channel asks (`mayUseChannel`: the
   * link's state, period, stop date, sftp-pull approved, the address on the allow-list in force), plus
   * the account being enabled and still the link's SFTP account.
   */
  mayPull(account: AccountRow, ip: string, now: Date): Result<LinkState> {
    const fresh = credentials.accountById(this.cdb.db, account.id);
    if (!fresh) return refuse('account.unknown', 'account no longer exists');
    return this.mayPullFrom(fresh, now, ip);
  }

  /** mayPull for `fresh` as just read from the database; without `ip`, from somewhere on its allow-list. */
  private mayPullFrom(fresh: AccountRow, now: Date, ip?: string): Result<LinkState> {
    if (!fresh.enabled) return refuse('account.disabled', `account ${fresh.username} is disabled`);
    const s = this.registry.state(fresh.linkId);
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
  reachableCidrs(now: Date): string[] {
    return credentials.enabledAccounts(this.cdb.db).flatMap((a) => {
      try {
        const may = this.mayPullFrom(a, now);
        return may.ok ? may.value.allowIps : [];
      } catch {
        return [];
      }
    });
  }

  // ---- administration (CLI, console) ----

  private require(username: string): AccountRow {
    const a = this.find(username.trim());
    if (!a) throw new UserError(`SFTP account ${username} does not exist (see \`nia-link account list\`)`, 'account.unknown');
    return a;
  }

  private view(a: AccountRow): AccountView {
    const s = this.registry.state(a.linkId);
    return {
      username: a.username,
      link: a.linkId,
      agency: s.agency.code,
      linkStatus: s.link.status,
      enabled: a.enabled,
      password: a.passwordHash !== null,
      createdAt: a.createdAt,
      keys: credentials.sshKeysOf(this.cdb.db, a.id).map((k) => ({ id: k.id, algorithm: k.algorithm, fingerprint: k.fingerprint, addedAt: k.addedAt, revokedAt: k.revokedAt })),
    };
  }

  list(): AccountView[] {
    return credentials.allAccounts(this.cdb.db).map((a) => this.view(a));
  }

  show(username: string): AccountView {
    return this.view(this.require(username));
  }

  /** One change to an account, in one transaction with its usage-log record; then announced. */
  private change(username: string, type: string, actor: string, fn: (tx: Db, a: AccountRow, at: string) => Record<string, unknown> | void): AccountView {
    const now = this.clock.now();
    const account = this.cdb.write((tx) => {
      const a = credentials.accountByName(tx, username.trim());
      if (!a) throw new UserError(`SFTP account ${username} does not exist (see \`nia-link account list\`)`, 'account.unknown');
      const detail = fn(tx, a, now.toISOString()) ?? {};
      const s = this.registry.state(a.linkId);
      appendLog(tx, { type, agency: s.agency.code, linkId: a.linkId, revision: s.link.currentRevision, actor, channel: 'sftp-pull', object: `account:${a.username}`, detail }, now);
      return a;
    });
    this.announce(account.linkId);
    return this.show(account.username);
  }

  setEnabled(username: string, enabled: boolean, actor: string): AccountView {
    return this.change(username, enabled ? 'account.enabled' : 'account.disabled', actor, (tx, a) => {
      if (a.enabled === enabled) throw new UserError(`account ${a.username} is ${enabled ? 'enabled' : 'disabled'} already`, 'account.unchanged');
      credentials.updateAccount(tx, a.id, { enabled });
    });
  }

  addKey(username: string, publicKeyText: string, actor: string): AccountView {
    const k = inspectSshPublicKey(publicKeyText);
    return this.change(username, 'account.key.added', actor, (tx, a, at) => {
      if (credentials.activeSshKeys(tx, a.id).some((x) => x.fingerprint === k.fingerprint)) {
        throw new UserError(`key ${k.fingerprint} is on account ${a.username} already`, 'account.key.exists');
      }
      credentials.insertSshKey(tx, { accountId: a.id, algorithm: k.algorithm, fingerprint: k.fingerprint, publicKey: k.line, addedAt: at, revokedAt: null });
      return { fingerprint: k.fingerprint, algorithm: k.algorithm };
    });
  }

  /** `which` is a fingerprint (`SHA256:…`) or the public key itself. Sessions opened with the key are closed. */
  revokeKey(username: string, which: string, actor: string): AccountView {
    const fingerprint = which.trim().startsWith('SHA256:') ? which.trim() : inspectSshPublicKey(which).fingerprint;
    return this.change(username, 'account.key.revoked', actor, (tx, a, at) => {
      const key = credentials.activeSshKeys(tx, a.id).find((x) => x.fingerprint === fingerprint);
      if (!key) throw new UserError(`account ${a.username} has no active key ${fingerprint}`, 'account.key.unknown');
      credentials.revokeSshKey(tx, key.id, at);
      return { fingerprint, algorithm: key.algorithm };
    });
  }

  async setPassword(username: string, password: string, actor: string): Promise<AccountView> {
    if (password.length < MIN_PASSWORD_LENGTH) throw new UserError(`the password must have at least ${MIN_PASSWORD_LENGTH} characters`, 'account.password.weak');
    this.require(username);
    const hash = await hashPassword(password);
    return this.change(username, 'account.password.set', actor, (tx, a) => credentials.updateAccount(tx, a.id, { passwordHash: hash }));
  }

  clearPassword(username: string, actor: string): AccountView {
    return this.change(username, 'account.password.cleared', actor, (tx, a) => {
      if (a.passwordHash === null) throw new UserError(`account ${a.username} has no password`, 'account.unchanged');
      credentials.updateAccount(tx, a.id, { passwordHash: null });
    });
  }
}
