import { rmSync } from 'node:fs';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { buildExtract, SqliteSource, type ExtractSource } from '../../src/extract';
import { person, writeEntryExitSource } from '../helpers/source';
import { tmpDir } from '../helpers/world';
import { csvExtensionBuilt } from '../../src/extract/csv-sql';

/** A whole-dataset scope, compiled: no row filter beyond the change window. */
const ALL = { sql: 'TRUE', pgSql: 'TRUE', params: {} };

/** Hides the CSV capability, so buildExtract takes the generic row-by-row path. */
const generic = (s: SqliteSource): ExtractSource => ({ watermark: (d) => s.watermark(d), batches: (...a) => s.batches(...a), close: () => s.close() });

it('R3.2 the worker-thread CSV path and the generic row path write the same CSV, byte for byte', async () => {
  expect(csvExtensionBuilt()).toBe(true); // otherwise both runs would take the row path
  const dir = tmpDir();
  try {
    writeEntryExitSource(dir, [person(1), person(2, { name_en: 'O"BRIEN, SEAN', name_zh: '歐布萊恩,尚' }), person(3, { flight_no: 'a\r\nb', birth_date: null }), ...Array.from({ length: 9000 }, (_, i) => person(10 + i))], '2026-01-01T00:00:00.000Z');
    const { privateKey } = await openpgp.generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [{ name: 'n' }], format: 'object' });
    const fields = [{ name: 'person_id', transform: 'hmac' as const }, { name: 'name_zh', transform: 'mask' as const }, { name: 'name_en' }, { name: 'birth_date', transform: 'year-month' as const }, { name: 'flight_no' }];
    const run = async (source: ExtractSource, name: string) =>
      buildExtract({ source, dataset: 'entry_exit', fields, hmacSecret: 'ab'.repeat(32), range: { since: null, until: '2027-01-01', scope: ALL }, signingKey: privateKey, encryptionKey: privateKey.toPublic(), file: path.join(dir, name) });
    const threaded = await run(new SqliteSource(path.join(dir, 'source.db')), 'a.pgp');
    const rowwise = await run(generic(new SqliteSource(path.join(dir, 'source.db'))), 'b.pgp');
    expect(threaded.rows).toBe(9003);
    expect(rowwise.rows).toBe(9003);
    expect(threaded.plainSha256).toBe(rowwise.plainSha256);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
