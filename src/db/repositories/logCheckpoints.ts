import { asc, desc, eq } from 'drizzle-orm';
import type { Db } from '../index';
import { logCheckpoint } from '../schema';

export type CheckpointRow = typeof logCheckpoint.$inferSelect;

export const insert = (tx: Db, row: Omit<CheckpointRow, 'id'>): CheckpointRow => tx.insert(logCheckpoint).values(row).returning().get();
export const all = (tx: Db): CheckpointRow[] => tx.select().from(logCheckpoint).orderBy(asc(logCheckpoint.seq), asc(logCheckpoint.id)).all();
export const newest = (tx: Db): CheckpointRow | undefined => tx.select().from(logCheckpoint).orderBy(desc(logCheckpoint.seq), desc(logCheckpoint.id)).limit(1).get();
export const atSeq = (tx: Db, seq: number): CheckpointRow[] => tx.select().from(logCheckpoint).where(eq(logCheckpoint.seq, seq)).all();
