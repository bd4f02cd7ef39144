import type { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { UserError } from '../errors';
import { seedSource } from '../seed/sqlite';
import { seedPgSource } from '../seed/postgres';
import { redactDatabaseUrl } from '../db/pg/connect';
import { sourceDbPath } from '../extract/source';
import { loadCatalogs } from '../registry';
import type { CliContext } from './context';
import { progress, rate } from './progress';

export const MAX_SEED_ROWS = 50_000_000;
const MAX_SEED = 0xffffffff;

export interface SeedArgs {
  rows: number;
  datasets: string[];
  seed: number;
}

/** The seed command's flags, checked; `known` are the catalog's dataset names. */
export function parseSeedArgs(o: { rows?: string; dataset?: string; seed?: string }, known: readonly string[]): SeedArgs {
  const rowsText = (o.rows ?? '').trim();
  if (!/^\d+$/.test(rowsText) || Number(rowsText) === 0) throw new UserError(`--rows '${o.rows ?? ''}' is not a positive whole number`);
  const rows = Number(rowsText);
  if (rows > MAX_SEED_ROWS) throw new UserError(`--rows ${rowsText} is too many (at most ${MAX_SEED_ROWS})`);

  const seedText = (o.seed ?? '1').trim();
  if (!/^\d+$/.test(seedText) || Number(seedText) > MAX_SEED) throw new UserError(`--seed '${o.seed}' is not a whole number from 0 to ${MAX_SEED}`);

  const dataset = (o.dataset ?? 'all').trim();
  if (dataset !== 'all' && !known.includes(dataset)) throw new UserError(`--dataset '${o.dataset}' is not one of ${[...known, 'all'].join(', ')}`);
  return { rows, datasets: dataset === 'all' ? [...known] : [dataset], seed: Number(seedText) };
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('seed')
    .description('fill the source (source.url, or the embedded <data-dir>/source.db) with deterministic synthetic records, replacing what a dataset held')
    .requiredOption('--rows <n>', `rows per dataset (1–${MAX_SEED_ROWS})`)
    .option('--dataset <name>', 'entry_exit, residence or all', 'all')
    .option('--seed <n>', 'PRNG seed: the same seed and row count give the same rows', '1')
    .action(async (o: { rows: string; dataset: string; seed: string }) => {
      const catalogs = loadCatalogs();
      const args = parseSeedArgs(o, [...catalogs.keys()]);
      const dataDir = ctx.config.dataDir;
      const url = ctx.config.source.url;
      const file = sourceDbPath(dataDir);
      if (!url) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      // One instant for every dataset, so a seeded source has a single watermark.
      const now = ctx.clock.now();
      for (const dataset of args.datasets) {
        const bar = progress(dataset, { unit: 'rows' });
        let result: { rows: number; ms: number };
        try {
          const common = { dataset, rows: args.rows, seed: args.seed, catalog: catalogs.get(dataset)!, now, onProgress: (done: number, total: number) => bar.update(done, total) };
          result = url ? await seedPgSource({ ...common, url }) : seedSource({ ...common, file });
        } finally {
          bar.done();
        }
        process.stdout.write(`seeded ${dataset}: ${result.rows} rows in ${(result.ms / 1000).toFixed(1)} s (${rate(result.rows, result.ms)} rows/s) → ${url ? redactDatabaseUrl(url) : file}\n`);
      }
    });
}
