import { asc, eq, lt, or } from 'drizzle-orm';
import type { Db } from '../index';
import { operator, operatorSession } from '../schema';

export type OperatorRow = typeof operator.$inferSelect;
export type SessionRow = typeof operatorSession.$inferSelect;

export const byName = (tx: Db, username: string): OperatorRow | undefined => tx.select().from(operator).where(eq(operator.username, username)).get();
export const byId = (tx: Db, id: number): OperatorRow | undefined => tx.select().from(operator).where(eq(operator.id, id)).get();
export const all = (tx: Db): OperatorRow[] => tx.select().from(operator).orderBy(asc(operator.username)).all();
export const insert = (tx: Db, row: Omit<OperatorRow, 'id'>): OperatorRow => tx.insert(operator).values(row).returning().get();
export function update(tx: Db, id: number, values: Partial<Omit<OperatorRow, 'id' | 'username'>>): void {
  tx.update(operator).set(values).where(eq(operator.id, id)).run();
}

export const insertSession = (tx: Db, row: SessionRow): void => void tx.insert(operatorSession).values(row).run();
export const session = (tx: Db, tokenHash: string): SessionRow | undefined => tx.select().from(operatorSession).where(eq(operatorSession.tokenHash, tokenHash)).get();
export function touchSession(tx: Db, tokenHash: string, lastSeenAt: string): void {
  tx.update(operatorSession).set({ lastSeenAt }).where(eq(operatorSession.tokenHash, tokenHash)).run();
}
export const deleteSession = (tx: Db, tokenHash: string): void => void tx.delete(operatorSession).where(eq(operatorSession.tokenHash, tokenHash)).run();
export const deleteSessionsOf = (tx: Db, operatorId: number): number => tx.delete(operatorSession).where(eq(operatorSession.operatorId, operatorId)).run().changes;
/** Sessions past their absolute expiry or idle since before `idleBefore`. */
export function deleteStaleSessions(tx: Db, nowIso: string, idleBefore: string): number {
  return tx.delete(operatorSession).where(or(lt(operatorSession.expiresAt, nowIso), lt(operatorSession.lastSeenAt, idleBefore))).run().changes;
}
