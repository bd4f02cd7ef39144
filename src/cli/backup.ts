import type { Command } from 'commander';
import { UserError } from '../errors';
import { backup, restore } from '../backup';
import { type CliContext, printJson } from './context';
import { progress } from './progress';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('backup')
    .description('a consistent online copy of the control database, keys and usage-log archives, with a signed manifest')
    .requiredOption('--out <dir>', 'a new (or empty) directory; copy it off this machine')
    .option('--json', 'print the result as JSON')
    .action(async (o) => {
      const bar = progress('backup', { json: o.json });
      bar.note('copying the database, keys and archives; verifying the usage log');
      let r: Awaited<ReturnType<typeof backup>>;
      try {
        r = await backup(ctx.cdb, { dataDir: ctx.config.dataDir, keysDir: ctx.config.keysDir, out: o.out, now: ctx.clock.now() });
      } finally {
        bar.done();
      }
      if (o.json) printJson({ ...r, log: { ok: r.log.ok, records: r.log.records, lastSeq: r.log.lastSeq, headHash: r.log.headHash, bad: r.log.bad } });
      else console.log(`backup written to ${r.dir}: ${r.files} files, ${r.bytes} bytes; usage log ${r.log.ok ? `verified through seq ${r.log.lastSeq ?? '-'}` : 'DOES NOT VERIFY'}`);
      if (!r.log.ok) {
        console.error(`nia-link: the usage log does not verify at seq ${r.log.bad!.seq} (${r.log.bad!.reason}); the backup keeps it as it is`);
        process.exitCode = 1;
      }
    });
  program
    .command('restore')
    .description('check a backup (signature, checksums, usage-log chain) and only then put it in place')
    .requiredOption('--from <dir>', 'a directory written by `nia-link backup`')
    .option('--key <file>', "NIA's public key to check the manifest with, kept apart from the backup (default: the key of the installation at --data-dir; the backup's own copy is never trusted)")
    .option('--force', 'replace an existing installation (moved aside as *.replaced-<time>, not deleted)')
    .option('--json', 'print the result as JSON')
    .action(async (o) => {
      const r = await restore({ from: o.from, dataDir: ctx.config.dataDir, keysDir: ctx.config.keysDir, now: ctx.clock.now(), force: !!o.force, keyFile: o.key });
      // Never "verified" for a log that did not verify (restore() rolls back and throws in that case).
      if (!r.log.ok) throw new UserError(`the restored usage log does not verify at seq ${r.log.bad?.seq ?? '-'}`);
      if (o.json) return printJson({ ...r, log: { ok: r.log.ok, records: r.log.records, lastSeq: r.log.lastSeq, headHash: r.log.headHash } });
      console.log(`restored ${r.files} files into ${ctx.config.dataDir}; manifest signed by ${r.signingKey} (checked with the ${r.keySource === 'given' ? '--key' : 'installation'} key); usage log verified through seq ${r.log.lastSeq ?? '-'}`);
      for (const f of r.replaced) console.log(`moved aside: ${f}`);
    });
}
