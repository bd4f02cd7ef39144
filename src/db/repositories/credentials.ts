import { and, asc, eq, isNull } from 'drizzle-orm';
import type { Db } from '../index';
import { pgpKey, sftpAccount, sshKey } from '../schema';

export type PgpKeyRow = typeof pgpKey.$inferSelect;
export type AccountRow = typeof sftpAccount.$inferSelect;
export type SshKeyRow = typeof sshKey.$inferSelect;

export function pgpKeyFor(tx: Db, agencyId: number, fingerprint: string): PgpKeyRow | undefined {
  return tx.select().from(pgpKey).where(and(eq(pgpKey.agencyId, agencyId), eq(pgpKey.fingerprint, fingerprint))).get();
}
export function insertPgpKey(tx: Db, row: Omit<PgpKeyRow, 'id'>): PgpKeyRow {
  return tx.insert(pgpKey).values(row).returning().get();
}

export const accountByName = (tx: Db, username: string): AccountRow | undefined =>
  tx.select().from(sftpAccount).where(eq(sftpAccount.username, username)).get();
export const accountForLink = (tx: Db, linkId: number): AccountRow | undefined =>
  tx.select().from(sftpAccount).where(eq(sftpAccount.linkId, linkId)).get();
export const insertAccount = (tx: Db, row: Omit<AccountRow, 'id'>): AccountRow => tx.insert(sftpAccount).values(row).returning().get();

export function activeSshKeys(tx: Db, accountId: number): SshKeyRow[] {
  return tx.select().from(sshKey).where(and(eq(sshKey.accountId, accountId), isNull(sshKey.revokedAt))).orderBy(asc(sshKey.id)).all();
}
export const insertSshKey = (tx: Db, row: Omit<SshKeyRow, 'id'>): SshKeyRow => tx.insert(sshKey).values(row).returning().get();

export const accountById = (tx: Db, id: number): AccountRow | undefined => tx.select().from(sftpAccount).where(eq(sftpAccount.id, id)).get();
export const allAccounts = (tx: Db): AccountRow[] => tx.select().from(sftpAccount).orderBy(asc(sftpAccount.username)).all();
export const enabledAccounts = (tx: Db): AccountRow[] => tx.select().from(sftpAccount).where(eq(sftpAccount.enabled, true)).all();
export function updateAccount(tx: Db, id: number, values: Partial<Pick<AccountRow, 'enabled' | 'passwordHash'>>): void {
  tx.update(sftpAccount).set(values).where(eq(sftpAccount.id, id)).run();
}
/** Every key the account ever had, revoked ones included (for `account show`). */
export function sshKeysOf(tx: Db, accountId: number): SshKeyRow[] {
  return tx.select().from(sshKey).where(eq(sshKey.accountId, accountId)).orderBy(asc(sshKey.id)).all();
}
export function revokeSshKey(tx: Db, id: number, at: string): void {
  tx.update(sshKey).set({ revokedAt: at }).where(eq(sshKey.id, id)).run();
}
