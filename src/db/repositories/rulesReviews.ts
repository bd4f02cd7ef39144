import { asc, desc, eq, inArray, max } from 'drizzle-orm';
import type { Db } from '../index';
import type { rulesReview } from '../schema';
import { allOf, getOf, tablesOf } from '../dialect';

export type RulesReviewRow = typeof rulesReview.$inferSelect;

export const insert = async (tx: Db, row: Omit<RulesReviewRow, 'id'>): Promise<RulesReviewRow> => {
  const { rulesReview } = tablesOf(tx);
  return getOf(tx.insert(rulesReview).values(row).returning());
};

/** The review in force for a document: the newest one supersedes the earlier ones. */
export const latest = async (tx: Db, documentId: number): Promise<RulesReviewRow | undefined> =>
  {
  const { rulesReview } = tablesOf(tx);
  return await getOf(tx.select().from(rulesReview).where(eq(rulesReview.documentId, documentId)).orderBy(desc(rulesReview.id)).limit(1));
};

/** The review in force for each of these documents (documents never reviewed are absent). */
export async function latestOf(tx: Db, documentIds: readonly number[]): Promise<RulesReviewRow[]> {
  const { rulesReview } = tablesOf(tx);
  if (documentIds.length === 0) return [];
  const newest = tx.select({ id: max(rulesReview.id) }).from(rulesReview).where(inArray(rulesReview.documentId, [...documentIds])).groupBy(rulesReview.documentId);
  return allOf(tx.select().from(rulesReview).where(inArray(rulesReview.id, newest)));
}

export const forDocument = async (tx: Db, documentId: number): Promise<RulesReviewRow[]> =>
  {
  const { rulesReview } = tablesOf(tx);
  return await allOf(tx.select().from(rulesReview).where(eq(rulesReview.documentId, documentId)).orderBy(asc(rulesReview.id)));
};
