import { asc, eq, lt, or } from 'drizzle-orm';
import type { Db } from '../index';
import { operator, operatorSession } from '../schema';

export type OperatorRow = typeof operator.$inferSelect;
export type SessionRow = typeof operatorSession.$inferSelect;

export const byName = async (tx: Db, username: string): Promise<OperatorRow | undefined> => tx.select().from(operator).where(eq(operator.username, username)).get();
export const byId = async (tx: Db, id: number): Promise<OperatorRow | undefined> => tx.select().from(operator).where(eq(operator.id, id)).get();
export const all = async (tx: Db): Promise<OperatorRow[]> => tx.select().from(operator).orderBy(asc(operator.username)).all();
export const insert = async (tx: Db, row: Omit<OperatorRow, 'id'>): Promise<OperatorRow> => tx.insert(operator).values(row).returning().get();
export async function update(tx: Db, id: number, values: Partial<Omit<OperatorRow, 'id' | 'username'>>): Promise<void> {
  tx.update(operator).set(values).where(eq(operator.id, id)).run();
}

export const insertSession = async (tx: Db, row: SessionRow): Promise<void> => void tx.insert(operatorSession).values(row).run();
export const session = async (tx: Db, tokenHash: string): Promise<SessionRow | undefined> => tx.select().from(operatorSession).where(eq(operatorSession.tokenHash, tokenHash)).get();
export async function touchSession(tx: Db, tokenHash: string, lastSeenAt: string): Promise<void> {
  tx.update(operatorSession).set({ lastSeenAt }).where(eq(operatorSession.tokenHash, tokenHash)).run();
}
export const deleteSession = async (tx: Db, tokenHash: string): Promise<void> => void tx.delete(operatorSession).where(eq(operatorSession.tokenHash, tokenHash)).run();
export const deleteSessionsOf = async (tx: Db, operatorId: number): Promise<number> => tx.delete(operatorSession).where(eq(operatorSession.operatorId, operatorId)).run().changes;
/** Sessions past their absolute expiry or idle since before `idleBefore`. */
export async function deleteStaleSessions(tx: Db, nowIso: string, idleBefore: string): Promise<number> {
  return tx.delete(operatorSession).where(or(lt(operatorSession.expiresAt, nowIso), lt(operatorSession.lastSeenAt, idleBefore))).run().changes;
}
