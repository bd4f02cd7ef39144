import { and, asc, desc, eq, inArray, isNotNull, lte } from 'drizzle-orm';
import type { Db } from '../index';
import type { delivery } from '../schema';
import { allOf, getOf, runOf, tablesOf } from '../dialect';

export type DeliveryRow = typeof delivery.$inferSelect;

export const byId = async (tx: Db, id: number): Promise<DeliveryRow | undefined> => {
  const { delivery } = tablesOf(tx);
  return getOf(tx.select().from(delivery).where(eq(delivery.id, id)));
};
export const byKey = async (tx: Db, key: string): Promise<DeliveryRow | undefined> => {
  const { delivery } = tablesOf(tx);
  return getOf(tx.select().from(delivery).where(eq(delivery.idempotencyKey, key)));
};
/** `attempt`: the job attempt that owns a delivery it is building (see ExtractService.run); none for a file made in one step. */
export const insert = async (tx: Db, row: Omit<DeliveryRow, 'id' | 'attempt'> & { attempt?: string | null }): Promise<DeliveryRow> => {
  const { delivery } = tablesOf(tx);
  return getOf(tx.insert(delivery).values(row).returning());
};
export async function update(tx: Db, id: number, values: Partial<Omit<DeliveryRow, 'id'>>): Promise<void> {
  const { delivery } = tablesOf(tx);
  await runOf(tx.update(delivery).set(values).where(eq(delivery.id, id)));
}
export async function list(tx: Db, linkId?: number, limit = 1000): Promise<DeliveryRow[]> {
  const { delivery } = tablesOf(tx);
  return allOf(tx.select().from(delivery).where(linkId !== undefined ? eq(delivery.linkId, linkId) : undefined).orderBy(desc(delivery.id)).limit(limit));
}
/** The link's latest successful delivery (its file may since have been purged): the next increment starts after it. */
export async function lastBuilt(tx: Db, linkId: number): Promise<DeliveryRow | undefined> {
  const { delivery } = tablesOf(tx);
  return getOf(tx
    .select()
    .from(delivery)
    .where(and(eq(delivery.linkId, linkId), inArray(delivery.status, ['built', 'purged']), isNotNull(delivery.watermarkTo)))
    .orderBy(desc(delivery.id))
    .limit(1));
}
/** Built files whose time is up. */
export async function expired(tx: Db, nowIso: string): Promise<DeliveryRow[]> {
  const { delivery } = tablesOf(tx);
  return allOf(tx.select().from(delivery).where(and(eq(delivery.status, 'built'), lte(delivery.expiresAt, nowIso))).orderBy(asc(delivery.id)));
}
export async function builtForLink(tx: Db, linkId: number): Promise<DeliveryRow[]> {
  const { delivery } = tablesOf(tx);
  return allOf(tx.select().from(delivery).where(and(eq(delivery.linkId, linkId), eq(delivery.status, 'built'))).orderBy(asc(delivery.id)));
}

/** Record one channel's outcome on a delivery (read-modify-write inside the caller's write transaction). */
export async function setChannel(tx: Db, id: number, channel: string, outcome: Record<string, unknown>): Promise<void> {
  const { delivery } = tablesOf(tx);
  const row = await byId(tx, id);
  if (!row) throw new Error(`delivery ${id} does not exist`);
  const prev = (row.channels[channel] ?? {}) as Record<string, unknown>;
  await update(tx, id, { channels: { ...row.channels, [channel]: { ...prev, ...outcome } } });
}

/**
 * Take the delivery of `key` for the job attempt `attempt`: make it, or take over one that an
 * earlier attempt left unfinished (that attempt may publish nothing from now on). A delivery that
 * is finished already (built or purged) is returned as `done` and not touched.
 */
/** What a new delivery is: the rest (file, hashes, times, channels) is filled in when it is built. */
export type NewDelivery = Pick<DeliveryRow, 'linkId' | 'revision' | 'trigger' | 'mode' | 'dataset' | 'fields' | 'createdAt'>;

export async function claim(tx: Db, key: string, attempt: string, fresh: () => NewDelivery): Promise<{ done: DeliveryRow } | { row: DeliveryRow }> {
  const existing = await byKey(tx, key);
  if (existing) {
    if (existing.status === 'built' || existing.status === 'purged') return { done: existing };
    await update(tx, existing.id, { status: 'building', error: null, attempt });
    return { row: { ...existing, status: 'building', error: null, attempt } };
  }
  // Watermarks too stay null until an extract is built: a batch answer or usage records never start an increment.
  const unbuilt = { rows: null, fileName: null, bytes: null, plainSha256: null, cipherSha256: null, manifestSha256: null, watermarkFrom: null, watermarkTo: null, builtAt: null, durationMs: null, expiresAt: null, purgedAt: null, error: null, channels: {} };
  return { row: await insert(tx, { ...unbuilt, ...fresh(), idempotencyKey: key, status: 'building', attempt }) };
}

/** Does `attempt` still own the unfinished delivery `id`? Asked by the transaction that publishes it. */
export async function owns(tx: Db, id: number, attempt: string): Promise<boolean> {
  const row = await byId(tx, id);
  return row?.status === 'building' && row.attempt === attempt;
}
