import { and, asc, eq, isNull } from 'drizzle-orm';
import type { Db } from '../index';
import type { pgpKey, sftpAccount, sshKey } from '../schema';
import { allOf, getOf, runOf, tablesOf } from '../dialect';

export type PgpKeyRow = typeof pgpKey.$inferSelect;
export type AccountRow = typeof sftpAccount.$inferSelect;
export type SshKeyRow = typeof sshKey.$inferSelect;

export async function pgpKeyFor(tx: Db, agencyId: number, fingerprint: string): Promise<PgpKeyRow | undefined> {
  const { pgpKey } = tablesOf(tx);
  return getOf(tx.select().from(pgpKey).where(and(eq(pgpKey.agencyId, agencyId), eq(pgpKey.fingerprint, fingerprint))));
}
export async function insertPgpKey(tx: Db, row: Omit<PgpKeyRow, 'id'>): Promise<PgpKeyRow> {
  const { pgpKey } = tablesOf(tx);
  return getOf(tx.insert(pgpKey).values(row).returning());
}

export const accountByName = async (tx: Db, username: string): Promise<AccountRow | undefined> =>
  {
  const { sftpAccount } = tablesOf(tx);
  return await getOf(tx.select().from(sftpAccount).where(eq(sftpAccount.username, username)));
};
export const accountForLink = async (tx: Db, linkId: number): Promise<AccountRow | undefined> =>
  {
  const { sftpAccount } = tablesOf(tx);
  return await getOf(tx.select().from(sftpAccount).where(eq(sftpAccount.linkId, linkId)));
};
export const insertAccount = async (tx: Db, row: Omit<AccountRow, 'id'>): Promise<AccountRow> => {
  const { sftpAccount } = tablesOf(tx);
  return getOf(tx.insert(sftpAccount).values(row).returning());
};

export async function activeSshKeys(tx: Db, accountId: number): Promise<SshKeyRow[]> {
  const { sshKey } = tablesOf(tx);
  return allOf(tx.select().from(sshKey).where(and(eq(sshKey.accountId, accountId), isNull(sshKey.revokedAt))).orderBy(asc(sshKey.id)));
}
export const insertSshKey = async (tx: Db, row: Omit<SshKeyRow, 'id'>): Promise<SshKeyRow> => {
  const { sshKey } = tablesOf(tx);
  return getOf(tx.insert(sshKey).values(row).returning());
};

export const accountById = async (tx: Db, id: number): Promise<AccountRow | undefined> => {
  const { sftpAccount } = tablesOf(tx);
  return getOf(tx.select().from(sftpAccount).where(eq(sftpAccount.id, id)));
};
export const allAccounts = async (tx: Db): Promise<AccountRow[]> => {
  const { sftpAccount } = tablesOf(tx);
  return allOf(tx.select().from(sftpAccount).orderBy(asc(sftpAccount.username)));
};
export const enabledAccounts = async (tx: Db): Promise<AccountRow[]> => {
  const { sftpAccount } = tablesOf(tx);
  return allOf(tx.select().from(sftpAccount).where(eq(sftpAccount.enabled, true)));
};
export async function updateAccount(tx: Db, id: number, values: Partial<Pick<AccountRow, 'enabled' | 'passwordHash'>>): Promise<void> {
  const { sftpAccount } = tablesOf(tx);
  await runOf(tx.update(sftpAccount).set(values).where(eq(sftpAccount.id, id)));
}
/** Every key the account ever had, revoked ones included (for `account show`). */
export async function sshKeysOf(tx: Db, accountId: number): Promise<SshKeyRow[]> {
  const { sshKey } = tablesOf(tx);
  return allOf(tx.select().from(sshKey).where(eq(sshKey.accountId, accountId)).orderBy(asc(sshKey.id)));
}
export async function revokeSshKey(tx: Db, id: number, at: string): Promise<void> {
  const { sshKey } = tablesOf(tx);
  await runOf(tx.update(sshKey).set({ revokedAt: at }).where(eq(sshKey.id, id)));
}
