import type { Db } from '../db';
import { downloads } from '../db/repositories';

export interface Download {
  at: string;
  account: string | null;
  ip: string | null;
  file: string | null;
  bytes: number;
  result: 'complete' | 'resumed' | 'partial';
}

/** Who fetched a delivery's files over SFTP, and when: its `file.downloaded` records. */
export async function downloadsOf(db: Db, delivery: { id: number; link: number }): Promise<Download[]> {
  return (await downloads.ofDelivery(db, delivery.link, delivery.id)).map((r) => {
    const d = JSON.parse(r.detail) as { bytes: number; result: Download['result'] };
    return { at: r.at, account: r.actor, ip: r.ip, file: r.object, bytes: d.bytes, result: d.result };
  });
}
