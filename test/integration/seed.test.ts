import Database from 'better-sqlite3';
import { Command } from 'commander';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { register, parseSeedArgs } from '../../src/cli/seed';
import { CliContext } from '../../src/cli/context';
import { isValidDate, type DatasetCatalog } from '../../src/domain';
import { isValidTaiwanId } from '../../src/domain';
import { UserError } from '../../src/errors';
import { seedSource } from '../../src/seed/sqlite';
import { sourceDbPath } from '../../src/extract/source';
import {
  createGenerator,
  DIRECTIONS,
  NATIONALITIES,
  PERMIT_TYPES,
  PORTS,
  RESIDENCE_STATUSES,
  SEXES,
  TRAVEL_DOC_TYPES,
  VISA_TYPES,
} from '../../src/seed/synthetic';
import { loadCatalogs } from '../../src/registry';
import { tmpDir } from '../helpers/world';

type Row = Record<string, string | number | null>;

const catalogs = loadCatalogs();
const catalog = (name: string) => catalogs.get(name)!;
// Two instants of one Taipei day (2026-03-10): the generated values depend on the day only.
const NOW = new Date('2026-03-10T02:00:00.000Z');
const LATER_SAME_DAY = new Date('2026-03-10T09:30:00.000Z');
const TODAY = '2026-03-10';

let dir: string;
let file: string;
beforeEach(() => {
  dir = tmpDir('nia-link-seed-');
  file = sourceDbPath(dir);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function seed(dataset: string, rows: number, seedValue = 1, now = NOW, target = file) {
  return seedSource({ file: target, dataset, rows, seed: seedValue, catalog: catalog(dataset), now });
}

function readRows(dataset: string, target = file): Row[] {
  const db = new Database(target, { readonly: true });
  try {
    return db.prepare(`SELECT * FROM "${dataset}" ORDER BY record_id`).all() as Row[];
  } finally {
    db.close();
  }
}

const withoutUpdatedAt = (rows: Row[]) => rows.map(({ updated_at: _, ...rest }) => rest);

describe('seedSource', () => {
  test.each(['entry_exit', 'residence'])('%s: the same seed and row count give the same rows, apart from updated_at', (dataset) => {
    const other = path.join(dir, 'other.db');
    seed(dataset, 3000, 42, NOW);
    seed(dataset, 3000, 42, LATER_SAME_DAY, other);
    const a = readRows(dataset);
    const b = readRows(dataset, other);
    expect(a).toHaveLength(3000);
    expect(withoutUpdatedAt(b)).toEqual(withoutUpdatedAt(a));
    expect(new Set(a.map((r) => r.updated_at))).toEqual(new Set([NOW.toISOString()]));
    expect(new Set(b.map((r) => r.updated_at))).toEqual(new Set([LATER_SAME_DAY.toISOString()]));
  });

  test('a different seed gives different rows', () => {
    const other = path.join(dir, 'other.db');
    seed('entry_exit', 2000, 1);
    seed('entry_exit', 2000, 2, NOW, other);
    const a = withoutUpdatedAt(readRows('entry_exit'));
    const b = withoutUpdatedAt(readRows('entry_exit', other));
    const same = a.filter((r, i) => JSON.stringify(r) === JSON.stringify(b[i])).length;
    expect(same).toBe(0);
  });

  test('rows do not depend on how they are batched: a row is a function of its index', () => {
    const gen = createGenerator(catalog('entry_exit'), { seed: 9, rows: 1000, now: NOW });
    const seq: unknown[][] = [];
    for (let i = 0; i < 1000; i++) {
      const out: unknown[] = [];
      gen.fill(i, out, 0);
      seq.push(out);
    }
    const again = createGenerator(catalog('entry_exit'), { seed: 9, rows: 1000, now: NOW });
    for (const i of [999, 0, 500, 1]) {
      const out: unknown[] = ['x'];
      again.fill(i, out, 1);
      expect(out.slice(1)).toEqual(seq[i]);
    }
  });

  test.each(['entry_exit', 'residence'])('%s: the table has record_id, exactly the catalog fields, updated_at, and an updated_at index', (dataset) => {
    seed(dataset, 100);
    const db = new Database(file, { readonly: true });
    try {
      const cols = db.prepare(`PRAGMA table_info("${dataset}")`).all() as { name: string; type: string; notnull: number; pk: number }[];
      expect(cols.map((c) => c.name)).toEqual(['record_id', ...catalog(dataset).fields.map((f) => f.name), 'updated_at']);
      expect(cols[0]).toMatchObject({ type: 'INTEGER', pk: 1 });
      expect(cols.slice(1).every((c) => c.type === 'TEXT')).toBe(true);
      expect(cols[cols.length - 1]).toMatchObject({ name: 'updated_at', notnull: 1 });
      const indexes = db.prepare(`PRAGMA index_list("${dataset}")`).all() as { name: string }[];
      const indexed = indexes.map((ix) => (db.prepare(`PRAGMA index_info("${ix.name}")`).all() as { name: string }[]).map((c) => c.name));
      expect(indexed).toContainEqual(['updated_at']);
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name);
      expect(tables).toEqual([dataset]);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
  });

  test('a catalog field without a generator, or of another type, fails loudly', () => {
    const base = catalog('entry_exit');
    const extra: DatasetCatalog = { ...base, fields: [...base.fields, { ...base.fields[0], name: 'shoe_size' }] };
    expect(() => seedSource({ file, dataset: 'entry_exit', rows: 10, seed: 1, catalog: extra, now: NOW })).toThrow(/no generator for field 'shoe_size'/);
    const retyped: DatasetCatalog = { ...base, fields: base.fields.map((f) => (f.name === 'birth_date' ? { ...f, type: 'datetime' as const } : f)) };
    expect(() => createGenerator(retyped, { seed: 1, rows: 10, now: NOW })).toThrow(/birth_date/);
    expect(() => createGenerator({ ...base, name: 'visas' }, { seed: 1, rows: 10, now: NOW })).toThrow(/no generator for dataset 'visas'/);
  });

  /** Checks every row and reports the failures, rather than one expect per value (20 000 rows × 20 fields). */
  function problems(data: Row[], checks: Record<string, (r: Record<string, string | null>) => boolean>): string[] {
    const out: string[] = [];
    for (const r of data) {
      for (const [what, ok] of Object.entries(checks)) {
        if (!ok(r as Record<string, string | null>) && out.length < 10) out.push(`${what}: ${JSON.stringify(r)}`);
      }
    }
    return out;
  }
  const dateIn = (d: string | null, from: string, to: string) => d !== null && isValidDate(d) && d >= from && d <= to;

  test('entry_exit values have the formats of real records', () => {
    const rows = 20_000;
    seed('entry_exit', rows, 3);
    const data = readRows('entry_exit');
    const ports = new Map(PORTS.map((p) => [p.code, p.kind]));
    const threeYearsAgo = Date.parse('2023-03-09T00:00:00+08:00');
    expect(
      problems(data, {
        'nationality is a listed ISO 3166-1 alpha-3 code': (r) => /^[A-Z]{3}$/.test(r.nationality!) && NATIONALITIES.includes(r.nationality!),
        // Citizens carry a national ID (second digit 1/2), foreigners a new-format UI number (8/9).
        'person_id is a national ID or UI number with a valid check digit': (r) => isValidTaiwanId(r.person_id!) && (r.nationality === 'TWN' ? /^.[12]/ : /^.[89]/).test(r.person_id!),
        'name_en is upper-case "SURNAME, GIVEN"': (r) => /^[A-Z][A-Z ,'-]*[A-Z]$/.test(r.name_en!),
        'name_zh is Han characters or null': (r) => r.name_zh === null || /^[\u4e00-\u9fff\u3400-\u4dbf]{2,6}$/.test(r.name_zh),
        'birth_date is a date from 1940 to 2008': (r) => dateIn(r.birth_date, '1940-01-01', '2008-12-31'),
        'sex is M, F or X': (r) => (SEXES as readonly (string | null)[]).includes(r.sex),
        'passport_no looks like a passport number': (r) => /^[A-Z0-9]{7,9}$/.test(r.passport_no!),
        'direction is entry or exit': (r) => (DIRECTIONS as readonly (string | null)[]).includes(r.direction),
        'crossed_at is a Taipei time in the last three years': (r) => {
          const t = Date.parse(r.crossed_at!);
          return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$/.test(r.crossed_at!) && isValidDate(r.crossed_at!.slice(0, 10)) && t >= threeYearsAgo && t < NOW.getTime();
        },
        'port is a listed airport or seaport': (r) => ports.has(r.port!),
        'flight_no is a flight number at airports, a voyage at seaports': (r) => (ports.get(r.port!) === 'air' ? /^[A-Z0-9]{2} \d{4}$/ : /^[A-Z]{4} \d{3}[NS]$/).test(r.flight_no!),
        'visa_type is null for citizens, a listed type otherwise': (r) => (r.nationality === 'TWN' ? r.visa_type === null : (VISA_TYPES as readonly (string | null)[]).includes(r.visa_type)),
        'travel_doc_type is listed': (r) => (TRAVEL_DOC_TYPES as readonly (string | null)[]).includes(r.travel_doc_type),
      }),
    ).toEqual([]);
    // Plausible mix: Taoyuan busiest, citizens the largest group, travellers crossing more than once.
    const count = (field: string) => {
      const m = new Map<unknown, number>();
      for (const r of data) m.set(r[field], (m.get(r[field]) ?? 0) + 1);
      return [...m.entries()].sort((a, b) => b[1] - a[1]);
    };
    expect(count('port')[0][0]).toBe('TPE');
    expect(count('nationality')[0][0]).toBe('TWN');
    expect(count('nationality').length).toBeGreaterThanOrEqual(15);
    expect(new Set(data.map((r) => r.person_id)).size).toBeLessThan(rows * 0.8);
    expect(count('direction').map(([, n]) => n / rows).every((share) => share > 0.45)).toBe(true);
  });

  test('residence values have the formats of real records, with statuses that agree with the dates', () => {
    seed('residence', 5000, 4);
    const data = readRows('residence');
    const city = /^(臺北市|新北市|桃園市|臺中市|臺南市|高雄市|基隆市|新竹市|新竹縣|苗栗縣|彰化縣|南投縣|雲林縣|嘉義市|嘉義縣|屏東縣|宜蘭縣|花蓮縣|臺東縣|澎湖縣|金門縣|連江縣)/;
    expect(
      problems(data, {
        'arc_no is a new-format UI number with a valid check digit': (r) => /^[A-Z][89]\d{8}$/.test(r.arc_no!) && isValidTaiwanId(r.arc_no!),
        'nationality is a listed foreign one': (r) => NATIONALITIES.includes(r.nationality!) && r.nationality !== 'TWN',
        'permit_type is listed': (r) => (PERMIT_TYPES as readonly (string | null)[]).includes(r.permit_type),
        'birth_date is a date from 1940 to 2008': (r) => dateIn(r.birth_date, '1940-01-01', '2008-12-31'),
        'issued_on is a date not after today': (r) => dateIn(r.issued_on, '2010-01-01', TODAY),
        'expires_on is after issued_on, null only for permanent residence': (r) => (r.permit_type === 'permanent' ? r.expires_on === null : dateIn(r.expires_on, r.issued_on!, '2031-12-31') && r.expires_on! > r.issued_on!),
        'status is listed': (r) => (RESIDENCE_STATUSES as readonly (string | null)[]).includes(r.status),
        'expired permits expired before today': (r) => r.status !== 'expired' || r.expires_on! < TODAY,
        'valid permits have not expired': (r) => r.status !== 'valid' || r.expires_on === null || r.expires_on >= TODAY,
        'address is a Taiwan address in Chinese': (r) => city.test(r.address!) && /\d+號(\d+樓)?$/.test(r.address!),
        'no employer for family reunion': (r) => r.permit_type !== 'family' || r.employer === null,
        'employer or school named in Chinese': (r) => r.employer === null || /^[\u4e00-\u9fff]+$/.test(r.employer),
        'workers and students have an employer or school': (r) => !['migrant-work', 'study', 'professional'].includes(r.permit_type!) || r.employer !== null,
      }),
    ).toEqual([]);
    expect(new Set(data.map((r) => r.status))).toEqual(new Set(RESIDENCE_STATUSES));
    expect(new Set(data.map((r) => r.permit_type))).toEqual(new Set(PERMIT_TYPES));
  });

  test("entry_exit's resident crossings are people of the residence dataset", () => {
    seed('entry_exit', 5000, 8);
    seed('residence', 2000, 8);
    const residents = new Map(readRows('residence').map((r) => [r.arc_no, r]));
    const crossings = readRows('entry_exit').filter((r) => r.visa_type === 'resident');
    expect(crossings.length).toBeGreaterThan(100);
    for (const c of crossings) {
      const r = residents.get(c.person_id);
      expect(r).toBeDefined();
      expect([c.name_en, c.birth_date, c.passport_no, c.nationality]).toEqual([r!.name_en, r!.birth_date, r!.passport_no, r!.nationality]);
    }
  });

  test('re-seeding replaces the table: the new row count, the new updated_at', () => {
    seed('entry_exit', 3000);
    seed('residence', 50);
    seed('entry_exit', 1200, 1, LATER_SAME_DAY);
    const data = readRows('entry_exit');
    expect(data).toHaveLength(1200);
    expect(data[data.length - 1].record_id).toBe(1200);
    expect(new Set(data.map((r) => r.updated_at))).toEqual(new Set([LATER_SAME_DAY.toISOString()]));
    // Other datasets are left alone.
    expect(readRows('residence')).toHaveLength(50);
  });

  test('readers see the old table while a seed is under way, and a failed seed leaves it intact', () => {
    seed('entry_exit', 100);
    const reader = new Database(file, { readonly: true });
    const seen: number[] = [];
    try {
      expect(() =>
        seedSource({
          file,
          dataset: 'entry_exit',
          rows: 45_000,
          seed: 2,
          catalog: catalog('entry_exit'),
          now: LATER_SAME_DAY,
          onProgress: (done) => {
            seen.push((reader.prepare('SELECT count(*) AS n FROM entry_exit').get() as { n: number }).n);
            if (done >= 40_000) throw new Error('disk full');
          },
        }),
      ).toThrow('disk full');
      expect(seen).toEqual([100, 100]);
    } finally {
      reader.close();
    }
    expect(readRows('entry_exit')).toHaveLength(100);
    const db = new Database(file, { readonly: true });
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
    db.close();
    expect(tables).toEqual(['entry_exit']);
  });

  test('a table left half-built by a crash is discarded by the next seed', () => {
    seed('residence', 10);
    const db = new Database(file);
    db.exec('CREATE TABLE residence__seeding (record_id INTEGER PRIMARY KEY, junk TEXT)');
    db.exec("INSERT INTO residence__seeding (junk) VALUES ('half')");
    db.close();
    seed('residence', 30);
    expect(readRows('residence')).toHaveLength(30);
    const check = new Database(file, { readonly: true });
    expect(check.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all()).toEqual(['residence']);
    check.close();
  });

  test('progress is reported after each batch, ending at the total', () => {
    const calls: [number, number][] = [];
    seedSource({ file, dataset: 'residence', rows: 45_000, seed: 1, catalog: catalog('residence'), now: NOW, onProgress: (d, t) => calls.push([d, t]) });
    expect(calls).toEqual([
      [20_000, 45_000],
      [40_000, 45_000],
      [45_000, 45_000],
    ]);
  });
});

describe('nia-link seed', () => {
  const known = ['entry_exit', 'residence'];

  test('flags: rows a positive whole number up to 50 000 000, dataset a catalog name or all, seed a 32-bit number', () => {
    expect(parseSeedArgs({ rows: '1000' }, known)).toEqual({ rows: 1000, datasets: known, seed: 1 });
    expect(parseSeedArgs({ rows: '50000000', dataset: 'residence', seed: '0' }, known)).toEqual({ rows: 50_000_000, datasets: ['residence'], seed: 0 });
    expect(parseSeedArgs({ rows: '5', dataset: 'all', seed: '4294967295' }, known).seed).toBe(4294967295);
    for (const bad of ['0', '-5', '1.5', 'ten', '', '1e6', '50000001']) {
      expect(() => parseSeedArgs({ rows: bad }, known)).toThrow(UserError);
    }
    expect(() => parseSeedArgs({ rows: '10', dataset: 'visas' }, known)).toThrow("--dataset 'visas' is not one of entry_exit, residence, all");
    expect(() => parseSeedArgs({ rows: '10', seed: '4294967296' }, known)).toThrow(UserError);
    expect(() => parseSeedArgs({ rows: '10', seed: '-1' }, known)).toThrow(UserError);
    expect(() => parseSeedArgs({ rows: '50000001' }, known)).toThrow('--rows 50000001 is too many (at most 50000000)');
  });

  async function run(dataDir: string, args: string[]): Promise<string> {
    const program = new Command().option('--data-dir <dir>').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    const ctx = new CliContext(() => ({ dataDir: program.opts().dataDir as string }));
    register(program, ctx);
    program.commands.forEach((c) => c.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} }));
    let out = '';
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += chunk.toString();
      return true;
    });
    try {
      await program.parseAsync(['--data-dir', dataDir, ...args], { from: 'user' });
    } finally {
      spy.mockRestore();
      ctx.close();
    }
    return out;
  }

  test('seeds every dataset into a new data directory (no control database needed) and prints one line each', async () => {
    const dataDir = path.join(dir, 'fresh', 'data');
    const out = await run(dataDir, ['seed', '--rows', '300', '--seed', '7']);
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(2);
    const source = path.join(dataDir, 'source.db');
    expect(lines[0]).toMatch(new RegExp(`^seeded entry_exit: 300 rows in \\d+\\.\\d s \\(\\d+ rows/s\\) → ${source.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
    expect(lines[1]).toMatch(/^seeded residence: 300 rows in /);
    expect(readRows('entry_exit', source)).toHaveLength(300);
    expect(readRows('residence', source)).toHaveLength(300);
    expect(existsSync(path.join(dataDir, 'nia-link.db'))).toBe(false);

    const again = await run(dataDir, ['seed', '--rows', '20', '--dataset', 'residence']);
    expect(again).toMatch(/^seeded residence: 20 rows in /);
    expect(readRows('residence', source)).toHaveLength(20);
    expect(readRows('entry_exit', source)).toHaveLength(300);
  });

  test('bad flags are one-line user errors; a missing --rows is a usage error', async () => {
    await expect(run(dir, ['seed', '--rows', 'lots'])).rejects.toThrow(new UserError("--rows 'lots' is not a positive whole number"));
    await expect(run(dir, ['seed', '--rows', '10', '--dataset', 'visa'])).rejects.toBeInstanceOf(UserError);
    await expect(run(dir, ['seed'])).rejects.toMatchObject({ code: 'commander.missingMandatoryOptionValue' });
    expect(existsSync(path.join(dir, 'source.db'))).toBe(false);
  });
});
