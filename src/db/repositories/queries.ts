import { sql } from 'drizzle-orm';
import { isPg, rawAll } from '../dialect';
import { connectionOf, type Db, perConnection } from '../index';

/** Links whose current revision registers this client-certificate fingerprint (online query, R2.1). */
const linksForCert = perConnection((tx) =>
  connectionOf(tx)
    .prepare(
      `SELECT l.id FROM link l JOIN link_revision r ON r.link_id = l.id AND r.number = l.current_revision
       WHERE EXISTS (SELECT 1 FROM json_each(r.content, '$.clientCerts') j WHERE j.value = ?) ORDER BY l.id`,
    )
    .pluck(),
);
export async function linksForClientCert(tx: Db, fingerprint: string): Promise<number[]> {
  if (!isPg(tx)) return linksForCert(tx).all(fingerprint) as number[];
  const rows = await rawAll<{ id: number }>(
    tx,
    sql`SELECT l.id FROM link l JOIN link_revision r ON r.link_id = l.id AND r.number = l.current_revision
        WHERE (r.content::jsonb -> 'clientCerts') ? ${fingerprint} ORDER BY l.id`,
  );
  return rows.map((r) => r.id);
}

const versionStmt = perConnection((tx) => connectionOf(tx).prepare('SELECT version FROM registry_version WHERE id = 1').pluck());
/** Moves whenever a link or agency row changes (triggers, migration 0010), whoever changed it. */
export async function registryVersion(tx: Db): Promise<number> {
  if (!isPg(tx)) return versionStmt(tx).get() as number;
  const [r] = await rawAll<{ version: number }>(tx, sql`SELECT version FROM registry_version WHERE id = 1`, ['version']);
  return r.version;
}

export interface QueryRecord {
  seq: number;
  at: string;
  type: string;
  agency: string | null;
  linkId: number | null;
  ip: string | null;
  detail: string;
}

/**
 * Records that looked up an id with this keyed hash ("who looked up this person, when, and why"):
 * online queries, batch requests and the subject lists that named the person.
 */
export async function whoQueried(tx: Db, idHash: string): Promise<QueryRecord[]> {
  const named = isPg(tx) ? sql`(detail::jsonb -> 'idHashes') ? ${idHash}` : sql`EXISTS (SELECT 1 FROM json_each(detail, '$.idHashes') j WHERE j.value = ${idHash})`;
  return rawAll<QueryRecord>(
    tx,
    sql`SELECT seq, at, type, agency, link_id AS "linkId", ip, detail FROM usage_log
        WHERE (type LIKE 'query.%' OR type IN ('batch.received', 'subjects.in-force')) AND ${named} ORDER BY seq`,
    ['seq'],
  );
}

const changeStmt = perConnection((tx) => connectionOf(tx).prepare("SELECT (SELECT data_version FROM pragma_data_version()) || ':' || total_changes()").pluck());
/**
 * Changes whenever anything was committed to the control database, by another connection
 * (data_version) or by this one (total_changes): while it stands still, nothing read from it can have
 * changed. About 10 µs.
 */
export async function dataChangeToken(tx: Db): Promise<string> {
  if (!isPg(tx)) return changeStmt(tx).get() as string;
  // The write-ahead log's insert position moves with every commit to the server, before it is visible.
  const [r] = await rawAll<{ lsn: string }>(tx, sql`SELECT pg_current_wal_insert_lsn()::text AS lsn`);
  return r.lsn;
}
