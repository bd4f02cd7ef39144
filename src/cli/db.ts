import type { Command } from 'commander';
import { copyToPostgres } from '../db/pg/copy';
import { UserError } from '../errors';
import { type CliContext, printJson } from './context';
import { progress } from './progress';

export function register(program: Command, ctx: CliContext): void {
  const db = program.command('db').description('the control database');
  db.command('migrate')
    .description('copy this installation (every table, the usage log byte for byte) into an empty PostgreSQL database in one consistent pass, then verify the copied usage log there')
    .requiredOption('--to <url>', 'postgres://user@host:port/database (TLS options in the URL; give the password in PGPASSWORD or ~/.pgpass, not on the command line)')
    .option('--json', 'print the result as JSON')
    .action(async (o) => {
      const cdb = ctx.cdb;
      if (cdb.dialect !== 'sqlite') {
        throw new UserError(`db migrate copies an installation's SQLite control database, and this one is on PostgreSQL (${cdb.where}): unset NIA_LINK_DATABASE_URL (database.url) to name the source`, 'db.migrate-source', 'refused');
      }
      const bar = progress('db migrate', { json: o.json });
      bar.note('copying tables');
      let r: Awaited<ReturnType<typeof copyToPostgres>>;
      try {
        r = await copyToPostgres(cdb, o.to, (table, rows) => bar.note(`${table}: ${rows} rows`));
      } finally {
        bar.done();
      }
      const same = r.usageLog.sameAsSource;
      if (o.json) printJson(r);
      else {
        for (const t of r.tables) console.log(`${t.table}: ${t.rows} rows`);
        console.log(`copied into ${r.target} in ${(r.ms / 1000).toFixed(1)} s; usage log on PostgreSQL: ${r.usageLog.verified ? `verified, ${r.usageLog.records} records, head ${r.usageLog.head ?? '-'}` : `DOES NOT VERIFY at seq ${r.usageLog.bad?.seq} (${r.usageLog.bad?.reason})`}${r.usageLog.verified ? (same ? ' (the same head as here)' : ' — NOT the same head as here') : ''}`);
      }
      if (!same) {
        console.error('nia-link: the copied usage log is not the same as this installation\'s; do not switch over');
        process.exitCode = 1;
      }
    });
}
