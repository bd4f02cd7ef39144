import { and, desc, eq, gte, like, lt, type SQL, sql } from 'drizzle-orm';
import type { Db } from '../index';
import type { anomaly, delivery, usageLog } from '../schema';
import type { UsageLogRow } from './usageLog';
import { allOf, getOf, isPg, rawAll, tablesOf } from '../dialect';

/** Read-only queries of the operator console: usage-log search pages and the figures of /metrics. */

export interface LogSearch {
  linkId?: number;
  agency?: string;
  /** An exact type, or a prefix ending in `*` (`auth.*`). */
  type?: string;
  actor?: string;
  fromAt?: string;
  toAt?: string;
  /** Keyset paging: only records older than this seq. */
  beforeSeq?: number;
  limit: number;
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => '\\' + c);

/** Newest first; one more row than `limit` is read to say whether an older page exists. */
export async function searchLog(tx: Db, f: LogSearch): Promise<{ rows: UsageLogRow[]; more: boolean }> {
  const { usageLog } = tablesOf(tx);
  const where: SQL[] = [];
  if (f.linkId !== undefined) where.push(eq(usageLog.linkId, f.linkId));
  if (f.agency !== undefined) where.push(eq(usageLog.agency, f.agency));
  if (f.type !== undefined) where.push(f.type.endsWith('*') ? like(usageLog.type, escapeLike(f.type.slice(0, -1)) + '%') : eq(usageLog.type, f.type));
  if (f.actor !== undefined) where.push(eq(usageLog.actor, f.actor));
  if (f.fromAt !== undefined) where.push(gte(usageLog.at, f.fromAt));
  if (f.toAt !== undefined) where.push(lt(usageLog.at, f.toAt));
  if (f.beforeSeq !== undefined) where.push(lt(usageLog.seq, f.beforeSeq));
  const rows = await allOf(tx
    .select()
    .from(usageLog)
    .where(where.length ? and(...where) : undefined)
    .orderBy(desc(usageLog.seq))
    .limit(f.limit + 1));
  return { rows: rows.slice(0, f.limit), more: rows.length > f.limit };
}

/** The distinct event types present (the filter's choices). */
export const logTypes = async (tx: Db): Promise<string[]> => {
  const { usageLog } = tablesOf(tx);
  return (await allOf(tx.selectDistinct({ type: usageLog.type }).from(usageLog).orderBy(usageLog.type))).map((r) => r.type);
};

/** How many records of one type there are, by channel (auth failures for /metrics; the type index makes it cheap). */
export async function countByChannel(tx: Db, type: string): Promise<{ channel: string | null; n: number }[]> {
  const { usageLog } = tablesOf(tx);
  return allOf(tx
    .select({ channel: usageLog.channel, n: sql<number>`count(*)`.mapWith(Number) })
    .from(usageLog)
    .where(eq(usageLog.type, type))
    .groupBy(usageLog.channel));
}

/** Records of these types since `fromAt`: (actor, ip) pairs seen, for the SFTP session estimate. */
export async function actorsSince(tx: Db, types: readonly string[], channel: string, fromAt: string): Promise<number> {
  const { usageLog } = tablesOf(tx);
  const r = await getOf(tx
    .select({ n: sql<number>`count(DISTINCT coalesce(${usageLog.actor}, '') || '|' || coalesce(${usageLog.ip}, ''))`.mapWith(Number) })
    .from(usageLog)
    .where(and(sql`${usageLog.type} IN ${types}`, eq(usageLog.channel, channel), gte(usageLog.at, fromAt))));
  return r?.n ?? 0;
}

export interface DeliveryTotals {
  status: string;
  n: number;
  rows: number;
  bytes: number;
}

/** Deliveries by status with their rows and bytes, optionally only those created since `fromAt`. */
export async function deliveryTotals(tx: Db, fromAt?: string): Promise<DeliveryTotals[]> {
  const { delivery } = tablesOf(tx);
  return allOf(tx
    .select({ status: delivery.status, n: sql<number>`count(*)`.mapWith(Number), rows: sql<number>`coalesce(sum(${delivery.rows}), 0)`.mapWith(Number), bytes: sql<number>`coalesce(sum(${delivery.bytes}), 0)`.mapWith(Number) })
    .from(delivery)
    .where(fromAt !== undefined ? gte(delivery.createdAt, fromAt) : undefined)
    .groupBy(delivery.status));
}

/** Push outcomes by channel and status, read from every delivery's channels (optionally since `fromAt`). */
export async function pushOutcomes(tx: Db, fromAt?: string): Promise<{ channel: string; status: string; n: number }[]> {
  const { delivery } = tablesOf(tx);
  const since = fromAt !== undefined ? sql`WHERE ${delivery.createdAt} >= ${fromAt}` : sql``;
  return rawAll<{ channel: string; status: string; n: number }>(
    tx,
    isPg(tx)
      ? sql`SELECT j.key AS channel, coalesce(j.value ->> 'status', 'unknown') AS status, count(*) AS n
            FROM ${delivery}, jsonb_each(${delivery.channels}::jsonb) AS j ${since} GROUP BY 1, 2`
      : sql`SELECT j.key AS channel, coalesce(json_extract(j.value, '$.status'), 'unknown') AS status, count(*) AS n
            FROM ${delivery}, json_each(${delivery.channels}) AS j ${since} GROUP BY 1, 2`,
    ['n'],
  );
}

/** Anomalies still open (neither dismissed nor turned into a finding). */
export const openAnomalies = async (tx: Db): Promise<number> => {
  const { anomaly } = tablesOf(tx);
  return (await getOf(tx.select({ n: sql<number>`count(*)`.mapWith(Number) }).from(anomaly).where(eq(anomaly.status, 'open'))))?.n ?? 0;
};
