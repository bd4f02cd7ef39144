import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../src/config';
import { batch, inbox } from '../../src/db/repositories';
import { sourceDbPath } from '../../src/extract';
import { seedSource } from '../../src/seed/sqlite';
import type { RunningService } from '../../src/main';
import { startService } from '../../src/main';
import { loadCatalogs } from '../../src/registry';
import { niaKeys, sftpBatch, sftpConfig } from '../helpers/sftp';
import { approvedLink, cleanupKeys, makeAgencyKeys, openTestWorld, tmpDir, type AgencyKeys, type AnyWorld } from '../helpers/world';

const F = ['person_id', 'nationality', 'direction', 'crossed_at', 'port'];
let keys: AgencyKeys;
let w: AnyWorld;
let config: Config;
let svc: RunningService;
let dir: string;
let source: string;
let link: number;
let subjectsLink: number;

const sql = (q: string) => execFileSync('sqlite3', ['-csv', source, q]).toString().replace(/\r/g, '').split('\n').filter(Boolean);
const quoted = (ids: string[]) => ids.map((x) => `'${x}'`).join(',');
const env = () => ({ ...process.env, GNUPGHOME: keys.gnupgHome });
const niaFpr = () => execFileSync('gpg', ['--with-colons', '--list-keys', 'nia'], { env: env() }).toString().split('\n').find((l) => l.startsWith('fpr'))!.split(':')[9];

/** The request file as the agency makes it with GnuPG (unsigned when `sign` is false). */
function requestFile(name: string, text: string, sign = true): string {
  const plain = path.join(dir, `${name}.csv`);
  writeFileSync(plain, text);
  const out = path.join(dir, name);
  execFileSync('gpg', ['--batch', '--yes', '--trust-model', 'always', ...(sign ? ['-u', keys.fingerprint, '--sign'] : []), '--encrypt', '-r', niaFpr(), '-o', out, plain], { env: env(), stdio: 'ignore' });
  return out;
}

/** Waits (by polling the database, without a deadline of its own beyond the test's) for the upload's outcome. */
async function outcomeOf(linkId: number, name: string): Promise<inbox.InboxUploadRow> {
  for (;;) {
    const row = (await inbox.uploadsOf(w.cdb.db, { linkId })).find((u) => u.name === name);
    if (row && !['pending', 'processing'].includes(row.state)) return row;
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  keys = makeAgencyKeys();
  w = await openTestWorld();
  dir = tmpDir('nia-link-batch-sftp-');
  config = sftpConfig(w.dataDir);
  await niaKeys(config, keys);
  source = sourceDbPath(w.dataDir);
  seedSource({ file: source, dataset: 'entry_exit', rows: 10_000, seed: 5, catalog: loadCatalogs().get('entry_exit')!, now: new Date() });
  link = await approvedLink(w, keys, { account: 'b001', methods: ['sftp-pull', 'batch-query'], fields: F.map((name) => ({ name })), scope: { text: 'direction in exit' } });
  subjectsLink = await approvedLink(w, keys, { account: 's001', methods: ['sftp-pull'], fields: F.map((name) => ({ name })), scope: { text: 'subjects; direction in entry', maxSubjects: 100 } });
  svc = await startService({ ...config, database: w.database }, ['sftp', 'worker'], () => undefined, w.clock);
});
afterAll(async () => {
  await svc?.stop();
  await w?.close();
  cleanupKeys(keys);
  rmSync(dir, { recursive: true, force: true });
});

const put = (account: string, file: string, name: string) => sftpBatch(svc.sftpPort!, keys.sshPrivateFile, account, `put ${file} /inbox/${name}`);
const get = (account: string, name: string) => {
  const local = path.join(dir, `got-${name}`);
  return sftpBatch(svc.sftpPort!, keys.sshPrivateFile, account, `get /outbox/${name} ${local}`).then((r) => ({ ...r, local }));
};

describe('R2.2 batch requests through the real OpenSSH sftp client and the worker', () => {
  it('R2.2: `sftp put` of a signed, encrypted list gives a result in /outbox that gpg decrypts and verifies, exactly the listed persons\' in-scope records; the upload is gone', async () => {
    const ids = sql('select person_id from entry_exit group by person_id order by person_id limit 25 offset 40');
    const file = requestFile('q-1.csv.pgp', ['# reference: 函查第1號', 'person_id', ...ids].join('\n') + '\n');
    const r = await put('b001', file, 'q-1.csv.pgp');
    expect(r.code).toBe(0);
    const up = await outcomeOf(link, 'q-1.csv.pgp');
    expect(up.state).toBe('answered');
    expect(existsSync(up.spool)).toBe(false);
    const g = await get('b001', 'q-1.result.csv.pgp');
    expect(g.code).toBe(0);
    const dec = spawnSync('gpg', ['--batch', '--status-fd', '2', '--decrypt', g.local], { env: env() });
    expect(dec.stderr.toString()).toContain('GOODSIG');
    const [header, ...rows] = dec.stdout.toString().replace(/\r/g, '').split('\n').filter(Boolean);
    expect(header).toBe(['request_id', ...F].join(','));
    expect(rows.sort()).toEqual(sql(`select person_id, ${F.join(', ')} from entry_exit where person_id in (${quoted(ids)}) and direction = 'exit'`).sort());
    const m = await get('b001', 'q-1.result.manifest.json');
    expect(JSON.parse(readFileSync(m.local, 'utf8')).identifiers).toMatchObject({ sent: 25, valid: 25, invalid: 0 });
  });

  it('R2.2: an unsigned request put over sftp gets a signed error file in /outbox and no result', async () => {
    const file = requestFile('q-2.csv.pgp', '# reference: x\nperson_id\nA800000014\n', false);
    expect((await put('b001', file, 'q-2.csv.pgp')).code).toBe(0);
    expect(await outcomeOf(link, 'q-2.csv.pgp')).toMatchObject({ state: 'refused', outcomeCode: 'signature.missing' });
    const ls = await sftpBatch(svc.sftpPort!, keys.sshPrivateFile, 'b001', 'ls -1 /outbox');
    expect(ls.stdout).toContain('q-2.error.json');
    expect(ls.stdout).toContain('q-2.error.json.asc');
    expect(ls.stdout).not.toContain('q-2.result');
    const e = await get('b001', 'q-2.error.json');
    expect(JSON.parse(readFileSync(e.local, 'utf8'))).toMatchObject({ code: 'signature.missing' });
  });

  it('R3.4: a subject list put over sftp comes into force and leaves /inbox', async () => {
    const ids = sql("select person_id from entry_exit where direction = 'entry' group by person_id order by person_id limit 12");
    const file = requestFile('subjects-main.csv.pgp', ['person_id', ...ids].join('\n') + '\n');
    expect((await put('s001', file, 'subjects-main.csv.pgp')).code).toBe(0);
    expect(await outcomeOf(subjectsLink, 'subjects-main.csv.pgp')).toMatchObject({ state: 'in-force' });
    expect(await batch.subjectListOf(w.cdb.db, subjectsLink)).toMatchObject({ count: 12, keyField: 'person_id' });
    const ls = await sftpBatch(svc.sftpPort!, keys.sshPrivateFile, 's001', 'ls -1 /inbox');
    expect(ls.stdout).not.toContain('subjects-main');
  });
});
