import { and, asc, eq, sql } from 'drizzle-orm';
import type { Db } from '../index';
import type { usageLog } from '../schema';
import type { UsageLogRow } from './usageLog';
import { allOf, isPg, tablesOf } from '../dialect';

/** The usage-log records of the SFTP downloads of one delivery's files (`file.downloaded`, detail.delivery). */
export async function ofDelivery(tx: Db, linkId: number, deliveryId: number): Promise<UsageLogRow[]> {
  const { usageLog } = tablesOf(tx);
  return allOf(tx
    .select()
    .from(usageLog)
    .where(and(eq(usageLog.linkId, linkId), eq(usageLog.type, 'file.downloaded'), isPg(tx) ? sql`(${usageLog.detail}::jsonb -> 'delivery') = to_jsonb(${deliveryId}::bigint)` : sql`json_extract(${usageLog.detail}, '$.delivery') = ${deliveryId}`))
    .orderBy(asc(usageLog.seq)));
}
