import type { ControlDb, Db } from '../db';
import * as deliveries from '../db/repositories/deliveries';
import { SupersededAttempt } from '../errors';
import type { OutboxTemp } from './index';

/**
 * Publish a delivery's staged files and commit what records it, in one step that only the job
 * attempt owning the delivery can take: the files are flushed first (the big write, before the
 * transaction takes the lock), then inside one write transaction — while `attempt` still owns the
 * building row, and `still(tx)` holds — renamed to their final names and `commit` run. An attempt
 * that lost the delivery (a worker that stalled past its job lock) changes nothing and gets
 * SupersededAttempt. The staged files are removed whenever they were not published, and files
 * published by a transaction that then failed are taken back.
 */
export async function publishDelivery<T>(cdb: ControlDb, delivery: number, attempt: string, temps: readonly OutboxTemp[], commit: (tx: Db) => Promise<T> | T, still: (tx: Db) => Promise<boolean> | boolean = () => true): Promise<T> {
  let published = false;
  try {
    for (const t of temps) t.flush();
    let out: { mine: false } | { mine: true; value: T };
    try {
      out = await cdb.write(async (tx) => {
        if (!(await deliveries.owns(tx, delivery, attempt)) || !(await still(tx))) return { mine: false as const };
        for (const t of temps) t.publish();
        published = true;
        try {
          return { mine: true as const, value: await commit(tx) };
        } catch (err) {
          for (const t of temps) t.withdraw(); // the transaction rolls back: so do the files
          published = false;
          throw err;
        }
      });
    } catch (err) {
      // The commit itself failed (a connection lost at COMMIT): whether it happened is the
      // database's to say. Files of a delivery that is not built by this attempt are taken back;
      // when that cannot be read, they stay for the retry, which builds the delivery again.
      if (published && !(await builtBy(cdb, delivery, attempt))) for (const t of temps) t.withdraw();
      throw err;
    }
    if (!out.mine) throw new SupersededAttempt(delivery);
    return out.value;
  } finally {
    for (const t of temps) t.discard(); // nothing for a published file
  }
}

/** Is the delivery built, by this attempt? Unknown (the database unreachable) counts as yes. */
async function builtBy(cdb: ControlDb, delivery: number, attempt: string): Promise<boolean> {
  try {
    const row = await deliveries.byId(cdb.db, delivery);
    return row?.status === 'built' && row.attempt === attempt;
  } catch {
    return true;
  }
}
