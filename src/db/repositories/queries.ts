import { sql } from 'drizzle-orm';
import type { Db } from '../index';

/** Links whose current revision registers this client-certificate fingerprint (online query, R2.1). */
export function linksForClientCert(tx: Db, fingerprint: string): number[] {
  const rows = tx.all<{ id: number }>(
    sql`SELECT l.id AS id FROM link l JOIN link_revision r ON r.link_id = l.id AND r.number = l.current_revision
        WHERE EXISTS (SELECT 1 FROM json_each(r.content, '$.clientCerts') j WHERE j.value = ${fingerprint}) ORDER BY l.id`,
  );
  return rows.map((r) => r.id);
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

/** Online-query records that looked up an id with this keyed hash ("who looked up this person, when, and why"). */
export function whoQueried(tx: Db, idHash: string): QueryRecord[] {
  return tx.all<QueryRecord>(
    sql`SELECT seq, at, type, agency, link_id AS linkId, ip, detail FROM usage_log
        WHERE type LIKE 'query.%' AND EXISTS (SELECT 1 FROM json_each(detail, '$.idHashes') j WHERE j.value = ${idHash}) ORDER BY seq`,
  );
}
