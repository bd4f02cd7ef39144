import type Database from 'better-sqlite3';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KEY_FILES, generateSigningKey } from '../../src/crypto';
import { connectionOf, openControlDb, type SqliteControlDb as ControlDb, type Db } from '../../src/db';
import * as usageLogRepo from '../../src/db/repositories/usageLog';
import { appendLog, type LogEntry } from '../../src/usagelog';
import { canonicalJson, chainHash, GENESIS_HASH, recordDigest } from '../../src/usagelog/chain';
import { tmpDir } from '../helpers/world';

/** NIA's signing key, made once per test file (OpenPGP Ed25519, as `init` makes it). */
let keyFiles: string | undefined;
async function signingKeyFiles(): Promise<string> {
  if (keyFiles) return keyFiles;
  const dir = tmpDir('nia-link-ulkeys-');
  const k = await generateSigningKey('National Immigration Agency (test)', 'test@immigration.gov.tw', new Date(Date.now() - 86400000));
  writeFileSync(path.join(dir, KEY_FILES.signingPrivate), k.privateKey, { mode: 0o600 });
  writeFileSync(path.join(dir, KEY_FILES.signingPublic), k.publicKey);
  return (keyFiles = dir);
}

export interface LogWorld {
  dataDir: string;
  keysDir: string;
  cdb: ControlDb;
  /**
   * Append one record at this time (ISO), as an action would in its transaction; a time before the
   * head is history the test makes up (appendLog never writes one, R6.6): written as given, chained.
   */
  append(entry: LogEntry, at?: string): Promise<number>;
  /** Append n records of a generic type, one second apart from `start`. */
  fill(n: number, start?: string, entry?: Partial<LogEntry>): Promise<void>;
  count(): number;
  close(): void;
}

export async function logWorld(): Promise<LogWorld> {
  const src = await signingKeyFiles();
  const dataDir = tmpDir('nia-link-ul-');
  const keysDir = path.join(dataDir, 'keys');
  mkdirSync(keysDir, { mode: 0o700 });
  for (const f of [KEY_FILES.signingPrivate, KEY_FILES.signingPublic]) copyFileSync(path.join(src, f), path.join(keysDir, f));
  const cdb = openControlDb(dataDir, { create: true });
  const append = (entry: LogEntry, at = new Date().toISOString()) =>
    cdb.write(async (tx) => {
      const head = await usageLogRepo.head(tx);
      return head?.at && head.at > at ? await madeUp(tx, head, entry, at) : (await appendLog(tx, entry, new Date(at))).seq;
    });
  return {
    dataDir,
    keysDir,
    cdb,
    append,
    async fill(n, start = new Date(Date.now() - n * 1000).toISOString(), entry = {}) {
      const t0 = Date.parse(start);
      await cdb.write(async (tx) => {
        for (let i = 0; i < n; i++) await appendLog(tx, { type: 'test.event', agency: 'A001', linkId: 1, actor: 'test', detail: { i }, ...entry }, new Date(t0 + i * 1000));
      });
    },
    count: () => (cdb.sqlite.prepare('SELECT count(*) AS n FROM usage_log').get() as { n: number }).n,
    close() {
      cdb.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A record of a history the test makes up, at the time it says, chained on the head. */
async function madeUp(tx: Db, head: { seq: number; hash: string }, entry: LogEntry, at: string): Promise<number> {
  const body = {
    seq: head.seq + 1,
    at: new Date(at).toISOString(),
    type: entry.type,
    agency: entry.agency ?? null,
    linkId: entry.linkId ?? null,
    revision: entry.revision ?? null,
    actor: entry.actor ?? null,
    ip: entry.ip ?? null,
    channel: entry.channel ?? null,
    object: entry.object ?? null,
    detail: canonicalJson(entry.detail ?? {}),
  };
  const digest = recordDigest(body);
  const prevHash = head.hash ?? GENESIS_HASH;
  await usageLogRepo.insert(tx, { ...body, digest, prevHash, hash: chainHash(prevHash, digest) });
  return body.seq;
}

/** Edit the database behind the services' backs, on its write connection (`cdb.sqlite` only reads). */
export const rawWrite = <T>(cdb: ControlDb, fn: (db: Database.Database) => T): Promise<T> => cdb.write((tx) => fn(connectionOf(tx)));

/** As an attacker with write access to the file: drop the guards of the usage log first. */
export function dropGuards(cdb: ControlDb, table = 'usage_log'): Promise<void> {
  return rawWrite(cdb, (db) => {
    for (const t of db.prepare("SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name=?").all(table) as { name: string }[]) {
      db.exec(`DROP TRIGGER "${t.name}"`);
    }
  });
}

export type Raw = Record<string, unknown>;
export const rowAt = (cdb: ControlDb, seq: number) => cdb.sqlite.prepare('SELECT * FROM usage_log WHERE seq = ?').get(seq) as Raw;
