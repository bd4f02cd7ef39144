import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { readKey } from 'openpgp';
import type { Config } from '../config';
import { ensureKeys, hostKeys, KEY_FILES, signingPublicKeyArmored } from '../crypto';
import { controlDbFile } from '../db';
import * as installation from '../db/repositories/installation';
import { addMonths, DRILL_MARK, METHODS, type Method, parseFieldList, systemClock, taipeiDate } from '../domain';
import { UserError } from '../errors';
import { PermanentError } from '../extract';
import { seedSource } from '../seed/sqlite';
import { sourceDbPath } from '../extract/source';
import { createGenerator } from '../seed/synthetic';
import { loadCatalogs } from '../registry';
import { ROLES } from '../roles';
import { CliContext, type GlobalFlags } from './context';
import { untilSignalled } from './signals';
import { progress } from './progress';

/** What the demo made, kept in <dir>/demo.json (0600) so a second run reuses it and prints the same guide. */
interface DemoState {
  version: 1;
  agency: string;
  account: string;
  linkId?: number;
  operator?: { username: string; password: string };
  seeded?: number;
  /** A person_id the link may look up (in its scope), for the online-query example. */
  queryId?: string;
}

const AGENCY = { code: 'A001', name: '財政部賦稅署', nameEn: 'Taxation Administration' };
const ACCOUNT = 'a001';
const DATASET = 'entry_exit';
const FIELDS = 'person_id,name_zh:mask,nationality,direction,crossed_at,port';
const SCOPE = 'nationality not-in TWN';
const ROWS = 100_000;
const OPERATOR = 'demo';
const ACTOR = 'demo';
const RULES_TEXT = '應用移民資訊管理規定（演練）\n一、使用目的\n二、稽核\n三、查詢程序\n四、安全維護\n五、委外\n六、損害責任\n七、使用者責任\n八、帳號異動\n';

/** A path or word as a shell reads it back unchanged: bare when safe, otherwise in single quotes. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
/** A path inside an sftp batch line. */
const sftpq = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `"${s.replace(/(["\\])/g, '\\$1')}"`);

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv, input?: string): string {
  try {
    return execFileSync(cmd, args, { env: env ?? process.env, input, stdio: ['pipe', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new UserError(`${cmd} is not installed: the demo makes the sample agency's keys with it`, 'demo.tool');
    const why = (e.stderr ?? '').trim().split('\n').pop() || e.message.split('\n')[0];
    throw new UserError(`${cmd} ${args[0] ?? ''} failed: ${why}`, 'demo.tool');
  }
}

/** The sample agency's keys, made as an agency makes them, unprotected (it is a demo). */
function agencyKeys(dir: string, niaSigning: string): { pgpPublic: string; sshPublic: string; clientCert: string } {
  const home = path.join(dir, 'gnupg');
  const pub = path.join(dir, 'pgp-public.asc');
  if (!existsSync(pub)) {
    mkdirSync(home, { recursive: true, mode: 0o700 });
    chmodSync(home, 0o700);
    const env = { ...process.env, GNUPGHOME: home };
    const gpg = (...args: string[]) => run('gpg', ['--batch', '--passphrase', '', '--pinentry-mode', 'loopback', ...args], env);
    gpg('--quick-gen-key', `Demo Agency ${AGENCY.code} <${ACCOUNT}@agency.example.gov.tw>`, 'ed25519', 'cert,sign', 'never');
    const fpr = gpg('--list-secret-keys', '--with-colons').split('\n').find((l) => l.startsWith('fpr'))?.split(':')[9];
    if (!fpr) throw new UserError('gpg made no key', 'demo.tool');
    gpg('--quick-add-key', fpr, 'cv25519', 'encr', 'never');
    // NIA's signing key, certified locally: deliveries then verify as a good signature from a valid key.
    const niaFile = path.join(dir, 'nia-signing.asc');
    writeFileSync(niaFile, niaSigning);
    gpg('--import', niaFile);
    const nia = run('gpg', ['--batch', '--with-colons', '--import-options', 'show-only', '--import', niaFile], env)
      .split('\n')
      .find((l) => l.startsWith('fpr'))
      ?.split(':')[9];
    if (nia) gpg('--yes', '--quick-lsign-key', nia);
    writeFileSync(pub, gpg('--armor', '--export', fpr));
  }
  const ssh = path.join(dir, 'id_ed25519');
  if (!existsSync(ssh)) run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `demo agency ${AGENCY.code}`, '-f', ssh]);
  const cert = path.join(dir, 'client.crt');
  if (!existsSync(cert)) {
    run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '825', '-subj', `/CN=${ACCOUNT}.agency.example.gov.tw`, '-keyout', path.join(dir, 'client.key'), '-out', cert]);
    chmodSync(path.join(dir, 'client.key'), 0o600);
  }
  return { pgpPublic: readFileSync(pub, 'utf8'), sshPublic: readFileSync(`${ssh}.pub`, 'utf8'), clientCert: readFileSync(cert, 'utf8') };
}

function loadState(file: string): DemoState {
  if (!existsSync(file)) return { version: 1, agency: AGENCY.code, account: ACCOUNT };
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as DemoState;
  } catch {
    throw new UserError(`${file} is not JSON: remove the directory to start the demo afresh`, 'demo.state');
  }
}
function saveState(file: string, s: DemoState): void {
  writeFileSync(file, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** The first seeded person the link may look up: not a citizen (the scope is `nationality not-in TWN`). */
function personInScope(rows: number, now: Date): string {
  const catalog = loadCatalogs().get(DATASET)!;
  const gen = createGenerator(catalog, { seed: 1, rows, now });
  const id = gen.columns.indexOf('person_id');
  const nat = gen.columns.indexOf('nationality');
  const row: unknown[] = new Array(gen.columns.length);
  for (let i = 0; i < Math.min(rows, 10_000); i++) {
    gen.fill(i, row, 0);
    if (row[nat] !== 'TWN' && typeof row[id] === 'string' && row[id]) return row[id] as string;
  }
  throw new Error('no non-citizen among the seeded rows');
}

const port = (text: string | undefined, flag: string): number | undefined => {
  if (text === undefined) return undefined;
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw new UserError(`${flag} '${text}' is not a port number`);
  return Number(text);
};

/** The demo's own settings: loopback only, one process per role (it is one person's demo), ports as asked. */
function demoConfig(base: Config, o: { httpPort?: string; sftpPort?: string; queryPort?: string }): Config {
  const env = process.env;
  return {
    ...base,
    // The guide stays readable: warnings and errors only, unless asked for more.
    logLevel: env.NIA_LINK_LOG_LEVEL ? base.logLevel : 'warn',
    http: { ...base.http, port: port(o.httpPort, '--http-port') ?? base.http.port },
    sftp: { ...base.sftp, host: env.NIA_LINK_SFTP_HOST ? base.sftp.host : '127.0.0.1', processes: env.NIA_LINK_SFTP_PROCESSES ? base.sftp.processes : 1, port: port(o.sftpPort, '--sftp-port') ?? base.sftp.port },
    query: { ...base.query, host: env.NIA_LINK_QUERY_HOST ? base.query.host : '127.0.0.1', processes: env.NIA_LINK_QUERY_PROCESSES ? base.query.processes : 1, port: port(o.queryPort, '--query-port') ?? base.query.port },
  };
}

/** <dir>/demo.pid: one demo per directory (a second would take the first one's ports and Redis). */
const pidFile = (dir: string) => path.join(dir, 'demo.pid');

function runningDemo(dir: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile(dir), 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  // A number left by a demo that died may since name another program.
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('nia-link')) return undefined;
  } catch {
    /* no /proc: trust the number */
  }
  return pid;
}

function claim(dir: string): void {
  const other = runningDemo(dir);
  if (other !== undefined) throw new UserError(`a demo already runs on ${dir} (process ${other}); its guide is in that terminal (stop it with Ctrl-C to start it again)`, 'demo.running');
  writeFileSync(pidFile(dir), `${process.pid}\n`, { mode: 0o600 });
}

/** Whether this process holds the directory (wrote its demo.pid). */
function ours(dir: string): boolean {
  try {
    return Number(readFileSync(pidFile(dir), 'utf8').trim()) === process.pid;
  } catch {
    return false;
  }
}

/** The installation, agency, link, data and operator; made once, reused after. */
async function setUp(ctx: CliContext, dir: string, say: (s: string) => void): Promise<DemoState> {
  const dbFile = controlDbFile(dir);
  const existed = existsSync(dbFile);
  if (!existed && existsSync(dir) && readdirSync(dir).length > 0) {
    throw new UserError(`${dir} is not empty and holds no installation: give the demo a directory of its own (--data-dir)`, 'demo.dir');
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  claim(dir);
  const cdb = ctx.openDb(true);
  const mode = await installation.recorded(cdb.db);
  if (mode === 'production' || (mode === undefined && (await installation.used(cdb.db)))) {
    throw new UserError(`${dir} holds a production installation: the demo runs only on a drill installation of its own (give another --data-dir)`, 'demo.production');
  }
  if (mode === undefined) {
    await cdb.write((tx) => installation.record(tx, 'drill', systemClock.now()));
    say(`${DRILL_MARK}: drill installation created in ${dir}`);
  }
  // The installation is a drill now: a moved clock (NIA_LINK_CLOCK, --at) may be settled.
  await ensureKeys(ctx.config.keysDir, (await ctx.settleClock()).now());

  const stateFile = path.join(dir, 'demo.json');
  const state = loadState(stateFile);
  const agencyDir = path.join(dir, 'agency');
  mkdirSync(agencyDir, { recursive: true, mode: 0o700 });
  const keys = agencyKeys(agencyDir, signingPublicKeyArmored(ctx.config.keysDir));
  const { registry, rules, forms } = ctx.services;

  if (!(await registry.listAgencies()).some((a) => a.code === AGENCY.code)) await registry.addAgency(AGENCY, ACTOR);
  if (state.linkId === undefined) {
    // A run stopped part way may have left the application: it is taken up where it stopped.
    const today = taipeiDate(ctx.clock.now());
    let link = (await registry.list()).find((l) => l.agency === AGENCY.code && l.account === ACCOUNT);
    const methods: Method[] = ['sftp-pull', 'online-query'];
    if ((METHODS as readonly string[]).includes('batch-query')) methods.push('batch-query' as Method);
    if (!link) {
      writeFileSync(path.join(agencyDir, 'rules.txt'), RULES_TEXT);
      link = await registry.apply(
        {
          agency: AGENCY.code,
          dataset: DATASET,
          fields: parseFieldList(FIELDS),
          legalBasis: '所得稅法第7條',
          purpose: '外籍人士居住者身分認定（演練）',
          department: '稽核科',
          officer: '王小明',
          supervisor: '陳大文',
          from: today,
          to: addMonths(today, 24),
          disposal: '使用完畢後刪除',
          methods,
          allowIps: ['127.0.0.1/32', '::1/128'],
          account: ACCOUNT,
          sshKeys: [keys.sshPublic],
          pgpKey: keys.pgpPublic,
          schedule: '* * * * *',
          rules: { filename: 'rules.txt', content: Buffer.from(RULES_TEXT) },
          clientCerts: [keys.clientCert],
          scope: { text: SCOPE },
          maxIdsPerDay: 1000,
        },
        ACTOR,
      );
    }
    if (link.status === 'pending') {
      await rules.review({ linkId: link.id }, '1,2,3,4,5,6,7,8', 'demo', ACTOR);
      // The form the agency prints, stamps and sends back; here the printed form stands in for it.
      const { output } = await forms.render(link.id, { format: 'pdf' }, ACTOR);
      const year = Number(today.slice(0, 4)) - 1911;
      await registry.approve(link.id, { by: ACTOR, letterNo: `移署資字第${year}0000001號`, letterDate: today, stampedForm: { filename: 'stamped-form.pdf', content: output } });
    }
    state.linkId = link.id;
    saveState(stateFile, state);
    say(`link ${link.id}: ${AGENCY.name} (${AGENCY.code}), ${DATASET}, scope '${SCOPE}', ${link.channels.join(' + ')}, delivered every minute`);
  }
  if (state.seeded === undefined) {
    const catalog = loadCatalogs().get(DATASET)!;
    const bar = progress(DATASET, { unit: 'rows' });
    const now = ctx.clock.now();
    try {
      seedSource({ file: sourceDbPath(dir), dataset: DATASET, rows: ROWS, seed: 1, catalog, now, onProgress: (d, t) => bar.update(d, t) });
    } finally {
      bar.done();
    }
    state.seeded = ROWS;
    state.queryId = personInScope(ROWS, now);
    saveState(stateFile, state);
    say(`seeded ${ROWS} synthetic ${DATASET} rows`);
  }
  if (!state.operator) {
    const { OperatorService } = await import('../http/operators');
    const ops = new OperatorService(cdb, ctx.clock, ctx.config.http);
    const password = randomBytes(12).toString('base64url');
    if ((await ops.list()).some((o) => o.username === OPERATOR)) await ops.setPassword(OPERATOR, password, ACTOR);
    else await ops.add({ username: OPERATOR, role: 'admin', password }, ACTOR);
    state.operator = { username: OPERATOR, password };
    saveState(stateFile, state);
  }
  return state;
}

/** A full delivery whose file is in the outbox: the one the guide fetches (made now when there is none). */
async function fullDelivery(ctx: CliContext, config: Config, linkId: number): Promise<string> {
  // An extract of the link's dataset (answers to batch requests are deliveries too, named after the request).
  const extract = new RegExp(`^${DATASET}-L${linkId}-r\\d+-\\S+-D\\d+\\.csv\\.pgp$`);
  const built = async () => (await ctx.services.extracts.list(linkId)).find((d) => d.status === 'built' && d.mode === 'full' && d.path && extract.test(path.basename(d.path)) && ctx.services.outbox.stat(linkId, path.basename(d.path)) !== null);
  let d = await built();
  if (d) return path.basename(d.path!);
  const jobId = `manual-${linkId}-${Date.now()}-${randomBytes(4).toString('hex')}`;
  try {
    await ctx.services.extracts.assertUsable(await ctx.registry.state(linkId), { key: `extract:${jobId}`, trigger: 'manual' }, ctx.clock.now());
  } catch (err) {
    if (err instanceof PermanentError) throw new UserError(`link ${linkId} cannot be delivered: ${err.message}`, err.code);
    throw err;
  }
  const { openQueue, QUEUES, resolveRedis } = await import('../queue');
  const { url } = await resolveRedis(config, { spawn: false });
  const queue = openQueue(QUEUES.extract, config, url);
  const bar = progress(`link ${linkId}`);
  bar.note('building the first delivery');
  try {
    const since = ctx.clock.now().toISOString();
    await queue.add('manual-extract', { linkId, full: true, trigger: 'manual', by: ACTOR }, { jobId });
    for (let i = 0; i < 1200 && !(d = await built()); i++) {
      const failed = (await ctx.services.extracts.list(linkId)).find((x) => x.status === 'failed' && x.trigger === 'manual' && x.createdAt >= since);
      if (failed) throw new UserError(`the first delivery failed: ${failed.error}`, 'demo.delivery');
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    bar.done();
    await queue.close();
  }
  if (!d) throw new UserError('the first delivery was not built within 5 minutes', 'demo.delivery');
  return path.basename(d.path!);
}

/** The guide: zh-TW and English, each command on its own line after `$ `, working as printed from any directory. */
function guide(o: { dir: string; config: Config; ports: { http: number; sftp: number; query: number }; state: DemoState; file: string; batch: boolean; niaFingerprint: string }): string {
  const a = (name: string) => path.join(o.dir, 'agency', name);
  const host = (h: string) => (h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h);
  const sftp = `sftp -b - -P ${o.ports.sftp} -i ${shq(a('id_ed25519'))} -o IdentitiesOnly=yes -o UserKnownHostsFile=${shq(a('known_hosts'))} ${o.state.account}@127.0.0.1`;
  const gnupg = `GNUPGHOME=${shq(a('gnupg'))}`;
  const csv = o.file.replace(/\.pgp$/, '');
  const body = JSON.stringify({ ids: [o.state.queryId], reference: 'demo-001' });
  const url = `https://127.0.0.1:${o.ports.query}/query/v1/${DATASET}`;
  const lines = [
    '',
    `== nia-link demo  ${DRILL_MARK} ==  資料皆為合成 / all data is synthetic`,
    `主控台 Console: http://${host(o.config.http.host)}:${o.ports.http}/login   帳號 user: ${o.state.operator!.username}   密碼 password: ${o.state.operator!.password}`,
    `以下指令可貼到另一個終端機執行 / Paste these commands into another terminal:`,
    '',
    `# 1. 以機關的 SSH 金鑰列出交付檔（每分鐘一次）/ List the deliveries (one a minute) with the agency's SSH key`,
    `$ echo 'ls -l /outbox' | ${sftp}`,
    `# 2. 取回完整交付檔 / Fetch the full delivery`,
    `$ echo ${shq(`get /outbox/${o.file} ${sftpq(a(o.file))}`)} | ${sftp}`,
    `# 3. 以機關的 OpenPGP 金鑰解密並驗證 NIA 簽章 / Decrypt and verify NIA's signature with the agency's OpenPGP key`,
    `$ ${gnupg} gpg --batch --yes --output ${shq(a(csv))} --decrypt ${shq(a(o.file))}`,
    `$ head -n 5 ${shq(a(csv))}`,
    `# 4. 線上查詢（雙向 TLS，機關的用戶端憑證）/ Online query (mutual TLS, the agency's client certificate)`,
    `$ curl -sS --fail-with-body --cacert ${shq(a('nia-query-server.crt'))} --cert ${shq(a('client.crt'))} --key ${shq(a('client.key'))} -H 'content-type: application/json' -d ${shq(body)} ${url}`,
  ];
  if (o.batch) {
    // A new request name on each try: a name is refused while its earlier answer is still in /outbox.
    const dq = (p: string) => p.replace(/(["\\`$])/g, '\\$1');
    const ad = dq(path.join(o.dir, 'agency') + '/');
    lines.push(
      `# 5. 批次查詢：簽章並加密的身分識別碼清單放進 /inbox，結果出現在 /outbox / Batch query: a signed, encrypted list of ids into /inbox, the answer appears in /outbox`,
      `$ REQ=demo-$(date +%Y%m%d-%H%M%S)`,
      `$ printf '# reference: demo-batch\\nperson_id\\n%s\\n' ${shq(o.state.queryId!)} > "${ad}$REQ.csv"`,
      `$ ${gnupg} gpg --batch --yes --sign --encrypt --recipient ${o.niaFingerprint} --output "${ad}$REQ.csv.pgp" "${ad}$REQ.csv"`,
      `$ echo "put ${ad}$REQ.csv.pgp /inbox/" | ${sftp}`,
      `$ until echo "get /outbox/$REQ.result.csv.pgp ${ad}" | ${sftp} 2>/dev/null; do sleep 2; done`,
      `$ ${gnupg} gpg --batch --yes --decrypt "${ad}$REQ.result.csv.pgp"`,
    );
  }
  lines.push(
    '',
    `資料目錄 Data: ${o.dir}   (GNUPGHOME=${a('gnupg')}; 管理指令 admin commands: npx nia-link --data-dir ${shq(o.dir)} …)`,
    `按 Ctrl-C 停止；再次執行 nia-link demo 沿用此目錄 / Ctrl-C stops the demo; running it again reuses this directory.`,
    '',
  );
  return lines.join('\n');
}

async function runDemo(ctx: CliContext, dir: string, o: { httpPort?: string; sftpPort?: string; queryPort?: string }): Promise<void> {
  const started = Date.now();
  const say = (s: string) => console.log(s);
  // The agency's gpg-agent, started by the key generation, goes with the demo.
  const killAgent = () => {
    if (!ours(dir)) return;
    spawnSync('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: path.join(dir, 'agency', 'gnupg') }, stdio: 'ignore' });
    rmSync(pidFile(dir), { force: true });
  };
  let svc: Awaited<ReturnType<typeof import('../main').startService>>;
  const config = demoConfig(ctx.config, o);
  try {
    await setUp(ctx, dir, say);
    // Reuses what `nia-link start` runs: every role, in this process.
    const { startService } = await import('../main');
    svc = await startService(config, [...ROLES], (line) => console.log(line), ctx.clock);
  } catch (err) {
    killAgent();
    throw err;
  }
  const state = loadState(path.join(dir, 'demo.json'));
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= svc.stop().finally(killAgent));
  try {
    const ports = { http: svc.httpPort ?? config.http.port, sftp: svc.sftpPort ?? config.sftp.port, query: svc.queryPort ?? config.query.port };
    // What the agency holds: NIA's query-server certificate and SSH host keys, pinned.
    copyFileSync(path.join(config.keysDir, KEY_FILES.queryCert), path.join(dir, 'agency', 'nia-query-server.crt'));
    writeFileSync(path.join(dir, 'agency', 'known_hosts'), hostKeys(config.keysDir).map((k) => `[127.0.0.1]:${ports.sftp} ${k.public}\n`).join(''));
    const file = await fullDelivery(ctx, config, state.linkId!);
    const batch = (await ctx.registry.show(state.linkId!)).channels.includes('batch-query' as never);
    const niaFingerprint = (await readKey({ armoredKey: signingPublicKeyArmored(config.keysDir) })).getFingerprint().toUpperCase();
    console.log(guide({ dir, config, ports, state, file, batch, niaFingerprint }));
    console.log(`guide ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (err) {
    await stop();
    throw err;
  }
  await untilSignalled(stop);
}

export function register(program: Command, _ctx: CliContext): void {
  program
    .command('demo')
    .description('try it out: a drill installation (default ./demo-data) with a sample agency, its keys and a link delivered every minute, 100 000 synthetic rows, a console operator; starts every role and prints what to try next (Ctrl-C stops it; a second run reuses the directory)')
    .option('--http-port <port>', 'console port (default http.port, 8080)')
    .option('--sftp-port <port>', 'SFTP port (default sftp.port, 2222)')
    .option('--query-port <port>', 'online-query port (default query.port, 8443)')
    .action(async (o: { httpPort?: string; sftpPort?: string; queryPort?: string }) => {
      const flags = program.opts<GlobalFlags>();
      const dir = path.resolve(flags.dataDir ?? 'demo-data');
      const ctx = new CliContext(() => ({ ...flags, dataDir: dir }), process.env.NIA_LINK_CLOCK);
      // A demo never writes into a shared (perhaps production) control database.
      if (ctx.config.database.url) {
        throw new UserError('the demo makes a drill installation of its own, on the embedded SQLite control database in its data directory: unset NIA_LINK_DATABASE_URL (database.url) to run it', 'demo.database', 'refused');
      }
      try {
        await runDemo(ctx, dir, o);
      } finally {
        await ctx.close();
      }
    });
}
