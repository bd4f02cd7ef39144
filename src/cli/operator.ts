import type { Command } from 'commander';
import { UserError } from '../errors';
import type { OperatorService, OperatorView } from '../http/operators';
import { actor, type CliContext, printJson } from './context';

/** Read a line from the terminal without echoing it. */
function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    let text = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.removeListener('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new UserError('cancelled'));
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else if (ch >= ' ') text += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}

/** The new password: typed twice on a terminal, or the first line of standard input with --password-stdin. */
async function newPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin) {
    let text = '';
    for await (const chunk of process.stdin) text += chunk;
    return text.split(/\r?\n/)[0];
  }
  if (!process.stdin.isTTY) throw new UserError('no terminal to ask for the password: pipe it in with --password-stdin');
  const first = await promptHidden('password: ');
  const again = await promptHidden('password again: ');
  if (first !== again) throw new UserError('the two passwords differ');
  return first;
}

function printOperator(o: OperatorView): void {
  const state = o.disabled ? 'disabled' : o.lockedUntil && o.lockedUntil > new Date().toISOString() ? `locked until ${o.lockedUntil}` : 'enabled';
  console.log(`${o.username}\t${o.role}\t${state}\t${o.totp ? 'totp' : 'password only'}\tlast login ${o.lastLoginAt ?? 'never'}`);
}

export function register(program: Command, ctx: CliContext): void {
  const service = async (): Promise<OperatorService> => {
    const { OperatorService } = await import('../http/operators');
    return new OperatorService(ctx.cdb, ctx.clock, ctx.config.http);
  };
  const op = program.command('operator').description('console operators: admin (approve, suspend, manage), operator (queues), auditor (read-only, log export)');
  op.command('add')
    .description('add an operator; the password is asked for on the terminal, or read from standard input')
    .requiredOption('--username <name>', 'login name')
    .requiredOption('--role <role>', 'admin, operator or auditor')
    .option('--password-stdin', 'read the password from the first line of standard input')
    .option('--by <name>', 'who does it')
    .action(async (o) => {
      const svc = await service();
      printOperator(await svc.add({ username: o.username, role: o.role, password: await newPassword(Boolean(o.passwordStdin)) }, actor(o.by)));
    });
  op.command('list')
    .description('every operator, role and state')
    .option('--json', 'print a JSON array')
    .action(async (o) => {
      const rows = await (await service()).list();
      if (o.json) return printJson(rows);
      rows.forEach(printOperator);
    });
  op.command('password <username>')
    .description('set a new password; the operator is logged out everywhere')
    .option('--password-stdin', 'read the password from the first line of standard input')
    .option('--by <name>', 'who does it')
    .action(async (username, o) => {
      const svc = await service();
      await svc.show(username);
      printOperator(await svc.setPassword(username, await newPassword(Boolean(o.passwordStdin)), actor(o.by)));
    });
  op.command('role <username> <role>')
    .description('change the role; the operator is logged out everywhere')
    .option('--by <name>', 'who does it')
    .action(async (username, role, o) => printOperator(await (await service()).setRole(username, role, actor(o.by))));
  for (const [name, what] of [
    ['disable', 'refuse logins and end the operator\'s sessions'],
    ['enable', 'allow logins again'],
    ['unlock', 'lift a lockout after failed logins'],
  ] as const) {
    op.command(`${name} <username>`)
      .description(what)
      .option('--by <name>', 'who does it')
      .action(async (username, o) => printOperator(await (await service())[name](username, actor(o.by))));
  }
  const totp = op.command('totp').description('one-time codes (RFC 6238) from an authenticator app, in addition to the password');
  totp
    .command('enable <username>')
    .description('make a new secret and print it (and its otpauth:// URI) once; logins need a code from then on')
    .option('--by <name>', 'who does it')
    .action(async (username, o) => {
      const r = await (await service()).enableTotp(username, actor(o.by));
      console.log(`secret: ${r.secret}`);
      console.log(`uri: ${r.uri}`);
    });
  totp
    .command('disable <username>')
    .description('password only again')
    .option('--by <name>', 'who does it')
    .action(async (username, o) => printOperator(await (await service()).disableTotp(username, actor(o.by))));
}
