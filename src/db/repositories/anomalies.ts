import { and, desc, eq, type SQL } from 'drizzle-orm';
import type { Db } from '../index';
import { anomaly, anomalyScan } from '../schema';

export type AnomalyRow = typeof anomaly.$inferSelect;

export const byKey = async (tx: Db, key: string): Promise<AnomalyRow | undefined> => tx.select().from(anomaly).where(eq(anomaly.key, key)).get();
export const insert = async (tx: Db, row: Omit<AnomalyRow, 'id'>): Promise<AnomalyRow> => tx.insert(anomaly).values(row).returning().get();
export async function update(tx: Db, id: number, values: Partial<Omit<AnomalyRow, 'id' | 'key'>>): Promise<void> {
  tx.update(anomaly).set(values).where(eq(anomaly.id, id)).run();
}

export interface AnomalyFilter {
  rule?: string;
  linkId?: number;
  status?: AnomalyRow['status'];
  limit?: number;
}

/** Newest first. */
export async function list(tx: Db, f: AnomalyFilter = {}): Promise<AnomalyRow[]> {
  const where: SQL[] = [];
  if (f.rule !== undefined) where.push(eq(anomaly.rule, f.rule));
  if (f.linkId !== undefined) where.push(eq(anomaly.linkId, f.linkId));
  if (f.status !== undefined) where.push(eq(anomaly.status, f.status));
  return tx
    .select()
    .from(anomaly)
    .where(where.length ? and(...where) : undefined)
    .orderBy(desc(anomaly.updatedAt), desc(anomaly.id))
    .limit(f.limit ?? 1000)
    .all();
}

/** The last usage-log seq the scan has looked at (0 before the first scan). */
export async function scannedThrough(tx: Db): Promise<number> {
  return tx.select().from(anomalyScan).where(eq(anomalyScan.id, 1)).get()?.lastSeq ?? 0;
}
export async function setScannedThrough(tx: Db, seq: number, at: string): Promise<void> {
  tx.insert(anomalyScan).values({ id: 1, lastSeq: seq, scannedAt: at }).onConflictDoUpdate({ target: anomalyScan.id, set: { lastSeq: seq, scannedAt: at } }).run();
}
