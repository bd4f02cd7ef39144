import { and, eq, gt, inArray } from 'drizzle-orm';
import type { Db } from '../index';
import type { subjectEntry, subjectList } from '../schema';
import { allOf, getOf, runOf, tablesOf } from '../dialect';

export type SubjectListRow = typeof subjectList.$inferSelect;

/** The link's subject list in force (size, key, hash, date), or undefined when it has none. */
export const subjectListOf = async (db: Db, linkId: number): Promise<SubjectListRow | undefined> => {
  const { subjectList } = tablesOf(db);
  return getOf(db.select().from(subjectList).where(eq(subjectList.linkId, linkId)));
};

/** The identifiers on the link's current list. */
export async function subjectIds(db: Db, linkId: number): Promise<string[]> {
  const { subjectEntry } = tablesOf(db);
  return (await allOf(db.select({ id: subjectEntry.id }).from(subjectEntry).where(eq(subjectEntry.linkId, linkId)))).map((r) => r.id);
}

/** Which of `ids` are on the link's current list (the online query asks only for those). */
export async function subjectsAmong(db: Db, linkId: number, ids: readonly string[]): Promise<string[]> {
  const { subjectEntry } = tablesOf(db);
  if (ids.length === 0) return [];
  return (await allOf(db
    .select({ id: subjectEntry.id })
    .from(subjectEntry)
    .where(and(eq(subjectEntry.linkId, linkId), inArray(subjectEntry.id, [...ids])))))
    .map((r) => r.id);
}

/** The persons who came onto the link's list after `sinceIso`. */
export async function subjectsAddedSince(db: Db, linkId: number, sinceIso: string): Promise<string[]> {
  const { subjectEntry } = tablesOf(db);
  return (await allOf(db
    .select({ id: subjectEntry.id })
    .from(subjectEntry)
    .where(and(eq(subjectEntry.linkId, linkId), gt(subjectEntry.addedAt, sinceIso)))))
    .map((r) => r.id);
}

/**
 * Put a new list in force in place of the link's current one (inside the caller's transaction, so
 * it takes effect whole). A person who stays on the list keeps the time they came onto it; with a
 * different key field every person counts as new. Returns the list it replaced.
 */
export async function replaceSubjects(tx: Db, list: SubjectListRow, ids: readonly string[]): Promise<{ replaced: SubjectListRow | undefined; added: number; removed: number }> {
  const { subjectEntry, subjectList } = tablesOf(tx);
  const replaced = await subjectListOf(tx, list.linkId);
  const keep = new Set(replaced && replaced.keyField === list.keyField ? await subjectIds(tx, list.linkId) : []);
  const next = new Set(ids);
  let removed = 0;
  if (replaced && replaced.keyField !== list.keyField) {
    removed = replaced.count;
    await runOf(tx.delete(subjectEntry).where(eq(subjectEntry.linkId, list.linkId)));
  } else {
    for (const id of keep) {
      if (next.has(id)) continue;
      await runOf(tx.delete(subjectEntry).where(and(eq(subjectEntry.linkId, list.linkId), eq(subjectEntry.id, id))));
      removed++;
    }
  }
  const fresh = [...next].filter((id) => !keep.has(id));
  for (let i = 0; i < fresh.length; i += 500) {
    await runOf(tx.insert(subjectEntry)
      .values(fresh.slice(i, i + 500).map((id) => ({ linkId: list.linkId, id, addedAt: list.inForceAt }))));
  }
  if (replaced) await runOf(tx.update(subjectList).set(list).where(eq(subjectList.linkId, list.linkId)));
  else await runOf(tx.insert(subjectList).values(list));
  return { replaced, added: fresh.length, removed };
}

/** Drop a link's list (the link ended): nothing of it stays but the log's count and hash. */
export async function dropSubjects(tx: Db, linkId: number): Promise<void> {
  const { subjectEntry, subjectList } = tablesOf(tx);
  await runOf(tx.delete(subjectEntry).where(eq(subjectEntry.linkId, linkId)));
  await runOf(tx.delete(subjectList).where(eq(subjectList.linkId, linkId)));
}

/**
 * The link's current list as a reader filters with it: its key column, its identifiers, and those
 * added after `addedSince` (null: none count as added). Undefined when the link has no list.
 */
export interface SubjectFilter {
  column: string;
  ids: string[];
  added: string[];
}
export async function subjectFilter(db: Db, linkId: number, addedSince: string | null): Promise<SubjectFilter | undefined> {
  const list = await subjectListOf(db, linkId);
  if (!list) return undefined;
  return { column: list.keyField, ids: await subjectIds(db, linkId), added: addedSince ? await subjectsAddedSince(db, linkId, addedSince) : [] };
}
