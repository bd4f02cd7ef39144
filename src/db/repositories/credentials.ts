import { and, asc, eq, isNull } from 'drizzle-orm';
import type { Db } from '../index';
import { pgpKey, sftpAccount, sshKey } from '../schema';

export type PgpKeyRow = typeof pgpKey.$inferSelect;
export type AccountRow = typeof sftpAccount.$inferSelect;
export type SshKeyRow = typeof sshKey.$inferSelect;

export async function pgpKeyFor(tx: Db, agencyId: number, fingerprint: string): Promise<PgpKeyRow | undefined> {
  return tx.select().from(pgpKey).where(and(eq(pgpKey.agencyId, agencyId), eq(pgpKey.fingerprint, fingerprint))).get();
}
export async function insertPgpKey(tx: Db, row: Omit<PgpKeyRow, 'id'>): Promise<PgpKeyRow> {
  return tx.insert(pgpKey).values(row).returning().get();
}

export const accountByName = async (tx: Db, username: string): Promise<AccountRow | undefined> =>
  tx.select().from(sftpAccount).where(eq(sftpAccount.username, username)).get();
export const accountForLink = async (tx: Db, linkId: number): Promise<AccountRow | undefined> =>
  tx.select().from(sftpAccount).where(eq(sftpAccount.linkId, linkId)).get();
export const insertAccount = async (tx: Db, row: Omit<AccountRow, 'id'>): Promise<AccountRow> => tx.insert(sftpAccount).values(row).returning().get();

export async function activeSshKeys(tx: Db, accountId: number): Promise<SshKeyRow[]> {
  return tx.select().from(sshKey).where(and(eq(sshKey.accountId, accountId), isNull(sshKey.revokedAt))).orderBy(asc(sshKey.id)).all();
}
export const insertSshKey = async (tx: Db, row: Omit<SshKeyRow, 'id'>): Promise<SshKeyRow> => tx.insert(sshKey).values(row).returning().get();

export const accountById = async (tx: Db, id: number): Promise<AccountRow | undefined> => tx.select().from(sftpAccount).where(eq(sftpAccount.id, id)).get();
export const allAccounts = async (tx: Db): Promise<AccountRow[]> => tx.select().from(sftpAccount).orderBy(asc(sftpAccount.username)).all();
export const enabledAccounts = async (tx: Db): Promise<AccountRow[]> => tx.select().from(sftpAccount).where(eq(sftpAccount.enabled, true)).all();
export async function updateAccount(tx: Db, id: number, values: Partial<Pick<AccountRow, 'enabled' | 'passwordHash'>>): Promise<void> {
  tx.update(sftpAccount).set(values).where(eq(sftpAccount.id, id)).run();
}
/** Every key the account ever had, revoked ones included (for `account show`). */
export async function sshKeysOf(tx: Db, accountId: number): Promise<SshKeyRow[]> {
  return tx.select().from(sshKey).where(eq(sshKey.accountId, accountId)).orderBy(asc(sshKey.id)).all();
}
export async function revokeSshKey(tx: Db, id: number, at: string): Promise<void> {
  tx.update(sshKey).set({ revokedAt: at }).where(eq(sshKey.id, id)).run();
}
