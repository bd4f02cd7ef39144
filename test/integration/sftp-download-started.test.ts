import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../src/config';
import type { DeliveryView } from '../../src/extract';
import type { RunningService } from '../../src/main';
import { listLog } from '../../src/usagelog';
import { detect } from '../../src/usagelog/anomalies';
import { bigDelivery, buildDelivery, niaKeys, run, SSH_OPTS, sftpBatch, sftpConfig, startSftp } from '../helpers/sftp';
import { approvedLink, cleanupKeys, makeAgencyKeys, eventually, openTestWorld, refuseInserts, tmpDir, type AgencyKeys, type AnyWorld } from '../helpers/world';

const ROOT = path.resolve(__dirname, '..', '..');

let keys: AgencyKeys;
let w: AnyWorld;
let config: Config;
let svc: RunningService;
let port: number;
let linkId: number;
let d: DeliveryView;
let dir: string;

const logOf = async (type: string) => (await listLog(w.cdb.db, { type })).map((r) => ({ ...r, detail: JSON.parse(r.detail) }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: () => boolean, ms: number): Promise<boolean> {
  for (const t0 = Date.now(); Date.now() - t0 < ms; await sleep(50)) if (what()) return true;
  return what();
}

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = await openTestWorld();
  dir = tmpDir('nia-link-download-started-');
  config = sftpConfig(w.dataDir, { NIA_LINK_SFTP_RECHECK: '60' });
  await niaKeys(config, keys);
  linkId = await approvedLink(w, keys);
  d = await buildDelivery(w, config, linkId);
  ({ svc, port } = await startSftp(config, w));
});
afterAll(async () => {
  await svc?.stop();
  await w?.close();
  cleanupKeys(keys);
  rmSync(dir, { recursive: true, force: true });
});

describe('R6.1 every download is in the usage log before its first byte is served', () => {
  it('R6.1: kill -9 of the SFTP process in the middle of a large download: the usage log shows the started download', async () => {
    const big = await bigDelivery(w, linkId, 64);
    // The SFTP role in a process of its own, to be killed without warning.
    const script = path.join(dir, 'sftp-role.ts');
    writeFileSync(
      script,
      `import { loadConfig } from ${JSON.stringify(path.join(ROOT, 'src', 'config'))};
import { startService } from ${JSON.stringify(path.join(ROOT, 'src', 'main'))};
const config = loadConfig({ dataDir: ${JSON.stringify(w.dataDir)} }, { REDIS_URL: ${JSON.stringify(config.redisUrl)}, NIA_LINK_LOG_LEVEL: 'silent', NIA_LINK_SFTP_HOST: '127.0.0.1', NIA_LINK_SFTP_PORT: '0', NIA_LINK_SFTP_PROCESSES: '1'${w.database.url ? `, NIA_LINK_DATABASE_URL: ${JSON.stringify(w.database.url)}` : ''} });
startService(config, ['sftp'], () => undefined).then((s) => console.log('port ' + s.sftpPort));
`,
    );
    // Node itself runs the server (tsx as a loader, not as a wrapper process): the kill reaches the server.
    const role: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    role.stdout!.on('data', (b) => (out += b));
    role.stderr!.on('data', (b) => (out += b));
    const exited = new Promise<string | null>((resolve) => role.once('exit', (_code, signal) => resolve(signal)));
    try {
      expect(await until(() => /port \d+/.test(out), 60_000)).toBe(true);
      const rolePort = Number(/port (\d+)/.exec(out)![1]);
      const local = path.join(dir, 'big.bin');
      // A bandwidth limit keeps the download going long enough to be cut in the middle.
      const get = run('sftp', ['-P', String(rolePort), '-i', keys.sshPrivateFile, ...SSH_OPTS, '-l', '8192', '-b', '-', 'a001@127.0.0.1'], `get /outbox/${big.name} ${local}\n`, 120_000);
      expect(await until(() => existsSync(local) && statSync(local).size > 0, 60_000)).toBe(true);
      role.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      const r = await get;
      expect(r.code).not.toBe(0);
      expect(statSync(local).size).toBeLessThan(64 << 20);
    } finally {
      if (role.exitCode === null && role.signalCode === null) role.kill('SIGKILL');
    }
    const started = (await logOf('file.download-started')).filter((x) => x.object === big.name);
    expect(started).toHaveLength(1);
    expect(started[0]).toMatchObject({ actor: 'a001', ip: '127.0.0.1', linkId, channel: 'sftp-pull' });
    expect(started[0].detail).toMatchObject({ delivery: big.id, offset: 0, size: 64 << 20 });
    // Killed before CLOSE: the started record is the only trace, and it is there.
    expect((await logOf('file.downloaded')).filter((x) => x.object === big.name)).toHaveLength(0);
    rmSync(big.file);
  });

  it('R6.1: when the started download cannot be logged, the OPEN is refused and not one byte is served', async () => {
    const local = path.join(dir, 'refused.pgp');
    const undo = await refuseInserts(w.cdb, 'usage_log', "NEW.type = 'file.download-started'");
    let r;
    try {
      r = await sftpBatch(port, keys.sshPrivateFile, 'a001', `get /outbox/${path.basename(d.path!)} ${local}`);
    } finally {
      await undo();
    }
    expect(r.code).not.toBe(0);
    expect(existsSync(local) ? statSync(local).size : 0).toBe(0);
    expect((await logOf('file.downloaded')).filter((x) => x.object === path.basename(d.path!))).toHaveLength(0);
  });

  it('R6.1: a file fetched three times in a session has one started record and its completion records; the repeated-download rule counts 3, not more', async () => {
    const name = path.basename(d.path!);
    const before = (await logOf('file.download-started')).filter((x) => x.object === name).length;
    const r = await sftpBatch(port, keys.sshPrivateFile, 'a001', `get /outbox/${name} ${dir}/1\nget /outbox/${name} ${dir}/2\nget /outbox/${name} ${dir}/3`);
    expect(r.code).toBe(0);
    const started = (await logOf('file.download-started')).filter((x) => x.object === name);
    expect(started.length - before).toBe(1);
    // The completion records are written as the files close and the session ends, after the client is gone.
    let done: Awaited<ReturnType<typeof logOf>> = [];
    await eventually(async () => {
      done = (await logOf('file.downloaded')).filter((x) => x.object === name);
      expect(done.reduce((n, x) => n + (x.detail.opens ?? 1), 0)).toBe(3);
    });
    // Each completion record comes after the started record of its file.
    expect(done.every((x) => x.seq > started[started.length - 1].seq)).toBe(true);
    const s = { ...config.anomaly, repeatedDownload: { enabled: true, threshold: 3, windowHours: 24 } };
    const hits = (await detect(w.cdb.db, await listLog(w.cdb.db, {}), s)).filter((h) => h.rule === 'repeated-download' && h.key.endsWith(name));
    expect(hits).toHaveLength(1);
    expect(hits[0].detail.downloads).toBe(3);
  });
});
