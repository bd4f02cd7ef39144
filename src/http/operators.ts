import { createHash, randomBytes } from 'node:crypto';
import type { Config } from '../config';
import { dummyPasswordHash, hashPassword, MIN_PASSWORD_LENGTH, verifyPassword } from '../crypto';
import type { ControlDb, Db } from '../db';
import { operators } from '../db/repositories';
import type { Clock } from '../domain';
import { UserError } from '../errors';
import { appendLog } from '../usagelog';
import { checkTotp, newTotpSecret, otpauthUri } from './totp';

export const OPERATOR_ROLES = ['admin', 'operator', 'auditor'] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

const USERNAME = /^[a-z][a-z0-9._-]{1,39}$/;
/** Console records in the usage log carry this channel. */
export const CONSOLE = 'console';

export interface OperatorView {
  username: string;
  role: OperatorRole;
  totp: boolean;
  disabled: boolean;
  lockedUntil: string | null;
  failedLogins: number;
  lastLoginAt: string | null;
  createdAt: string;
}

/** Who is logged in, as every console request sees it. */
export interface ConsoleSession {
  operatorId: number;
  username: string;
  role: OperatorRole;
  csrfToken: string;
  tokenHash: string;
  expiresAt: string;
}

export type LoginResult = { ok: true; token: string; session: ConsoleSession } | { ok: false; reason: LoginRefusal };
/** Told apart in the usage log only: the person at the login form hears one message for all of them. */
export type LoginRefusal = 'unknown-operator' | 'bad-password' | 'bad-totp' | 'locked' | 'disabled';

export type LoginSettings = Pick<Config['http'], 'sessionIdleMinutes' | 'sessionMaxHours' | 'login'>;

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
/** Attacker-chosen names go into the log only printable and short. */
const printable = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
const TOUCH_EVERY_MS = 60_000;

function view(o: operators.OperatorRow): OperatorView {
  return { username: o.username, role: o.role, totp: o.totpSecret !== null, disabled: o.disabled, lockedUntil: o.lockedUntil, failedLogins: o.failedLogins, lastLoginAt: o.lastLoginAt, createdAt: o.createdAt };
}

/**
 * Console operators: accounts, password and TOTP logins with lockout, and server-side sessions.
 * Every change and every login attempt is one transaction with its usage-log record.
 */
export class OperatorService {
  constructor(
    private readonly cdb: ControlDb,
    private readonly clock: Clock,
    private readonly settings: LoginSettings,
  ) {}

  private async find(username: string): Promise<operators.OperatorRow> {
    const o = await operators.byName(this.cdb.db, username);
    if (!o) throw new UserError(`operator '${username}' does not exist`, 'operator.unknown');
    return o;
  }

  private static checkPassword(password: string): void {
    if (password.length < MIN_PASSWORD_LENGTH) throw new UserError(`the password must have at least ${MIN_PASSWORD_LENGTH} characters`, 'operator.password.weak', { kind: 'invalid', field: 'password' });
  }

  async add(input: { username: string; role: string; password: string }, actor: string): Promise<OperatorView> {
    if (!USERNAME.test(input.username)) throw new UserError(`username '${printable(input.username)}': 2–40 characters, lower-case letters, digits, '.', '_' and '-', starting with a letter`, 'operator.username', { kind: 'invalid', field: 'username' });
    if (!(OPERATOR_ROLES as readonly string[]).includes(input.role)) throw new UserError(`role '${printable(input.role)}': one of ${OPERATOR_ROLES.join(', ')}`, 'operator.role', { kind: 'invalid', field: 'role' });
    OperatorService.checkPassword(input.password);
    const hash = await hashPassword(input.password);
    const now = this.clock.now();
    return view(
      await this.cdb.write(async (tx) => {
        if (await operators.byName(tx, input.username)) throw new UserError(`operator '${input.username}' exists already`, 'operator.exists');
        const row = await operators.insert(tx, {
          username: input.username,
          role: input.role as OperatorRole,
          passwordHash: hash,
          totpSecret: null,
          totpLastStep: null,
          disabled: false,
          failedLogins: 0,
          lockedUntil: null,
          lastLoginAt: null,
          passwordChangedAt: now.toISOString(),
          createdAt: now.toISOString(),
          createdBy: actor,
        });
        await appendLog(tx, { type: 'operator.added', actor, channel: CONSOLE, object: `operator:${row.username}`, detail: { role: row.role } }, now);
        return row;
      }),
    );
  }

  async list(): Promise<OperatorView[]> {
    return (await operators.all(this.cdb.db)).map(view);
  }

  async show(username: string): Promise<OperatorView> {
    return view(await this.find(username));
  }

  /**
   * A change to one operator with its usage-log record; `endSessions` logs them out everywhere.
   * `allowed` checks the change against the operators as they are inside its transaction.
   */
  private async change(username: string, type: string, actor: string, values: Partial<operators.OperatorRow>, endSessions: boolean, detail: Record<string, unknown> = {}, allowed?: (tx: Db, o: operators.OperatorRow) => Promise<void>): Promise<OperatorView> {
    const now = this.clock.now();
    return view(
      await this.cdb.write(async (tx) => {
        const o = await operators.byName(tx, username);
        if (!o) throw new UserError(`operator '${username}' does not exist`, 'operator.unknown');
        await allowed?.(tx, o);
        await operators.update(tx, o.id, values);
        const ended = endSessions ? await operators.deleteSessionsOf(tx, o.id) : 0;
        await appendLog(tx, { type, actor, channel: CONSOLE, object: `operator:${o.username}`, detail: { ...detail, ...(ended ? { sessionsEnded: ended } : {}) } }, now);
        return (await operators.byId(tx, o.id))!;
      }),
    );
  }

  async setPassword(username: string, password: string, actor: string): Promise<OperatorView> {
    await this.find(username);
    OperatorService.checkPassword(password);
    const hash = await hashPassword(password);
    return this.change(username, 'operator.password-set', actor, { passwordHash: hash, passwordChangedAt: this.clock.now().toISOString(), failedLogins: 0, lockedUntil: null }, true);
  }

  /**
   * Someone must still be able to approve links and manage operators: checked inside the change's
   * transaction, so two changes at once cannot each count on the other admin.
   */
  private async keepAnAdmin(tx: Db, o: operators.OperatorRow): Promise<void> {
    if (o.role !== 'admin' || o.disabled) return;
    const others = (await operators.all(tx)).filter((x) => x.role === 'admin' && !x.disabled && x.id !== o.id);
    if (others.length === 0) throw new UserError(`'${o.username}' is the last enabled admin: add another admin first`, 'operator.last-admin');
  }

  async setRole(username: string, role: string, actor: string): Promise<OperatorView> {
    if (!(OPERATOR_ROLES as readonly string[]).includes(role)) throw new UserError(`role '${printable(role)}': one of ${OPERATOR_ROLES.join(', ')}`, 'operator.role', { kind: 'invalid', field: 'role' });
    const o = await this.find(username);
    if (o.role === role) throw new UserError(`operator '${username}' is ${role} already`, 'operator.unchanged');
    return this.change(username, 'operator.role-set', actor, { role: role as OperatorRole }, true, { from: o.role, to: role }, (tx, now) => this.keepAnAdmin(tx, now));
  }

  async disable(username: string, actor: string): Promise<OperatorView> {
    const o = await this.find(username);
    if (o.disabled) throw new UserError(`operator '${username}' is disabled already`, 'operator.unchanged');
    return this.change(username, 'operator.disabled', actor, { disabled: true }, true, {}, (tx, now) => this.keepAnAdmin(tx, now));
  }

  async enable(username: string, actor: string): Promise<OperatorView> {
    if (!(await this.find(username)).disabled) throw new UserError(`operator '${username}' is enabled already`, 'operator.unchanged');
    return this.change(username, 'operator.enabled', actor, { disabled: false, failedLogins: 0, lockedUntil: null }, false);
  }

  async unlock(username: string, actor: string): Promise<OperatorView> {
    const o = await this.find(username);
    if (o.failedLogins === 0 && o.lockedUntil === null) throw new UserError(`operator '${username}' is not locked`, 'operator.unchanged');
    return this.change(username, 'operator.unlocked', actor, { failedLogins: 0, lockedUntil: null }, false);
  }

  /** A new TOTP secret: from the next login on, a code from the app is needed too. */
  async enableTotp(username: string, actor: string): Promise<{ operator: OperatorView; secret: string; uri: string }> {
    const secret = newTotpSecret();
    const operator = await this.change(username, 'operator.totp-set', actor, { totpSecret: secret, totpLastStep: null }, true);
    return { operator, secret, uri: otpauthUri(secret, username) };
  }

  async disableTotp(username: string, actor: string): Promise<OperatorView> {
    if ((await this.find(username)).totpSecret === null) throw new UserError(`operator '${username}' has no TOTP`, 'operator.unchanged');
    return this.change(username, 'operator.totp-cleared', actor, { totpSecret: null, totpLastStep: null }, true);
  }

  // ---- logins and sessions ----

  /**
   * One login attempt. A password is always checked (against a dummy hash for unknown, disabled or
   * locked operators), so the time a refusal takes says nothing; consecutive failures lock the
   * operator. The attempt and its outcome are one transaction with the usage-log record.
   */
  async login(input: { username: string; password: string; code?: string; ip: string; userAgent?: string }): Promise<LoginResult> {
    const name = input.username.trim();
    const found = USERNAME.test(name) ? await operators.byName(this.cdb.db, name) : undefined;
    const passwordOk = await verifyPassword(input.password, found?.passwordHash ?? (await dummyPasswordHash()));
    const now = this.clock.now();
    const { login } = this.settings;
    return this.cdb.write(async (tx): Promise<LoginResult> => {
      // Read again inside the transaction: parallel attempts must each count.
      const o = found ? await operators.byId(tx, found.id) : undefined;
      let reason: LoginRefusal | null = null;
      let step: number | null = null;
      if (!o) reason = 'unknown-operator';
      else if (o.disabled) reason = 'disabled';
      else if (o.lockedUntil !== null && o.lockedUntil > now.toISOString()) reason = 'locked';
      else if (!passwordOk) reason = 'bad-password';
      // A missing code counts like a wrong one: asking for it only after a right password would tell that the password was right.
      else if (o.totpSecret !== null && (step = checkTotp(o.totpSecret, (input.code ?? '').trim(), now, o.totpLastStep)) === null) reason = 'bad-totp';
      const base = { actor: o?.username ?? null, ip: input.ip, channel: CONSOLE };
      if (reason !== null) {
        const detail: Record<string, unknown> = { reason, ...(o ? {} : { username: printable(name) }) };
        if (o && (reason === 'bad-password' || reason === 'bad-totp')) {
          const failures = o.failedLogins + 1;
          const lock = failures >= login.maxFailures;
          const lockedUntil = lock ? new Date(now.getTime() + login.lockoutMinutes * 60_000).toISOString() : o.lockedUntil;
          await operators.update(tx, o.id, { failedLogins: lock ? 0 : failures, lockedUntil });
          detail.failures = failures;
          await appendLog(tx, { type: 'auth.failed', ...base, detail }, now);
          if (lock) await appendLog(tx, { type: 'operator.locked', ...base, object: `operator:${o.username}`, detail: { failures, until: lockedUntil } }, now);
        } else {
          await appendLog(tx, { type: 'auth.failed', ...base, detail }, now);
        }
        return { ok: false, reason };
      }
      const token = randomBytes(32).toString('base64url');
      const tokenHash = sha256(token);
      const expiresAt = new Date(now.getTime() + this.settings.sessionMaxHours * 3600_000).toISOString();
      const idleBefore = new Date(now.getTime() - this.settings.sessionIdleMinutes * 60_000).toISOString();
      await operators.deleteStaleSessions(tx, now.toISOString(), idleBefore);
      const csrfToken = randomBytes(32).toString('base64url');
      await operators.insertSession(tx, { tokenHash, operatorId: o!.id, csrfToken, createdAt: now.toISOString(), lastSeenAt: now.toISOString(), expiresAt, ip: input.ip, userAgent: input.userAgent?.slice(0, 200) ?? null });
      await operators.update(tx, o!.id, { failedLogins: 0, lockedUntil: null, lastLoginAt: now.toISOString(), ...(step !== null ? { totpLastStep: step } : {}) });
      await appendLog(tx, { type: 'auth.succeeded', ...base, detail: { role: o!.role, method: o!.totpSecret ? 'password+totp' : 'password' } }, now);
      return { ok: true, token, session: { operatorId: o!.id, username: o!.username, role: o!.role, csrfToken, tokenHash, expiresAt } };
    });
  }

  /** The session a cookie names, if it is still good: not expired, not idle too long, its operator enabled. */
  async session(token: string): Promise<ConsoleSession | null> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return null;
    const tokenHash = sha256(token);
    const s = await operators.session(this.cdb.db, tokenHash);
    if (!s) return null;
    const now = this.clock.now();
    const idleBefore = new Date(now.getTime() - this.settings.sessionIdleMinutes * 60_000).toISOString();
    const o = await operators.byId(this.cdb.db, s.operatorId);
    if (!o || o.disabled || s.expiresAt <= now.toISOString() || s.lastSeenAt < idleBefore) {
      await this.cdb.write((tx) => operators.deleteSession(tx, tokenHash));
      return null;
    }
    // Written at most once a minute: a page of requests is not a page of writes.
    if (now.getTime() - Date.parse(s.lastSeenAt) > TOUCH_EVERY_MS) await this.cdb.write((tx) => operators.touchSession(tx, tokenHash, now.toISOString()));
    return { operatorId: o.id, username: o.username, role: o.role, csrfToken: s.csrfToken, tokenHash, expiresAt: s.expiresAt };
  }

  async logout(s: ConsoleSession, ip: string): Promise<void> {
    const now = this.clock.now();
    await this.cdb.write(async (tx) => {
      await operators.deleteSession(tx, s.tokenHash);
      await appendLog(tx, { type: 'session.closed', actor: s.username, ip, channel: CONSOLE, detail: { reason: 'logout' } }, now);
    });
  }
}
