import { and, asc, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../index';
import type { vendor } from '../schema';
import { allOf, getOf, rawAll, runOf, tablesOf } from '../dialect';

export type VendorRow = typeof vendor.$inferSelect;

export const insert = async (tx: Db, row: Omit<VendorRow, 'id'>): Promise<VendorRow> => {
  const { vendor } = tablesOf(tx);
  return getOf(tx.insert(vendor).values(row).returning());
};
export const byId = async (tx: Db, id: number): Promise<VendorRow | undefined> => {
  const { vendor } = tablesOf(tx);
  return getOf(tx.select().from(vendor).where(eq(vendor.id, id)));
};
export async function update(tx: Db, id: number, values: Partial<Omit<VendorRow, 'id'>>): Promise<void> {
  const { vendor } = tablesOf(tx);
  await runOf(tx.update(vendor).set(values).where(eq(vendor.id, id)));
}

/** A link's vendors, the removed ones too when asked (history stays). */
export async function forLink(tx: Db, linkId: number, opts: { removed?: boolean } = {}): Promise<VendorRow[]> {
  const { vendor } = tablesOf(tx);
  const where = opts.removed ? eq(vendor.linkId, linkId) : and(eq(vendor.linkId, linkId), isNull(vendor.removedAt));
  return allOf(tx.select().from(vendor).where(where).orderBy(asc(vendor.id)));
}

/** The current vendors of several links, in one statement, oldest first. */
export async function forLinks(tx: Db, linkIds: readonly number[]): Promise<VendorRow[]> {
  const { vendor } = tablesOf(tx);
  if (linkIds.length === 0) return [];
  return allOf(tx.select().from(vendor).where(and(inArray(vendor.linkId, [...linkIds]), isNull(vendor.removedAt))).orderBy(asc(vendor.id)));
}
export async function byIds(tx: Db, ids: readonly number[]): Promise<VendorRow[]> {
  const { vendor } = tablesOf(tx);
  if (ids.length === 0) return [];
  return allOf(tx.select().from(vendor).where(inArray(vendor.id, [...ids])));
}

export async function list(tx: Db, opts: { removed?: boolean } = {}): Promise<VendorRow[]> {
  const { vendor } = tablesOf(tx);
  return allOf(tx.select().from(vendor).where(opts.removed ? undefined : isNull(vendor.removedAt)).orderBy(asc(vendor.id)));
}

/**
 * When the link's allow-list was last set by a revision NIA approved for it: the application's
 * revision, or the newest revision (up to `current`) made by an `ips` change. A vendor removed after
 * that is cut off (R8.2); a list NIA approved after the removal is the list again.
 */
export async function allowListSetAt(tx: Db, linkId: number, current: number): Promise<string | null> {
  const [row] = await rawAll<{ at: string | null }>(
    tx,
    sql`SELECT max(r.created_at) AS at FROM link_revision r LEFT JOIN change_request c ON c.id = r.change_request_id
        WHERE r.link_id = ${linkId} AND r.number <= ${current} AND (r.number = 1 OR c.kind = 'ips')`,
  );
  return row?.at ?? null;
}
