import { asc, eq, inArray, or, sql } from 'drizzle-orm';
import { type Db, perConnection } from '../index';
import { agency } from '../schema';

export type AgencyRow = typeof agency.$inferSelect;

export const byCode = (tx: Db, code: string): AgencyRow | undefined => tx.select().from(agency).where(eq(agency.code, code)).get();
const byIdQuery = perConnection((tx) => tx.select().from(agency).where(eq(agency.id, sql.placeholder('id'))).prepare());
export const byId = (tx: Db, id: number): AgencyRow | undefined => byIdQuery(tx).get({ id });
export function byIds(tx: Db, ids: readonly number[]): AgencyRow[] {
  if (ids.length === 0) return [];
  return tx.select().from(agency).where(inArray(agency.id, [...ids])).all();
}
/** These agencies and the sponsoring authorities of those that have one, in one statement. */
export function withSponsors(tx: Db, ids: readonly number[]): AgencyRow[] {
  if (ids.length === 0) return [];
  const sponsorsOf = tx.select({ id: agency.sponsorId }).from(agency).where(inArray(agency.id, [...ids]));
  return tx.select().from(agency).where(or(inArray(agency.id, [...ids]), inArray(agency.id, sponsorsOf))).all();
}
export const all = (tx: Db): AgencyRow[] => tx.select().from(agency).orderBy(asc(agency.code)).all();
export function insert(tx: Db, row: Omit<AgencyRow, 'id'>): AgencyRow {
  return tx.insert(agency).values(row).returning().get();
}
export function update(tx: Db, id: number, values: Partial<Omit<AgencyRow, 'id'>>): void {
  tx.update(agency).set(values).where(eq(agency.id, id)).run();
}
