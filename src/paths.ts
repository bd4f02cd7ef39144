import { existsSync } from 'node:fs';
import path from 'node:path';

/** The package root (where package.json, schemas/ and drizzle/ live), from src/ or dist/src/. */
function findRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'schemas'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find the nia-link package root above ${__dirname}`);
}

export const PROJECT_ROOT = findRoot();
export const SCHEMAS_DIR = path.join(PROJECT_ROOT, 'schemas');
export const MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'drizzle');

/**
 * The compiled script of a worker thread, `rel` under src/ without extension ('usagelog/verify-thread').
 * Threads always run the built JavaScript in dist/, also when the caller runs from TypeScript sources.
 */
export function threadScript(rel: string): string {
  return path.join(PROJECT_ROOT, 'dist', 'src', `${rel}.js`);
}
