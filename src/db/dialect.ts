import { DrizzleQueryError, type SQL } from 'drizzle-orm';
import { PgDatabase } from 'drizzle-orm/pg-core';
import type { Db } from './index';
import * as sqliteTables from './schema';
import * as pgTables from './pg/schema';

/*
 * Repositories are written once, for both dialects. They build their statements with drizzle's
 * query builder on the tables `tablesOf(tx)` gives: on SQLite the tables of ./schema.ts, on
 * PostgreSQL those of ./pg/schema.ts, which have the same names, columns and JavaScript types
 * (test/integration/pg-schema.test.ts holds the two together). Their types are SQLite's on both:
 * the builders the two dialects share take and give the same values. A statement ends in one of
 * allOf, getOf or runOf, which run it the way its dialect does; where the dialects' SQL differs
 * (JSON functions, prepared statements), a repository asks `isPg(tx)`.
 */

export type Tables = typeof sqliteTables;

/**
 * A statement the database refused or could not run: the database's own message and code (SQLite's
 * `SQLITE_CONSTRAINT_UNIQUE`, PostgreSQL's SQLSTATE `23505`), and never the statement's parameters,
 * which drizzle puts in its messages (identifiers, key hashes, tokens must not reach logs, job
 * failures or the usage log).
 */
export class DatabaseError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'DatabaseError';
  }
}

/** The error a repository hands on: the database's own, without the statement's parameters. */
function plain(err: unknown): unknown {
  if (!(err instanceof DrizzleQueryError)) return err;
  const cause = err.cause as { message?: string; code?: string } | undefined;
  return new DatabaseError(cause?.message?.split('\n')[0] ?? 'the statement failed', cause?.code);
}

/** Is `err` a unique-key violation, on either dialect? */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** Is `tx` a PostgreSQL database or transaction? */
export const isPg = (tx: Db): boolean => (tx as unknown) instanceof PgDatabase;

/** The tables of `tx`'s dialect. */
export const tablesOf = (tx: Db): Tables => (isPg(tx) ? (pgTables as unknown as Tables) : sqliteTables);

/**
 * Every row of a statement written in SQL (the same text on both dialects, or chosen by `isPg`);
 * aliases that are not lower case must be quoted. PostgreSQL gives bigint and count(*) as text: say
 * which columns are numbers.
 */
export async function rawAll<T>(tx: Db, query: SQL, numbers: readonly (keyof T & string)[] = []): Promise<T[]> {
  try {
    if (!isPg(tx)) return tx.all<T>(query);
    const rows = ((await (tx as unknown as PgDatabase<never>).execute(query)) as unknown as { rows: Record<string, unknown>[] }).rows;
    for (const r of rows) for (const k of numbers) if (r[k] !== null && r[k] !== undefined) r[k] = Number(r[k]);
    return rows as T[];
  } catch (err) {
    throw plain(err);
  }
}

/** Run a statement written in SQL that gives no rows. */
export async function rawRun(tx: Db, query: SQL): Promise<void> {
  try {
    if (isPg(tx)) await (tx as unknown as PgDatabase<never>).execute(query);
    else tx.run(query);
  } catch (err) {
    throw plain(err);
  }
}

/** Every row the statement gives. */
export async function allOf<T>(q: { all(): T[] }): Promise<T[]> {
  try {
    return typeof q.all === 'function' ? q.all() : await (q as unknown as PromiseLike<T[]>);
  } catch (err) {
    throw plain(err);
  }
}

/** The first row the statement gives, if any. */
export async function getOf<T>(q: { get(): T }): Promise<T> {
  try {
    return typeof q.get === 'function' ? q.get() : ((await (q as unknown as PromiseLike<T[]>))[0] as T);
  } catch (err) {
    throw plain(err);
  }
}

/** Run a statement that gives no rows; how many rows it changed. */
export async function runOf(q: { run(): { changes: number } }): Promise<number> {
  try {
    if (typeof q.run === 'function') return q.run().changes;
    return (await (q as unknown as PromiseLike<{ rowCount: number | null }>)).rowCount ?? 0;
  } catch (err) {
    throw plain(err);
  }
}
