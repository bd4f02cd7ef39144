import Database from 'better-sqlite3';
import path from 'node:path';
import { loadCatalogs } from '../../src/registry';

/** A small, hand-written entry_exit source, so tests know exactly what each delivery must contain. */
export function writeEntryExitSource(dataDir: string, rows: Record<string, string | null>[], updatedAt: string): void {
  const catalog = loadCatalogs().get('entry_exit')!;
  const cols = catalog.fields.map((f) => f.name);
  const db = new Database(path.join(dataDir, 'source.db'));
  db.exec(`CREATE TABLE IF NOT EXISTS entry_exit (record_id INTEGER PRIMARY KEY, ${cols.map((c) => `"${c}" TEXT`).join(', ')}, updated_at TEXT NOT NULL)`);
  const ins = db.prepare(`INSERT INTO entry_exit (${cols.map((c) => `"${c}"`).join(', ')}, updated_at) VALUES (${cols.map(() => '?').join(', ')}, ?)`);
  db.transaction(() => {
    for (const r of rows) ins.run(...cols.map((c) => r[c] ?? null), updatedAt);
  })();
  db.close();
}

export function person(i: number, over: Record<string, string | null> = {}): Record<string, string | null> {
  return {
    person_id: `A8${String(i).padStart(8, '0')}`,
    name_en: `CHEN, WEN-HSIUNG ${i}`,
    name_zh: '陳文雄',
    nationality: 'VNM',
    birth_date: '1990-04-05',
    sex: 'M',
    passport_no: `C${String(i).padStart(8, '0')}`,
    direction: 'entry',
    crossed_at: '2026-03-01T08:15:00+08:00',
    port: 'TPE',
    flight_no: 'CI 0101',
    visa_type: 'visitor',
    travel_doc_type: 'passport',
    ...over,
  };
}
