import type { Config } from 'drizzle-kit';

// The control database's PostgreSQL migrations: `npx drizzle-kit generate --config drizzle.pg.config.ts`
// (add `--custom --name …` for hand-written SQL such as triggers). SQLite's stay in drizzle.config.ts.
export default {
  dialect: 'postgresql',
  schema: './src/db/pg/schema.ts',
  out: './drizzle-pg',
} satisfies Config;
