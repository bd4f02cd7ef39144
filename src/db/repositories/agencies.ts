import { asc, eq, inArray, or, sql } from 'drizzle-orm';
import { type Db, perConnection } from '../index';
import type { agency } from '../schema';
import { allOf, getOf, isPg, runOf, tablesOf } from '../dialect';

export type AgencyRow = typeof agency.$inferSelect;

export const byCode = async (tx: Db, code: string): Promise<AgencyRow | undefined> => {
  const { agency } = tablesOf(tx);
  return getOf(tx.select().from(agency).where(eq(agency.code, code)));
};
const byIdQuery = perConnection((tx) => {
  const { agency } = tablesOf(tx);
  return tx.select().from(agency).where(eq(agency.id, sql.placeholder('id'))).prepare();
});
export async function byId(tx: Db, id: number): Promise<AgencyRow | undefined> {
  if (!isPg(tx)) return byIdQuery(tx).get({ id });
  const { agency } = tablesOf(tx);
  return getOf(tx.select().from(agency).where(eq(agency.id, id)));
}

export async function byIds(tx: Db, ids: readonly number[]): Promise<AgencyRow[]> {
  const { agency } = tablesOf(tx);
  if (ids.length === 0) return [];
  return allOf(tx.select().from(agency).where(inArray(agency.id, [...ids])));
}
/** These agencies and the sponsoring authorities of those that have one, in one statement. */
export async function withSponsors(tx: Db, ids: readonly number[]): Promise<AgencyRow[]> {
  const { agency } = tablesOf(tx);
  if (ids.length === 0) return [];
  const sponsorsOf = tx.select({ id: agency.sponsorId }).from(agency).where(inArray(agency.id, [...ids]));
  return allOf(tx.select().from(agency).where(or(inArray(agency.id, [...ids]), inArray(agency.id, sponsorsOf))));
}
export const all = async (tx: Db): Promise<AgencyRow[]> => {
  const { agency } = tablesOf(tx);
  return allOf(tx.select().from(agency).orderBy(asc(agency.code)));
};
export async function insert(tx: Db, row: Omit<AgencyRow, 'id'>): Promise<AgencyRow> {
  const { agency } = tablesOf(tx);
  return getOf(tx.insert(agency).values(row).returning());
}
export async function update(tx: Db, id: number, values: Partial<Omit<AgencyRow, 'id'>>): Promise<void> {
  const { agency } = tablesOf(tx);
  await runOf(tx.update(agency).set(values).where(eq(agency.id, id)));
}
