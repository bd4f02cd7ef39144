import { and, desc, eq, type SQL } from 'drizzle-orm';
import type { Db } from '../index';
import type { anomaly, anomalyScan } from '../schema';
import { allOf, getOf, runOf, tablesOf } from '../dialect';

export type AnomalyRow = typeof anomaly.$inferSelect;

export const byKey = async (tx: Db, key: string): Promise<AnomalyRow | undefined> => {
  const { anomaly } = tablesOf(tx);
  return getOf(tx.select().from(anomaly).where(eq(anomaly.key, key)));
};
export const insert = async (tx: Db, row: Omit<AnomalyRow, 'id'>): Promise<AnomalyRow> => {
  const { anomaly } = tablesOf(tx);
  return getOf(tx.insert(anomaly).values(row).returning());
};
export async function update(tx: Db, id: number, values: Partial<Omit<AnomalyRow, 'id' | 'key'>>): Promise<void> {
  const { anomaly } = tablesOf(tx);
  await runOf(tx.update(anomaly).set(values).where(eq(anomaly.id, id)));
}

export interface AnomalyFilter {
  rule?: string;
  linkId?: number;
  status?: AnomalyRow['status'];
  limit?: number;
}

/** Newest first. */
export async function list(tx: Db, f: AnomalyFilter = {}): Promise<AnomalyRow[]> {
  const { anomaly } = tablesOf(tx);
  const where: SQL[] = [];
  if (f.rule !== undefined) where.push(eq(anomaly.rule, f.rule));
  if (f.linkId !== undefined) where.push(eq(anomaly.linkId, f.linkId));
  if (f.status !== undefined) where.push(eq(anomaly.status, f.status));
  return allOf(tx
    .select()
    .from(anomaly)
    .where(where.length ? and(...where) : undefined)
    .orderBy(desc(anomaly.updatedAt), desc(anomaly.id))
    .limit(f.limit ?? 1000));
}

/** The last usage-log seq the scan has looked at (0 before the first scan). */
export async function scannedThrough(tx: Db): Promise<number> {
  const { anomalyScan } = tablesOf(tx);
  return (await getOf(tx.select().from(anomalyScan).where(eq(anomalyScan.id, 1))))?.lastSeq ?? 0;
}
export async function setScannedThrough(tx: Db, seq: number, at: string): Promise<void> {
  const { anomalyScan } = tablesOf(tx);
  await runOf(tx.insert(anomalyScan).values({ id: 1, lastSeq: seq, scannedAt: at }).onConflictDoUpdate({ target: anomalyScan.id, set: { lastSeq: seq, scannedAt: at } }));
}
