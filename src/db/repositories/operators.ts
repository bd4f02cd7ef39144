import { asc, eq, lt, or } from 'drizzle-orm';
import type { Db } from '../index';
import type { operator, operatorSession } from '../schema';
import { allOf, getOf, runOf, tablesOf } from '../dialect';

export type OperatorRow = typeof operator.$inferSelect;
export type SessionRow = typeof operatorSession.$inferSelect;

export const byName = async (tx: Db, username: string): Promise<OperatorRow | undefined> => {
  const { operator } = tablesOf(tx);
  return getOf(tx.select().from(operator).where(eq(operator.username, username)));
};
export const byId = async (tx: Db, id: number): Promise<OperatorRow | undefined> => {
  const { operator } = tablesOf(tx);
  return getOf(tx.select().from(operator).where(eq(operator.id, id)));
};
export const all = async (tx: Db): Promise<OperatorRow[]> => {
  const { operator } = tablesOf(tx);
  return allOf(tx.select().from(operator).orderBy(asc(operator.username)));
};
export const insert = async (tx: Db, row: Omit<OperatorRow, 'id'>): Promise<OperatorRow> => {
  const { operator } = tablesOf(tx);
  return getOf(tx.insert(operator).values(row).returning());
};
export async function update(tx: Db, id: number, values: Partial<Omit<OperatorRow, 'id' | 'username'>>): Promise<void> {
  const { operator } = tablesOf(tx);
  await runOf(tx.update(operator).set(values).where(eq(operator.id, id)));
}

export const insertSession = async (tx: Db, row: SessionRow): Promise<void> => {
  const { operatorSession } = tablesOf(tx);
  return void await runOf(tx.insert(operatorSession).values(row));
};
export const session = async (tx: Db, tokenHash: string): Promise<SessionRow | undefined> => {
  const { operatorSession } = tablesOf(tx);
  return getOf(tx.select().from(operatorSession).where(eq(operatorSession.tokenHash, tokenHash)));
};
export async function touchSession(tx: Db, tokenHash: string, lastSeenAt: string): Promise<void> {
  const { operatorSession } = tablesOf(tx);
  await runOf(tx.update(operatorSession).set({ lastSeenAt }).where(eq(operatorSession.tokenHash, tokenHash)));
}
export const deleteSession = async (tx: Db, tokenHash: string): Promise<void> => {
  const { operatorSession } = tablesOf(tx);
  return void await runOf(tx.delete(operatorSession).where(eq(operatorSession.tokenHash, tokenHash)));
};
export const deleteSessionsOf = async (tx: Db, operatorId: number): Promise<number> => {
  const { operatorSession } = tablesOf(tx);
  return runOf(tx.delete(operatorSession).where(eq(operatorSession.operatorId, operatorId)));
};
/** Sessions past their absolute expiry or idle since before `idleBefore`. */
export async function deleteStaleSessions(tx: Db, nowIso: string, idleBefore: string): Promise<number> {
  const { operatorSession } = tablesOf(tx);
  return runOf(tx.delete(operatorSession).where(or(lt(operatorSession.expiresAt, nowIso), lt(operatorSession.lastSeenAt, idleBefore))));
}
