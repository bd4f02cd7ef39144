import { and, asc, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../index';
import { vendor } from '../schema';

export type VendorRow = typeof vendor.$inferSelect;

export const insert = (tx: Db, row: Omit<VendorRow, 'id'>): VendorRow => tx.insert(vendor).values(row).returning().get();
export const byId = (tx: Db, id: number): VendorRow | undefined => tx.select().from(vendor).where(eq(vendor.id, id)).get();
export function update(tx: Db, id: number, values: Partial<Omit<VendorRow, 'id'>>): void {
  tx.update(vendor).set(values).where(eq(vendor.id, id)).run();
}

/** A link's vendors, the removed ones too when asked (history stays). */
export function forLink(tx: Db, linkId: number, opts: { removed?: boolean } = {}): VendorRow[] {
  const where = opts.removed ? eq(vendor.linkId, linkId) : and(eq(vendor.linkId, linkId), isNull(vendor.removedAt));
  return tx.select().from(vendor).where(where).orderBy(asc(vendor.id)).all();
}

/** The current vendors of several links, in one statement, oldest first. */
export function forLinks(tx: Db, linkIds: readonly number[]): VendorRow[] {
  if (linkIds.length === 0) return [];
  return tx.select().from(vendor).where(and(inArray(vendor.linkId, [...linkIds]), isNull(vendor.removedAt))).orderBy(asc(vendor.id)).all();
}
export function byIds(tx: Db, ids: readonly number[]): VendorRow[] {
  if (ids.length === 0) return [];
  return tx.select().from(vendor).where(inArray(vendor.id, [...ids])).all();
}

export function list(tx: Db, opts: { removed?: boolean } = {}): VendorRow[] {
  return tx.select().from(vendor).where(opts.removed ? undefined : isNull(vendor.removedAt)).orderBy(asc(vendor.id)).all();
}

/**
 * When the link's allow-list was last set by a revision NIA approved for it: the application's
 * revision, or the newest revision (up to `current`) made by an `ips` change. A vendor removed after
 * that is cut off (R8.2); a list NIA approved after the removal is the list again.
 */
export function allowListSetAt(tx: Db, linkId: number, current: number): string | null {
  const row = tx.get<{ at: string | null }>(
    sql`SELECT max(r.created_at) AS at FROM link_revision r LEFT JOIN change_request c ON c.id = r.change_request_id
        WHERE r.link_id = ${linkId} AND r.number <= ${current} AND (r.number = 1 OR c.kind = 'ips')`,
  );
  return row?.at ?? null;
}
