import { and, asc, desc, eq, inArray, max } from 'drizzle-orm';
import type { Db } from '../index';
import type { document } from '../schema';
import { allOf, getOf, tablesOf, type Tables } from '../dialect';

export type DocumentRow = typeof document.$inferSelect;

export async function latestVersion(tx: Db, agencyId: number, kind: string): Promise<number> {
  const { document } = tablesOf(tx);
  const r = await getOf(tx
    .select({ version: document.version })
    .from(document)
    .where(and(eq(document.agencyId, agencyId), eq(document.kind, kind)))
    .orderBy(desc(document.version))
    .limit(1));
  return r?.version ?? 0;
}
export const insert = async (tx: Db, row: Omit<DocumentRow, 'id'>): Promise<DocumentRow> => {
  const { document } = tablesOf(tx);
  return getOf(tx.insert(document).values(row).returning());
};
/** Every column but the content. */
const metaOf = (document: Tables['document']) => ({
  id: document.id,
  agencyId: document.agencyId,
  linkId: document.linkId,
  kind: document.kind,
  version: document.version,
  filename: document.filename,
  mediaType: document.mediaType,
  size: document.size,
  sha256: document.sha256,
  createdAt: document.createdAt,
});
export type DocumentMeta = Omit<DocumentRow, 'content'>;
export const meta = async (tx: Db, id: number): Promise<DocumentMeta | undefined> => {
  const { document } = tablesOf(tx);
  return getOf(tx.select(metaOf(document)).from(document).where(eq(document.id, id)));
};
export async function metas(tx: Db, ids: readonly number[]): Promise<DocumentMeta[]> {
  const { document } = tablesOf(tx);
  if (ids.length === 0) return [];
  return allOf(tx.select(metaOf(document)).from(document).where(inArray(document.id, [...ids])));
}
/** The newest document of a kind stored for each of these links (links with none are absent). */
export async function newestOfLinks(tx: Db, linkIds: readonly number[], kind: string): Promise<DocumentMeta[]> {
  const { document } = tablesOf(tx);
  if (linkIds.length === 0) return [];
  const newest = tx
    .select({ id: max(document.id) })
    .from(document)
    .where(and(inArray(document.linkId, [...linkIds]), eq(document.kind, kind)))
    .groupBy(document.linkId);
  return allOf(tx.select(metaOf(document)).from(document).where(inArray(document.id, newest)));
}
export const byId = async (tx: Db, id: number): Promise<DocumentRow | undefined> => {
  const { document } = tablesOf(tx);
  return getOf(tx.select().from(document).where(eq(document.id, id)));
};
/** Documents' metadata (no content), newest version first, for an agency and optionally one link. */
export async function listMeta(tx: Db, opts: { agencyId?: number; linkId?: number; kind?: string } = {}): Promise<DocumentMeta[]> {
  const { document } = tablesOf(tx);
  const conds = [
    opts.agencyId !== undefined ? eq(document.agencyId, opts.agencyId) : undefined,
    opts.linkId !== undefined ? eq(document.linkId, opts.linkId) : undefined,
    opts.kind !== undefined ? eq(document.kind, opts.kind) : undefined,
  ].filter((c) => c !== undefined);
  return allOf(tx.select(metaOf(document)).from(document).where(conds.length ? and(...conds) : undefined).orderBy(asc(document.agencyId), desc(document.version)));
}
