import { asc, desc, eq } from 'drizzle-orm';
import type { Db } from '../index';
import { logCheckpoint } from '../schema';

export type CheckpointRow = typeof logCheckpoint.$inferSelect;

export const insert = async (tx: Db, row: Omit<CheckpointRow, 'id'>): Promise<CheckpointRow> => tx.insert(logCheckpoint).values(row).returning().get();
export const all = async (tx: Db): Promise<CheckpointRow[]> => tx.select().from(logCheckpoint).orderBy(asc(logCheckpoint.seq), asc(logCheckpoint.id)).all();
export const newest = async (tx: Db): Promise<CheckpointRow | undefined> => tx.select().from(logCheckpoint).orderBy(desc(logCheckpoint.seq), desc(logCheckpoint.id)).limit(1).get();
export const atSeq = async (tx: Db, seq: number): Promise<CheckpointRow[]> => tx.select().from(logCheckpoint).where(eq(logCheckpoint.seq, seq)).all();
