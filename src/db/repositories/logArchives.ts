import { asc, desc } from 'drizzle-orm';
import type { Db } from '../index';
import { logArchive } from '../schema';

export type ArchiveRow = typeof logArchive.$inferSelect;

export const insert = async (tx: Db, row: Omit<ArchiveRow, 'id'>): Promise<ArchiveRow> => tx.insert(logArchive).values(row).returning().get();
/** Every archive anchor, oldest first. */
export const all = async (tx: Db): Promise<ArchiveRow[]> => tx.select().from(logArchive).orderBy(asc(logArchive.toSeq)).all();
export const newest = async (tx: Db): Promise<ArchiveRow | undefined> => tx.select().from(logArchive).orderBy(desc(logArchive.toSeq)).limit(1).get();
