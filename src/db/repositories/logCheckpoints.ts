import { asc, desc, eq } from 'drizzle-orm';
import type { Db } from '../index';
import type { logCheckpoint } from '../schema';
import { allOf, getOf, tablesOf } from '../dialect';

export type CheckpointRow = typeof logCheckpoint.$inferSelect;

export const insert = async (tx: Db, row: Omit<CheckpointRow, 'id'>): Promise<CheckpointRow> => {
  const { logCheckpoint } = tablesOf(tx);
  return getOf(tx.insert(logCheckpoint).values(row).returning());
};
export const all = async (tx: Db): Promise<CheckpointRow[]> => {
  const { logCheckpoint } = tablesOf(tx);
  return allOf(tx.select().from(logCheckpoint).orderBy(asc(logCheckpoint.seq), asc(logCheckpoint.id)));
};
export const newest = async (tx: Db): Promise<CheckpointRow | undefined> => {
  const { logCheckpoint } = tablesOf(tx);
  return getOf(tx.select().from(logCheckpoint).orderBy(desc(logCheckpoint.seq), desc(logCheckpoint.id)).limit(1));
};
export const atSeq = async (tx: Db, seq: number): Promise<CheckpointRow[]> => {
  const { logCheckpoint } = tablesOf(tx);
  return allOf(tx.select().from(logCheckpoint).where(eq(logCheckpoint.seq, seq)));
};
