import { asc, desc, eq, inArray, max } from 'drizzle-orm';
import type { Db } from '../index';
import { rulesReview } from '../schema';

export type RulesReviewRow = typeof rulesReview.$inferSelect;

export const insert = async (tx: Db, row: Omit<RulesReviewRow, 'id'>): Promise<RulesReviewRow> => tx.insert(rulesReview).values(row).returning().get();

/** The review in force for a document: the newest one supersedes the earlier ones. */
export const latest = async (tx: Db, documentId: number): Promise<RulesReviewRow | undefined> =>
  tx.select().from(rulesReview).where(eq(rulesReview.documentId, documentId)).orderBy(desc(rulesReview.id)).limit(1).get();

/** The review in force for each of these documents (documents never reviewed are absent). */
export async function latestOf(tx: Db, documentIds: readonly number[]): Promise<RulesReviewRow[]> {
  if (documentIds.length === 0) return [];
  const newest = tx.select({ id: max(rulesReview.id) }).from(rulesReview).where(inArray(rulesReview.documentId, [...documentIds])).groupBy(rulesReview.documentId);
  return tx.select().from(rulesReview).where(inArray(rulesReview.id, newest)).all();
}

export const forDocument = async (tx: Db, documentId: number): Promise<RulesReviewRow[]> =>
  tx.select().from(rulesReview).where(eq(rulesReview.documentId, documentId)).orderBy(asc(rulesReview.id)).all();
