import { and, asc, eq, isNull } from 'drizzle-orm';
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

export function list(tx: Db, opts: { removed?: boolean } = {}): VendorRow[] {
  return tx.select().from(vendor).where(opts.removed ? undefined : isNull(vendor.removedAt)).orderBy(asc(vendor.id)).all();
}
