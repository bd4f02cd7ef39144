import type { Command } from 'commander';
import { clientPublicKey, hostKeys, signingPublicKeyArmored } from '../crypto';
import { type CliContext, printJson } from './context';

export function register(program: Command, ctx: CliContext): void {
  const key = program.command('key').description("NIA's keys");
  key
    .command('export-signing')
    .description("print NIA's armored OpenPGP public signing key (agencies import it to verify deliveries)")
    .action(() => {
      process.stdout.write(signingPublicKeyArmored(ctx.config.keysDir));
    });
  key
    .command('export-ssh')
    .description("print NIA's SSH client public key (agencies authorise it on the server NIA pushes to)")
    .action(() => {
      process.stdout.write(clientPublicKey(ctx.config.keysDir));
    });
  key
    .command('host-fingerprint')
    .description('print the SSH host-key fingerprints agencies pin for the SFTP server')
    .option('--json', 'print as JSON')
    .action((o) => {
      const keys = hostKeys(ctx.config.keysDir).map((k) => ({ type: k.type, fingerprint: k.fingerprint }));
      if (o.json) return printJson(keys);
      for (const k of keys) console.log(`${k.fingerprint} (${k.type})`);
    });
}
