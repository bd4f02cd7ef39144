import { and, desc, eq, type SQL } from 'drizzle-orm';
import type { Db } from '../index';
import { anomaly, anomalyScan } from '../schema';

export type AnomalyRow = typeof anomaly.$inferSelect;

export const byKey = (tx: Db, key: string): AnomalyRow | undefined => tx.select().from(anomaly).where(eq(anomaly.key, key)).get();
export const insert = (tx: Db, row: Omit<AnomalyRow, 'id'>): AnomalyRow => tx.insert(anomaly).values(row).returning().get();
export function update(tx: Db, id: number, values: Partial<Omit<AnomalyRow, 'id' | 'key'>>): void {
  tx.update(anomaly).set(values).where(eq(anomaly.id, id)).run();
}

export interface AnomalyFilter {
  rule?: string;
  linkId?: number;
  status?: AnomalyRow['status'];
  limit?: number;
}

/** Newest first. */
export function list(tx: Db, f: AnomalyFilter = {}): AnomalyRow[] {
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
export function scannedThrough(tx: Db): number {
  return tx.select().from(anomalyScan).where(eq(anomalyScan.id, 1)).get()?.lastSeq ?? 0;
}
export function setScannedThrough(tx: Db, seq: number, at: string): void {
  tx.insert(anomalyScan).values({ id: 1, lastSeq: seq, scannedAt: at }).onConflictDoUpdate({ target: anomalyScan.id, set: { lastSeq: seq, scannedAt: at } }).run();
}
