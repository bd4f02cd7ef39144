import { asc, eq, inArray, or, sql } from 'drizzle-orm';
import { type Db, perConnection } from '../index';
import { agency } from '../schema';

export type AgencyRow = typeof agency.$inferSelect;

export const byCode = async (tx: Db, code: string): Promise<AgencyRow | undefined> => tx.select().from(agency).where(eq(agency.code, code)).get();
const byIdQuery = perConnection((tx) => tx.select().from(agency).where(eq(agency.id, sql.placeholder('id'))).prepare());
export const byId = async (tx: Db, id: number): Promise<AgencyRow | undefined> => byIdQuery(tx).get({ id });
export async function byIds(tx: Db, ids: readonly number[]): Promise<AgencyRow[]> {
  if (ids.length === 0) return [];
  return tx.select().from(agency).where(inArray(agency.id, [...ids])).all();
}
/** These agencies and the sponsoring authorities of those that have one, in one statement. */
export async function withSponsors(tx: Db, ids: readonly number[]): Promise<AgencyRow[]> {
  if (ids.length === 0) return [];
  const sponsorsOf = tx.select({ id: agency.sponsorId }).from(agency).where(inArray(agency.id, [...ids]));
  return tx.select().from(agency).where(or(inArray(agency.id, [...ids]), inArray(agency.id, sponsorsOf))).all();
}
export const all = async (tx: Db): Promise<AgencyRow[]> => tx.select().from(agency).orderBy(asc(agency.code)).all();
export async function insert(tx: Db, row: Omit<AgencyRow, 'id'>): Promise<AgencyRow> {
  return tx.insert(agency).values(row).returning().get();
}
export async function update(tx: Db, id: number, values: Partial<Omit<AgencyRow, 'id'>>): Promise<void> {
  tx.update(agency).set(values).where(eq(agency.id, id)).run();
}
