import { asc, desc } from 'drizzle-orm';
import type { Db } from '../index';
import type { logArchive } from '../schema';
import { allOf, getOf, tablesOf } from '../dialect';

export type ArchiveRow = typeof logArchive.$inferSelect;

export const insert = async (tx: Db, row: Omit<ArchiveRow, 'id'>): Promise<ArchiveRow> => {
  const { logArchive } = tablesOf(tx);
  return getOf(tx.insert(logArchive).values(row).returning());
};
/** Every archive anchor, oldest first. */
export const all = async (tx: Db): Promise<ArchiveRow[]> => {
  const { logArchive } = tablesOf(tx);
  return allOf(tx.select().from(logArchive).orderBy(asc(logArchive.toSeq)));
};
export const newest = async (tx: Db): Promise<ArchiveRow | undefined> => {
  const { logArchive } = tablesOf(tx);
  return getOf(tx.select().from(logArchive).orderBy(desc(logArchive.toSeq)).limit(1));
};
