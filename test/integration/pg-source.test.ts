import Database from 'better-sqlite3';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { loadConfig } from '../../src/config';
import { ensureKeys, signingPublicKeyArmored } from '../../src/crypto';
import type { FieldSpec, Scope } from '../../src/domain';
import { compileScope, csvLine, openExtractSource, PgSource, SqliteSource, type ExtractSource } from '../../src/extract';
import { seedSource } from '../../src/seed/sqlite';
import { seedPgSource } from '../../src/seed/postgres';
import type { CsvCapableSource, ExtractRange } from '../../src/extract/source';
import { CopyLineFrames, CopyOut } from '../../src/extract/pg-copy-out';
import { loadCatalogs } from '../../src/registry';
import { buildServices } from '../../src/services';
import { createScratchDb, type ScratchDb } from '../helpers/pg';
import { approvedLink, cleanupKeys, cli, makeAgencyKeys, openWorld, tmpDir, type AgencyKeys, type TestWorld } from '../helpers/world';

const catalogs = loadCatalogs();
const SEEDED_AT = new Date('2026-12-01T04:00:00.000Z');
const CHANGED_AT = '2026-12-02T00:00:00.000Z';
const ROWS = 3000;
const SECRET = 'c0ffee'.repeat(10) + 'abcd';

/** Values that stress the CSV rules: separators, quotes, line ends, empty and NULL, non-BMP characters, COPY's end marker. */
const AWKWARD: (string | null)[] = ['', null, 'a,b', 'O"BRIEN', '"', '""', '\\.', 'line\nfeed', 'a\r\nb', 'cr\ronly', ' lead and trail ', '陳文雄', '歐布萊恩,尚', '𠀋𠀋字', 'é', 'x', 'ab', '"quoted, with comma"\n'];
const AWKWARD_COLUMNS = ['person_id', 'name_en', 'name_zh', 'flight_no', 'passport_no', 'birth_date', 'nationality'];

let scratch: ScratchDb;
let dir: string;
let sqlite: SqliteSource;
let pgs: PgSource;

/** The same change made to both sources: records 11, 22, … take the awkward values, with a later change time. */
async function changeBoth(): Promise<void> {
  const db = new Database(path.join(dir, 'source.db'));
  const c = new pg.Client({ connectionString: scratch.url });
  await c.connect();
  try {
    for (let k = 0; k < AWKWARD.length * 2; k++) {
      const id = 11 * (k + 1);
      const values = AWKWARD_COLUMNS.map((_, j) => AWKWARD[(k + j) % AWKWARD.length]);
      const set = AWKWARD_COLUMNS.map((col) => `"${col}" = ?`).join(', ');
      db.prepare(`UPDATE entry_exit SET ${set}, updated_at = ? WHERE record_id = ?`).run(...values, CHANGED_AT, id);
      const pgSet = AWKWARD_COLUMNS.map((col, j) => `"${col}" = $${j + 1}`).join(', ');
      await c.query(`UPDATE entry_exit SET ${pgSet}, updated_at = $${values.length + 1} WHERE record_id = $${values.length + 2}`, [...values, CHANGED_AT, id]);
    }
  } finally {
    db.close();
    await c.end();
  }
}

/** Waits until no COPY runs on the scratch database (a backend whose client left goes within moments). */
async function eventuallyNoCopy(c: pg.Client): Promise<void> {
  for (let i = 0; ; i++) {
    const open = await c.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY%' AND pid <> pg_backend_pid()");
    if (open.rows[0].n === 0) return;
    if (i >= 50) throw new Error(`${open.rows[0].n} COPY still running`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

async function csvOf(source: CsvCapableSource, dataset: string, fields: FieldSpec[], range: ExtractRange): Promise<{ bytes: Buffer; rows: number; sha256: string }> {
  const csv = source.csvStream(dataset, fields, SECRET, range);
  if (!csv) throw new Error('no CSV writer');
  const bytes = await readAll(csv.stream);
  const { rows, sha256 } = await csv.done;
  expect(sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  return { bytes, rows, sha256 };
}

async function rowsOf(source: ExtractSource, dataset: string, columns: string[], range: ExtractRange): Promise<unknown[][]> {
  const out: unknown[][] = [];
  for await (const batch of source.batches(dataset, columns, range, 700)) out.push(...batch);
  return out;
}

const all = () => compileScope({ all: true, justification: 'test' }, catalogs.get('entry_exit')!, '2026-12-06');
const full = (scope = all()): ExtractRange => ({ since: null, until: CHANGED_AT, scope });

beforeAll(async () => {
  scratch = await createScratchDb();
  dir = tmpDir();
  for (const dataset of ['entry_exit', 'residence']) {
    const common = { dataset, rows: ROWS, seed: 7, catalog: catalogs.get(dataset)!, now: SEEDED_AT };
    seedSource({ ...common, file: path.join(dir, 'source.db') });
    await seedPgSource({ ...common, url: scratch.url });
  }
  await changeBoth();
  sqlite = new SqliteSource(path.join(dir, 'source.db'));
  pgs = new PgSource(scratch.url);
}, 120_000);

afterAll(async () => {
  sqlite?.close();
  await pgs?.close();
  await scratch?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the PostgreSQL source gives the bytes the embedded source gives', () => {
  const entryFields = catalogs.get('entry_exit')!.fields.map((f) => ({ name: f.name }));
  const cases: [string, string, FieldSpec[]][] = [
    ['every field as it is', 'entry_exit', entryFields],
    ['mask', 'entry_exit', ['person_id', 'name_en', 'name_zh', 'passport_no', 'flight_no'].map((name) => ({ name, transform: 'mask' as const }))],
    ['hmac', 'entry_exit', ['person_id', 'name_en', 'name_zh', 'passport_no'].map((name) => ({ name, transform: 'hmac' as const }))],
    ['year and year-month', 'entry_exit', [{ name: 'birth_date', transform: 'year' }, { name: 'crossed_at', transform: 'year-month' }, { name: 'birth_date', transform: 'year-month' }, { name: 'crossed_at', transform: 'year' }]],
    ['one field (COPY would quote a lone \\.)', 'entry_exit', [{ name: 'flight_no' }]],
    ['residence, mixed', 'residence', [{ name: 'arc_no', transform: 'hmac' }, { name: 'address', transform: 'mask' }, { name: 'employer' }, { name: 'expires_on', transform: 'year-month' }, { name: 'status' }]],
  ];
  it.each(cases)('R3.2 %s: identical CSV and SHA-256, full extract', async (_, dataset, fields) => {
    const range = full(dataset === 'entry_exit' ? all() : compileScope({ all: true, justification: 'test' }, catalogs.get(dataset)!, '2026-12-06'));
    const a = await csvOf(sqlite, dataset, fields, range);
    const b = await csvOf(pgs, dataset, fields, range);
    expect(b.rows).toBe(ROWS);
    expect(a.rows).toBe(ROWS);
    expect(b.sha256).toBe(a.sha256);
    expect(b.bytes.equals(a.bytes)).toBe(true);
    const header = csvLine(fields.map((f) => f.name));
    expect(b.bytes.subarray(0, Buffer.byteLength(header)).toString()).toBe(header);
  });

  it('R3.2 the awkward values really are in the extract (quoted fields, CR and LF inside values, empty fields)', async () => {
    const { bytes } = await csvOf(pgs, 'entry_exit', [{ name: 'flight_no' }, { name: 'name_en' }], full());
    const text = bytes.toString('utf8');
    for (const s of ['"O""BRIEN"', '"line\nfeed"', '"a\r\nb"', '"cr\ronly"', '\\.', ',\r\n', '"a,b"']) expect(text).toContain(s);
    expect(text).not.toMatch(/(^|[^\r"])\n(?![^"]*"(,|\r\n))/); // every record ends CRLF
  });

  it('R3.4 a scope with conditions (in, not-in, dates) selects the same records', async () => {
    const scope: Scope = {
      all: false,
      conditions: [
        { field: 'nationality', op: 'in', values: ['VNM', 'IDN', 'PHL', 'THA', 'JPN', 'x'] },
        { field: 'direction', op: 'not-in', values: ['exit'] },
        { field: 'crossed_at', op: 'from', value: '2024-01-01' },
        { field: 'birth_date', op: 'to', value: '2000-12-31' },
      ],
    };
    const range = full(compileScope(scope, catalogs.get('entry_exit')!, '2026-12-06'));
    const fields: FieldSpec[] = [{ name: 'person_id', transform: 'hmac' }, { name: 'nationality' }, { name: 'crossed_at' }, { name: 'birth_date', transform: 'year' }];
    const a = await csvOf(sqlite, 'entry_exit', fields, range);
    const b = await csvOf(pgs, 'entry_exit', fields, range);
    expect(a.rows).toBeGreaterThan(20);
    expect(a.rows).toBeLessThan(ROWS / 2);
    expect(b.rows).toBe(a.rows);
    expect(b.bytes.equals(a.bytes)).toBe(true);
  });

  it('R3.4 a subject list, and the older records of persons added to it in an increment', async () => {
    const ids = (await rowsOf(sqlite, 'entry_exit', ['person_id'], full())).map((r) => r[0]).filter((v): v is string => typeof v === 'string' && v.length > 0);
    const subjects = { column: 'person_id', ids: ids.filter((_, i) => i % 9 === 0), added: ids.filter((_, i) => i % 27 === 0) };
    const scope: Scope = { all: false, conditions: [{ op: 'subjects', max: 100_000 }] };
    const compiled = compileScope(scope, catalogs.get('entry_exit')!, '2026-12-06', subjects);
    const fields: FieldSpec[] = [{ name: 'person_id' }, { name: 'port' }];
    for (const range of [full(compiled), { since: SEEDED_AT.toISOString(), until: CHANGED_AT, scope: compiled }]) {
      const a = await csvOf(sqlite, 'entry_exit', fields, range);
      const b = await csvOf(pgs, 'entry_exit', fields, range);
      expect(a.rows).toBeGreaterThan(0);
      expect(b.bytes.equals(a.bytes)).toBe(true);
    }
  });

  it('R3.2 an increment window (since < updated_at ≤ until) and the watermark agree', async () => {
    expect(await pgs.watermark('entry_exit')).toBe(await sqlite.watermark('entry_exit'));
    expect(await pgs.watermark('entry_exit')).toBe(CHANGED_AT);
    const range = { since: SEEDED_AT.toISOString(), until: CHANGED_AT, scope: all() };
    const fields: FieldSpec[] = [{ name: 'person_id', transform: 'mask' }, { name: 'name_zh' }, { name: 'passport_no', transform: 'hmac' }];
    const a = await csvOf(sqlite, 'entry_exit', fields, range);
    const b = await csvOf(pgs, 'entry_exit', fields, range);
    expect(a.rows).toBe(AWKWARD.length * 2);
    expect(b.bytes.equals(a.bytes)).toBe(true);
    const empty = await csvOf(pgs, 'entry_exit', fields, { since: CHANGED_AT, until: CHANGED_AT, scope: all() });
    expect(empty.rows).toBe(0);
    expect(empty.bytes.toString()).toBe(csvLine(fields.map((f) => f.name)));
  });

  it('R3.2 the row path (a cursor, batch by batch) reads the same values', async () => {
    const columns = ['person_id', 'name_en', 'flight_no', 'birth_date'];
    for (const range of [full(), { since: SEEDED_AT.toISOString(), until: CHANGED_AT, scope: all() }]) {
      const a = await rowsOf(sqlite, 'entry_exit', columns, range);
      const b = await rowsOf(pgs, 'entry_exit', columns, range);
      expect(b.length).toBe(a.length);
      expect(b).toEqual(a);
    }
  });
});

describe('the online query and the batch query read the PostgreSQL source as they read the embedded one', () => {
  const scoped = (): ExtractRange['scope'] =>
    compileScope({ all: false, conditions: [{ field: 'direction', op: 'in', values: ['entry'] }, { field: 'crossed_at', op: 'from', value: '2020-01-01' }] }, catalogs.get('entry_exit')!, '2026-12-06');
  let persons: string[];
  let passports: string[];
  beforeAll(async () => {
    const rows = await rowsOf(sqlite, 'entry_exit', ['person_id', 'passport_no'], full());
    const distinct = (i: number) => [...new Set(rows.map((r) => r[i]).filter((v): v is string => typeof v === 'string' && v !== ''))];
    persons = distinct(0);
    passports = distinct(1);
  });

  it('R2.1 look-ups by identifier: the same records, in record order, up to the limit', async () => {
    const ids = [...persons.slice(0, 40), 'A999999999', 'O"BRIEN', 'a,b'];
    for (const scope of [all(), scoped()]) {
      for (const limit of [5000, 7]) {
        const q = { dataset: 'entry_exit', fields: ['name_en', 'flight_no', 'birth_date'], keyField: 'person_id', ids, scope, limit };
        const a = await sqlite.lookup(q);
        const b = await pgs.lookup(q);
        expect(a.length).toBeGreaterThan(limit === 7 ? 6 : 40);
        expect(b).toEqual(a);
      }
    }
    // A second time: the prepared statement of this shape is reused.
    const q = { dataset: 'entry_exit', fields: ['port'], keyField: 'person_id', ids: persons.slice(5, 8), scope: all(), limit: 10 };
    expect(await pgs.lookup(q)).toEqual(await sqlite.lookup(q));
    expect(await pgs.lookup(q)).toEqual(await sqlite.lookup(q));
  });

  it('R2.2 batch answers: the same CSV bytes, rows and matched identifiers, by an indexed key and by an unindexed one', async () => {
    const fields: FieldSpec[] = [{ name: 'person_id', transform: 'hmac' }, { name: 'name_en' }, { name: 'flight_no', transform: 'mask' }, { name: 'crossed_at', transform: 'year' }];
    // More than one step of the embedded answer (4000 identifiers), with known ones on both sides of the cut.
    const withUnknown = (known: string[]) => known.flatMap((id, i) => [id, ...Array.from({ length: 5 }, (_, k) => `Z${String(i * 5 + k).padStart(9, '0')}`)]);
    for (const [keyField, known] of [
      ['person_id', persons],
      ['passport_no', passports],
    ] as const) {
      const ids = withUnknown(known);
      expect(ids.length).toBeGreaterThan(4000);
      for (const scope of [all(), scoped()]) {
        const spec = { dataset: 'entry_exit', keyField, fields, hmacSecret: SECRET, scope, ids };
        const a = sqlite.answerCsv(spec);
        const aBytes = await readAll(a.stream);
        const b = pgs.answerCsv(spec);
        const bBytes = await readAll(b.stream);
        const [ra, rb] = [await a.done, await b.done];
        expect(ra.matched).toBeGreaterThan(10);
        expect(rb).toEqual(ra);
        expect(bBytes.equals(aBytes)).toBe(true);
        expect(rb.sha256).toBe(createHash('sha256').update(bBytes).digest('hex'));
      }
    }
  });
});

describe('CopyLineFrames: the COPY output read off the socket', () => {
  const msg = (code: string, body = '') => {
    const b = Buffer.from(body);
    const h = Buffer.alloc(5);
    h[0] = code.charCodeAt(0);
    h.writeUInt32BE(b.length + 4, 1);
    return Buffer.concat([h, b]);
  };
  const records = ['a,"x\ny",\n', '"q""\n,",b,\n', ',\n', '"a long record that fills more than one chunk by itself",\n'];
  const copyBytes = Buffer.concat([msg('H', '\x01\x00\x02\x00\x00\x00\x00'), msg('d', records[0]), msg('N', 'SNOTICE\0'), msg('d', records[1]), msg('S', 'TimeZone\0UTC\0'), msg('d', records[2]), msg('d', records[3]), msg('c')]);
  const after = Buffer.concat([msg('C', 'COPY 4\0'), msg('Z', 'T')]);
  const expected = records.map((r) => r.slice(0, -2) + '\r\n').join('');

  /** Feeds `bytes` cut at `cuts`; returns the lines, the rows and where the COPY's bytes ended (-1: not yet). */
  function feedCut(bytes: Buffer, cuts: number[], chunkBytes = 16) {
    const frames = new CopyLineFrames(chunkBytes, 1024);
    const out: Buffer[] = [];
    const bounds = [0, ...cuts, bytes.length];
    let end = -1;
    for (let k = 0; k + 1 < bounds.length && end === -1; k++) {
      const rest = frames.feed(Buffer.from(bytes.subarray(bounds[k], bounds[k + 1])), (b) => out.push(Buffer.from(b)));
      if (rest !== -1) end = bounds[k] + rest;
    }
    const last = frames.take();
    if (last) out.push(last);
    return { lines: Buffer.concat(out).toString(), rows: frames.rows, end, chunks: out };
  }

  it('turns each record-closing ",\\n" into CRLF and stops at CopyDone, wherever the socket cut the bytes', () => {
    const bytes = Buffer.concat([copyBytes, after]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      for (let cut2 = cut; cut2 <= bytes.length; cut2 += 3) {
        const r = feedCut(bytes, [cut, cut2]);
        expect(r.lines).toBe(expected);
        expect(r.rows).toBe(4);
        expect(r.end).toBe(copyBytes.length); // CommandComplete and ReadyForQuery are the driver's
      }
    }
  });

  it('never splits a record between chunks, and gives a record larger than a chunk a chunk of its own', () => {
    const { chunks } = feedCut(copyBytes, []);
    for (const c of chunks) expect(c.toString().endsWith('\r\n')).toBe(true);
    expect(chunks.map((c) => c.toString())).toContain(records[3].slice(0, -2) + '\r\n');
  });

  it('hands an ErrorResponse in the middle of the COPY back to the driver, from its first byte', () => {
    const error = msg('E', 'SERROR\0Mboom\0\0');
    const bytes = Buffer.concat([msg('H', '\x01\x00\x00'), msg('d', records[0]), error, after]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const r = feedCut(bytes, [cut]);
      expect(r.end).toBe(bytes.length - error.length - after.length);
      expect(r.rows).toBe(1);
    }
  });

  it('refuses a record without its closing column, a message shorter than its header, and a record over the limit', () => {
    expect(() => feedCut(Buffer.concat([msg('d', 'a,b\n'), msg('c')]), [])).toThrow(/a record without its closing column/);
    expect(() => feedCut(Buffer.concat([msg('d', '\n'), msg('c')]), [])).toThrow(/a record without its closing column/);
    const short = Buffer.from([0x64, 0, 0, 0, 2]);
    expect(() => feedCut(short, [])).toThrow(/shorter than its header/);
    expect(() => feedCut(msg('d', 'x'.repeat(2000) + ',\n'), [])).toThrow(/2002 bytes, more than the 1024/);
  });
});

describe('errors', () => {
  it('an unreachable source is one line, without the password', async () => {
    const s = new PgSource('postgres://nia:s3cret-pw@127.0.0.1:1/warehouse?password=other-secret');
    const err = (await s.watermark('entry_exit').catch((e: Error) => e)) as Error;
    await s.close();
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/^cannot reach the source database at postgres:\/\/nia@127\.0\.0\.1:1\/warehouse/);
    expect(err.message).not.toMatch(/s3cret-pw|other-secret|\n/);
  });

  it('a source URL that is not PostgreSQL is refused by the configuration, without its password', () => {
    expect(() => loadConfig({ dataDir: dir }, { NIA_LINK_SOURCE_URL: 'mysql://u:pw-123@h/db' })).toThrow(/^invalid configuration: source\.url: must start with postgres:\/\//);
    expect(() => loadConfig({ dataDir: dir }, { NIA_LINK_SOURCE_URL: 'mysql://u:pw-123@h/db' })).not.toThrow(/pw-123/);
    expect(loadConfig({ dataDir: dir }, { NIA_LINK_SOURCE_URL: scratch.url }).source.url).toBe(scratch.url);
    expect(loadConfig({ dataDir: dir }, {}).source.url).toBeUndefined();
  });

  it('an error the server raises in the middle of a COPY reaches the reader, and the connection goes on serving queries', async () => {
    const c = new pg.Client({ connectionString: scratch.url });
    await c.connect();
    try {
      const failing = new CopyOut("COPY (SELECT CASE WHEN g < 20000 THEN repeat('x', 50) ELSE (1 / (g - g))::text END, NULL::text FROM generate_series(1, 30000) g) TO STDOUT WITH (FORMAT csv)", 64 * 1024, 2, 1024);
      c.query(failing);
      let bytes = 0;
      const err = await (async () => {
        for (let b = await failing.read(); b; b = await failing.read()) bytes += b.length;
      })().catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/division by zero/);
      expect(bytes).toBeGreaterThan(0);
      expect((await c.query('SELECT 41 + 1 AS n')).rows[0].n).toBe(42);
      // A statement that is not a COPY TO STDOUT fails the reader, and the connection goes on.
      const notCopy = new CopyOut('SELECT 1 AS one', 64 * 1024, 2, 1024);
      c.query(notCopy);
      await expect(notCopy.read()).rejects.toThrow(/not a COPY/);
      expect((await c.query('SELECT 7 AS n')).rows[0].n).toBe(7);
      const whole = new CopyOut("COPY (SELECT g::text, NULL::text FROM generate_series(1, 50000) g) TO STDOUT WITH (FORMAT csv)", 64 * 1024, 2, 1024);
      c.query(whole);
      const parts: Buffer[] = [];
      for (let b = await whole.read(); b; b = await whole.read()) parts.push(b);
      expect(whole.rows).toBe(50000);
      expect(createHash('sha256').update(Buffer.concat(parts)).digest('hex')).toBe(createHash('sha256').update(Array.from({ length: 50000 }, (_, i) => `${i + 1}\r\n`).join('')).digest('hex'));
      expect((await c.query('SELECT 2 AS n')).rows[0].n).toBe(2);
    } finally {
      await c.end();
    }
  });

  it('a COPY read slowly holds no more than its chunks ahead, and one cancelled while the server waits ends with its connection', async () => {
    const c = new pg.Client({ connectionString: scratch.url });
    await c.connect();
    const copy = new CopyOut("COPY (SELECT repeat('y', 200), NULL::text FROM generate_series(1, 200000) g) TO STDOUT WITH (FORMAT csv)", 64 * 1024, 2, 1024);
    c.query(copy);
    expect((await copy.read())?.length).toBeGreaterThan(60 * 1024);
    // The server has 40 MB to send; this reader waits, so the socket must be paused with about two chunks held.
    await new Promise((r) => setTimeout(r, 300));
    const rss = process.memoryUsage().arrayBuffers;
    // Unpaused, all 200 000 records would have been read by now.
    expect(copy.rows).toBeLessThan(100000);
    copy.cancel();
    await expect(copy.read()).rejects.toThrow(/cancelled/);
    await c.end();
    expect(process.memoryUsage().arrayBuffers - rss).toBeLessThan(8 * 1024 * 1024);
    const probe = new pg.Client({ connectionString: scratch.url });
    await probe.connect();
    await eventuallyNoCopy(probe);
    await probe.end();
  });

  it('a COPY whose server process is ended (a restart, an administrator) fails its reader with the reason', async () => {
    const c = new pg.Client({ connectionString: scratch.url });
    await c.connect();
    c.on('error', () => undefined);
    const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const copy = new CopyOut("COPY (SELECT repeat('z', 200), NULL::text FROM generate_series(1, 500000) g) TO STDOUT WITH (FORMAT csv)", 64 * 1024, 2, 1024);
    c.query(copy);
    expect(await copy.read()).not.toBeNull();
    const admin = new pg.Client({ connectionString: scratch.url });
    await admin.connect();
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await admin.end();
    const err = await (async () => {
      while (await copy.read());
    })().catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/terminat/);
    expect(copy.rows).toBeLessThan(500000);
    await c.end().catch(() => undefined);
  });

  it('an extract stopped part way (the encryption failed) ends its COPY, and the source opens a new connection', async () => {
    const s = new PgSource(scratch.url);
    try {
      const fields = catalogs.get('entry_exit')!.fields.map((f) => ({ name: f.name }));
      const csv = s.csvStream('entry_exit', fields, SECRET, full());
      const reader = csv.stream.getReader();
      expect((await reader.read()).done).toBe(false); // the header
      expect((await reader.read()).done).toBe(false); // the first chunk of lines, not the last
      await reader.cancel();
      await expect(csv.done).rejects.toThrow(/cancelled/);
      expect(await s.watermark('entry_exit')).toBe(CHANGED_AT);
      const c = new pg.Client({ connectionString: scratch.url });
      await c.connect();
      const open = await c.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY%'");
      await c.end();
      expect(open.rows[0].n).toBe(0);
    } finally {
      await s.close();
    }
  });

  it('source.url picks the source every service opens: PostgreSQL when set, the embedded file when not', async () => {
    const pgSource = openExtractSource(loadConfig({ dataDir: dir }, { NIA_LINK_SOURCE_URL: scratch.url }));
    const embedded = openExtractSource(loadConfig({ dataDir: dir }, {}));
    try {
      expect(pgSource).toBeInstanceOf(PgSource);
      expect(embedded).toBeInstanceOf(SqliteSource);
      expect(await pgSource.watermark('entry_exit')).toBe(await embedded.watermark('entry_exit'));
    } finally {
      await pgSource.close();
      embedded.close();
    }
  });

  it('a missing table and a missing pgcrypto are named in one line', async () => {
    await expect(pgs.watermark('no_such_dataset')).rejects.toThrow(/has no no_such_dataset table/);
    const other = await createScratchDb();
    const c = new pg.Client({ connectionString: other.url });
    await c.connect();
    const s = new PgSource(other.url);
    try {
      await c.query('CREATE TABLE entry_exit (record_id bigint PRIMARY KEY, person_id text, updated_at text)');
      await c.query("INSERT INTO entry_exit VALUES (1, 'A800000014', '2026-01-01T00:00:00.000Z')");
      const csv = s.csvStream('entry_exit', [{ name: 'person_id', transform: 'hmac' }], SECRET, full());
      const err = (await readAll(csv.stream).catch((e: Error) => e)) as Error;
      expect(err.message).toMatch(/lacks the pgcrypto extension that hmac fields need: run CREATE EXTENSION pgcrypto/);
      expect(err.message).not.toContain('\n');
      // Without hmac the extension is not needed.
      expect((await csvOf(s, 'entry_exit', [{ name: 'person_id', transform: 'mask' }], full())).bytes.toString()).toBe('person_id\r\nA********4\r\n');
    } finally {
      await s.close();
      await c.end();
      await other.drop();
    }
  });
});

describe('a delivery from the PostgreSQL source', () => {
  let keys: AgencyKeys;
  let w: TestWorld;
  afterAll(() => {
    w?.close();
    if (keys) cleanupKeys(keys);
  });

  it('R3.2 decrypts with GnuPG to the CSV the embedded source gives', async () => {
    keys = makeAgencyKeys();
    w = openWorld();
    const config = loadConfig({ dataDir: w.dataDir }, { REDIS_URL: process.env.NIA_TEST_REDIS_URL!, NIA_LINK_LOG_LEVEL: 'silent', NIA_LINK_SOURCE_URL: scratch.url, NIA_LINK_INSTANCE_ID: `pgsource${process.pid}` });
    await ensureKeys(config.keysDir, new Date());
    const gpgEnv = { ...process.env, GNUPGHOME: keys.gnupgHome };
    execFileSync('gpg', ['--batch', '--import'], { input: signingPublicKeyArmored(config.keysDir), env: gpgEnv, stdio: ['pipe', 'ignore', 'ignore'] });
    const fields: FieldSpec[] = [{ name: 'person_id', transform: 'hmac' }, { name: 'name_en' }, { name: 'crossed_at', transform: 'year-month' }, { name: 'flight_no' }];
    const linkId = await approvedLink(w, keys, { fields });
    const services = buildServices(config, w.cdb, w.clock);
    const d = await services.extracts.run({ key: `pg-${linkId}`, linkId, full: true, trigger: 'manual' }, { finalAttempt: true });
    expect(d.rows).toBe(ROWS);
    const r = spawnSync('gpg', ['--batch', '--status-fd', '2', '--decrypt', d.path!], { env: gpgEnv });
    expect(r.status).toBe(0);
    expect(r.stderr.toString()).toMatch(/GOODSIG/);
    // The file's key is the link's own secret: the same bytes the embedded source gives with it.
    const secret = (await w.registry.state(linkId)).link.hmacSecret;
    const csv = sqlite.csvStream('entry_exit', fields, secret, { since: null, until: CHANGED_AT, scope: all() })!;
    const expected = await readAll(csv.stream);
    expect(Buffer.compare(r.stdout, expected)).toBe(0);
    expect(d.plainSha256).toBe(createHash('sha256').update(expected).digest('hex'));
    expect(readFileSync(d.path!).length).toBeGreaterThan(0);
  }, 60_000);

  it('nia-link seed fills the PostgreSQL source when source.url is set', () => {
    const seedDir = tmpDir();
    const r = cli(seedDir, ['seed', '--rows', '50', '--dataset', 'residence'], { NIA_LINK_SOURCE_URL: scratch.url.replace('postgres@', 'postgres:not-the-password@') });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/seeded residence: 50 rows/);
    expect(r.stdout).not.toContain('not-the-password');
    expect(existsSync(path.join(seedDir, 'source.db'))).toBe(false);
    rmSync(seedDir, { recursive: true, force: true });
  });
});
