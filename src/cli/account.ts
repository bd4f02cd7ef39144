import type { Command } from 'commander';
import { UserError } from '../errors';
import type { AccountService, AccountView } from '../registry';
import { actor, type CliContext, printJson, readInputFile } from './context';

function printAccount(a: AccountView, withKeys: boolean): void {
  const keys = a.keys.filter((k) => !k.revokedAt).length;
  console.log(`${a.username}\tlink ${a.link} (${a.agency}, ${a.linkStatus})\t${a.enabled ? 'enabled' : 'DISABLED'}\t${keys} key${keys === 1 ? '' : 's'}${a.password ? ', password' : ''}`);
  if (!withKeys) return;
  for (const k of a.keys) console.log(`  ${k.revokedAt ? 'revoked' : 'active '}  ${k.fingerprint} (${k.algorithm}) added ${k.addedAt}${k.revokedAt ? `, revoked ${k.revokedAt}` : ''}`);
}

async function readPassword(file: string | undefined): Promise<string> {
  if (file) return readInputFile(file, 'password file').toString('utf8').split(/\r?\n/)[0];
  if (process.stdin.isTTY) throw new UserError('give the password on standard input (e.g. from a password manager) or with --password-file FILE');
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return text.split(/\r?\n/)[0];
}

export function register(program: Command, ctx: CliContext): void {
  // Loaded when a command runs: other commands should not pay for the SFTP module.
  const accounts = async (): Promise<AccountService> => {
    const { AccountService } = await import('../registry');
    const { linkEvents } = ctx.services;
    // Open sessions of the account's link are re-checked at once by the SFTP processes.
    return new AccountService(ctx.cdb, ctx.registry, ctx.clock, (id) => linkEvents.publish(id));
  };
  const account = program.command('account').description('SFTP accounts of sftp-pull links: keys, passwords, enabling');
  account
    .command('list')
    .description('every SFTP account, its link and state')
    .option('--json', 'print a JSON array')
    .action(async (o) => {
      const rows = await (await accounts()).list();
      if (o.json) return printJson(rows);
      for (const a of rows) printAccount(a, false);
    });
  account
    .command('show <user>')
    .description('one account with its keys (revoked ones too)')
    .option('--json', 'print as JSON')
    .action(async (user, o) => {
      const a = await (await accounts()).show(user);
      if (o.json) return printJson(a);
      printAccount(a, true);
    });
  for (const [name, enabled] of [['disable', false], ['enable', true]] as const) {
    account
      .command(`${name} <user>`)
      .description(enabled ? 'allow the account to log in again' : 'refuse its logins and close its open sessions within seconds')
      .option('--by <name>', 'who does it')
      .action(async (user, o) => {
        printAccount(await (await accounts()).setEnabled(user, enabled, actor(o.by)), false);
      });
  }
  const key = account.command('key').description("the account's SSH public keys");
  key
    .command('add <user> <file>')
    .description('authorise one more public key (an OpenSSH .pub file)')
    .option('--by <name>', 'who does it')
    .action(async (user, file, o) => {
      printAccount(await (await accounts()).addKey(user, readInputFile(file, 'SSH key').toString('utf8'), actor(o.by)), true);
    });
  key
    .command('revoke <user> <key>')
    .description('revoke a key, given as its .pub file or its SHA256: fingerprint; sessions opened with it are closed')
    .option('--by <name>', 'who does it')
    .action(async (user, which: string, o) => {
      const text = which.startsWith('SHA256:') ? which : readInputFile(which, 'SSH key').toString('utf8');
      printAccount(await (await accounts()).revokeKey(user, text, actor(o.by)), true);
    });
  const password = account.command('password').description('password login (only used when sftp.passwordAuth is on)');
  password
    .command('set <user>')
    .description('set the password, read from standard input or --password-file (stored as an scrypt hash)')
    .option('--password-file <file>', 'read the password from the first line of this file')
    .option('--by <name>', 'who does it')
    .action(async (user, o) => {
      const svc = await accounts();
      printAccount(await svc.setPassword(user, await readPassword(o.passwordFile), actor(o.by)), false);
      if (!ctx.config.sftp.passwordAuth) console.log('note: password logins are off (sftp.passwordAuth); the password is used once they are on');
    });
  password
    .command('clear <user>')
    .description('remove the password: public keys only')
    .option('--by <name>', 'who does it')
    .action(async (user, o) => {
      printAccount(await (await accounts()).clearPassword(user, actor(o.by)), false);
    });
}
