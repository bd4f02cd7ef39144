import type { ControlDb } from '../db';
import { inbox } from '../db/repositories';

/** One upload to /inbox and what became of it, as `batch list` and the console show it. */
export interface BatchListItem {
  id: number;
  link: number;
  name: string;
  kind: string;
  account: string;
  receivedAt: string;
  bytes: number;
  sha256: string;
  state: string;
  code: string | null;
  outcomeAt: string | null;
  reference: string | null;
  ids: number | null;
  matched: number | null;
  rows: number | null;
  file: string | null;
}

const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export async function batchList(cdb: ControlDb, linkId?: number): Promise<BatchListItem[]> {
  return (await inbox.uploadsOf(cdb.db, { linkId })).map((u) => {
    const o = u.outcome ?? {};
    return {
      id: u.id,
      link: u.linkId,
      name: u.name,
      kind: u.kind,
      account: u.account,
      receivedAt: u.receivedAt,
      bytes: u.bytes,
      sha256: u.sha256,
      state: u.state,
      code: u.outcomeCode,
      outcomeAt: u.state === 'pending' || u.state === 'processing' ? null : u.outcomeAt,
      reference: str(o.reference),
      ids: num(o.valid) ?? num(o.count),
      matched: num(o.matched),
      rows: num(o.rows),
      file: str(o.file),
    };
  });
}
