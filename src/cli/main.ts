import { Command, CommanderError } from 'commander';
import { DatabaseBusy } from '../db/busy';
import { isUserError } from '../errors';
import { CliContext } from './context';
import { cliMessage } from './flags';
import * as account from './account';
import * as agency from './agency';
import * as anomaly from './anomaly';
import * as backup from './backup';
import * as batch from './batch';
import * as change from './change';
import * as compliance from './compliance';
import * as dataset from './dataset';
import * as db from './db';
import * as demo from './demo';
import * as defender from './defender';
import * as deliver from './deliver';
import * as init from './init';
import * as key from './key';
import * as link from './link';
import * as log from './log';
import * as operator from './operator';
import * as report from './report';
import * as query from './query';
import * as rules from './rules';
import * as seed from './seed';
import * as start from './start';
import * as vendor from './vendor';

/** Commander's own usage errors, as one line like every other error. */
const oneLineError = (str: string, write: (s: string) => void) => write(str.split('\n')[0].replace(/^error: /, 'nia-link: ') + ' (see --help)\n');

export function buildProgram(ctx: CliContext, program: Command): Command {
  program
    .name('nia-link')
    .description("NIA's secure batch file transfer of immigration data to linked agencies")
    .option('--data-dir <dir>', 'data directory (default $NIA_LINK_DATA_DIR or ./data)')
    .option('--at <date>', 'drill installations only: run the command as of this Taipei day (compliance status and finding list may preview a day anywhere)')
    .exitOverride()
    .configureOutput({ outputError: oneLineError });
  for (const m of [init, agency, dataset, link, compliance, change, rules, vendor, account, seed, deliver, log, query, report, anomaly, backup, db, batch, key, defender, operator, start, demo]) m.register(program, ctx);
  // init decides the installation's mode, and so whether its clock may move, itself.
  program.hook('preAction', (_program, cmd) => ctx.beforeAction(cmd, cmd.name() === 'init' && cmd.parent === program));
  return program;
}

/** Entry point of the `nia-link` command. User mistakes end in one line on stderr and exit code 1 or 2. */
export async function main(argv: string[]): Promise<void> {
  const program = new Command();
  const ctx = new CliContext(() => program.opts(), process.env.NIA_LINK_CLOCK);
  buildProgram(ctx, program);
  program.commands.forEach(function exitOverrideAll(c: Command) {
    c.exitOverride();
    c.configureOutput({ outputError: oneLineError });
    c.commands.forEach(exitOverrideAll);
  });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
    } else if (isUserError(err)) {
      process.stderr.write(`nia-link: ${cliMessage(err)}\n`);
      process.exitCode = 1;
    } else if (err instanceof DatabaseBusy) {
      process.stderr.write(`nia-link: ${err.message}\n`);
      process.exitCode = 1;
    } else {
      const e = err as Error;
      process.stderr.write(`nia-link: internal error: ${e?.message ?? String(err)}${process.env.NIA_LINK_DEBUG ? '\n' + e?.stack : ' (set NIA_LINK_DEBUG=1 for details)'}\n`);
      process.exitCode = 70;
    }
  } finally {
    await ctx.close().catch(() => undefined);
  }
}
