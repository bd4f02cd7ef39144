import { asc, eq } from 'drizzle-orm';
import type { Db } from '../index';
import { agency } from '../schema';

export type AgencyRow = typeof agency.$inferSelect;

export const byCode = (tx: Db, code: string): AgencyRow | undefined => tx.select().from(agency).where(eq(agency.code, code)).get();
export const byId = (tx: Db, id: number): AgencyRow | undefined => tx.select().from(agency).where(eq(agency.id, id)).get();
export const all = (tx: Db): AgencyRow[] => tx.select().from(agency).orderBy(asc(agency.code)).all();
export function insert(tx: Db, row: Omit<AgencyRow, 'id'>): AgencyRow {
  return tx.insert(agency).values(row).returning().get();
}
