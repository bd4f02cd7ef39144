import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { BatchService } from '../../src/batch';
import type { Config } from '../../src/config';
import { keyedIdHash, queryIdSecret } from '../../src/crypto';
import { batch, deliveries, inbox } from '../../src/db/repositories';
import { taipeiDate } from '../../src/domain';
import { SqliteSource, SupersededAttempt, sourceDbPath } from '../../src/extract';
import type { Source } from '../../src/extract/source';
import { seedSource } from '../../src/seed/sqlite';
import type { DailyCap } from '../../src/query/cap';
import { loadCatalogs } from '../../src/registry';
import { buildServices } from '../../src/services';
import { listLog } from '../../src/usagelog';
import { niaKeys, sftpConfig } from '../helpers/sftp';
import { approvedLink, cleanupKeys, cli, makeAgencyKeys, openTestWorld, tmpDir, type AgencyKeys, type AnyWorld } from '../helpers/world';

/** The daily cap in memory: the same all-or-nothing rule as the Redis one. */
class MemoryCap implements DailyCap {
  readonly counts = new Map<string, number>();
  async take(linkId: number, day: string, n: number, max: number) {
    const k = `${linkId}:${day}`;
    const used = this.counts.get(k) ?? 0;
    if (used + n > max) return { ok: false, used };
    this.counts.set(k, used + n);
    return { ok: true, used: used + n };
  }
  async used(linkId: number, day: string) {
    return this.counts.get(`${linkId}:${day}`) ?? 0;
  }
}

const F = ['person_id', 'nationality', 'direction', 'crossed_at', 'port'];
let keys: AgencyKeys;
let other: AgencyKeys;
let w: AnyWorld;
let config: Config;
let dir: string;
let source: string;
let cap: MemoryCap;
let service: BatchService;
let link: number;

const sql = (q: string) => execFileSync('sqlite3', ['-csv', source, q]).toString().replace(/\r/g, '').split('\n').filter(Boolean);
const quoted = (ids: string[]) => ids.map((x) => `'${x}'`).join(',');
const logOf = async (type: string) => (await listLog(w.cdb.db, { type })).map((r) => ({ ...r, detail: JSON.parse(r.detail) as Record<string, any> }));
const gpg = (k: AgencyKeys, args: string[], input?: Buffer) => spawnSync('gpg', ['--batch', '--yes', '--trust-model', 'always', ...args], { env: { ...process.env, GNUPGHOME: k.gnupgHome }, input });
const niaFpr = () => execFileSync('gpg', ['--with-colons', '--list-keys', 'nia'], { env: { ...process.env, GNUPGHOME: keys.gnupgHome } }).toString().split('\n').find((l) => l.startsWith('fpr'))!.split(':')[9];

function newService(over: Partial<{ maxIds: number }> = {}, openSource: () => Source = () => new SqliteSource(source)): BatchService {
  const services = buildServices(config, w.cdb, w.clock);
  return new BatchService({
    cdb: w.cdb,
    registry: services.registry,
    clock: w.clock,
    outbox: services.outbox,
    keysDir: config.keysDir,
    openSource,
    retentionDays: config.outbox.retentionDays,
    settings: { ...config.batch, ...over },
    cap,
    idSecret: queryIdSecret(config.keysDir),
  });
}

/** An upload as the SFTP role records it: a spool file and its row (the processor's input). */
async function upload(linkId: number, name: string, bytes: Buffer, account = 'b001'): Promise<number> {
  const spool = path.join(dir, `spool-${Math.random().toString(36).slice(2)}`);
  writeFileSync(spool, bytes, { mode: 0o600 });
  return await w.cdb.write((tx) =>
    inbox.insertUpload(tx, { linkId, account, ip: '127.0.0.1', name, kind: name.startsWith('subjects-') ? 'subjects' : 'batch', bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), spool, receivedAt: w.clock.now().toISOString() }),
  );
}

/** The agency's request made with GnuPG: signed by `signer` (null: unsigned), encrypted to NIA unless `encrypt` is false. */
function request(text: string, opts: { signer?: AgencyKeys | null; encrypt?: boolean } = {}): Buffer {
  const signer = opts.signer === undefined ? keys : opts.signer;
  const args = opts.encrypt === false ? ['--sign'] : signer ? ['--sign', '--encrypt', '-r', niaFpr()] : ['--encrypt', '-r', niaFpr()];
  const r = gpg(signer ?? keys, ['-o', '-', ...(signer ? ['-u', signer.fingerprint] : []), ...args], Buffer.from(text, 'utf8'));
  if (r.status !== 0) throw new Error(r.stderr.toString());
  return r.stdout;
}

const outboxOf = (linkId: number) => path.join(config.dataDir, 'outbox', String(linkId));
const outboxFiles = (linkId: number) => (existsSync(outboxOf(linkId)) ? readdirSync(outboxOf(linkId)).filter((f) => !f.startsWith('.')) : []);

/** gpg --decrypt as the agency: the plaintext and whether NIA's signature verified. */
function decrypt(file: string): { text: string; goodsig: boolean } {
  const r = spawnSync('gpg', ['--batch', '--status-fd', '2', '--decrypt', file], { env: { ...process.env, GNUPGHOME: keys.gnupgHome } });
  return { text: r.stdout.toString().replace(/\r/g, ''), goodsig: r.status === 0 && r.stderr.toString().includes('GOODSIG') };
}
const verifies = (file: string) => gpg(keys, ['--verify', `${file}.asc`, file]).status === 0;

beforeAll(async () => {
  keys = makeAgencyKeys();
  other = makeAgencyKeys();
  w = await openTestWorld();
  dir = tmpDir('nia-link-batch-');
  config = sftpConfig(w.dataDir);
  await niaKeys(config, keys);
  await niaKeys(config, other);
  source = sourceDbPath(w.dataDir);
  seedSource({ file: source, dataset: 'entry_exit', rows: 20_000, seed: 11, catalog: loadCatalogs().get('entry_exit')!, now: new Date() });
  cap = new MemoryCap();
  service = newService();
  link = await approvedLink(w, keys, { account: 'b001', methods: ['sftp-pull', 'batch-query'], fields: F.map((name) => ({ name })), scope: { text: 'direction in entry' }, maxIdsPerDay: 1000 });
  // The other agency, with a link of its own: its key is registered, but not on this link.
  await approvedLink(w, other, { agency: 'A002', account: 'o001', methods: ['sftp-pull', 'batch-query'] });
});
afterAll(async () => {
  await w?.close();
  cleanupKeys(keys);
  cleanupKeys(other);
  rmSync(dir, { recursive: true, force: true });
});

/** Persons of the source (some with entries, some only exits), ten well-formed ids nobody has, one malformed line. */
function people(offset: number, n: number): string[] {
  return sql(`select person_id from entry_exit group by person_id order by person_id limit ${n} offset ${offset}`);
}
const UNKNOWN = Array.from({ length: 10 }, (_, i) => {
  const b = 90000000 + i + 1;
  let s = 3 + 4 * 9;
  let x = b;
  for (let k = 1; k <= 8; k++) {
    s += (x % 10) * k;
    x = Math.floor(x / 10);
  }
  return `I${b}${(10 - (s % 10)) % 10}`;
});

describe('R2.2 a batch request is answered with exactly the listed persons\' in-scope records', () => {
  const listed = () => people(100, 40);
  let outcome: Awaited<ReturnType<BatchService['process']>>;
  let id: number;

  beforeAll(async () => {
    const text = ['# reference: 健保承字第1150000001號', 'person_id', ...listed(), 'A123456788', ...UNKNOWN].join('\n') + '\n';
    id = await upload(link, 'req-001.csv.pgp', request(text));
    outcome = await service.process(id);
  });

  it('R2.2: the result decrypts and verifies with gpg and holds exactly the listed persons\' records inside the scope, approved fields only (independent sqlite3)', () => {
    expect(outcome).toMatchObject({ state: 'answered', code: null });
    const { text, goodsig } = decrypt(path.join(outboxOf(link), 'req-001.result.csv.pgp'));
    expect(goodsig).toBe(true);
    const [header, ...rows] = text.split('\n').filter(Boolean);
    expect(header).toBe(['request_id', ...F].join(','));
    const ids = [...listed(), ...UNKNOWN];
    const want = sql(`select person_id, ${F.join(', ')} from entry_exit where person_id in (${quoted(ids)}) and direction = 'entry'`);
    expect(want.length).toBeGreaterThan(0);
    expect(rows.sort()).toEqual(want.sort());
  });

  it('R2.2: the signed manifest counts identifiers sent, invalid (with the line), matched, not matched and rows', () => {
    const file = path.join(outboxOf(link), 'req-001.result.manifest.json');
    expect(verifies(file)).toBe(true);
    const m = JSON.parse(readFileSync(file, 'utf8'));
    const matched = sql(`select count(distinct person_id) from entry_exit where person_id in (${quoted(listed())}) and direction = 'entry'`)[0];
    const rows = sql(`select count(*) from entry_exit where person_id in (${quoted(listed())}) and direction = 'entry'`)[0];
    expect(m.identifiers).toEqual({ sent: 51, valid: 50, duplicates: 0, invalid: 1, matched: Number(matched), notMatched: 50 - Number(matched) });
    expect(m.invalid).toEqual([{ line: 43, reason: expect.stringContaining('check digit') }]);
    expect(m.rows).toBe(Number(rows));
    expect(m.request).toMatchObject({ name: 'req-001.csv.pgp', reference: '健保承字第1150000001號', key: 'person_id' });
    expect(m.confidentiality.zh).toContain('移民署');
    expect(m.scope.text.zh).toContain('入境');
  });

  it('R2.2: the upload is gone from disk, the answer is a built delivery of the link (listed in /outbox), and the log keeps batch.received and batch.answered', async () => {
    const up = (await inbox.uploadById(w.cdb.db, id))!;
    expect(existsSync(up.spool)).toBe(false);
    expect(up.state).toBe('answered');
    expect((await deliveries.builtForLink(w.cdb.db, link)).map((d) => d.fileName)).toContain('req-001.result.csv.pgp');
    const received = (await logOf('batch.received')).find((r) => r.detail.upload === id)!;
    expect(received.detail).toMatchObject({ reference: '健保承字第1150000001號', ids: 50, invalid: 1, sha256: up.sha256 });
    expect(received.detail.idHashes).toContain(keyedIdHash(queryIdSecret(config.keysDir), listed()[0]));
    // No identifier in clear anywhere in the records.
    expect(JSON.stringify(await logOf('batch.received'))).not.toContain(listed()[0]);
    expect((await logOf('batch.answered')).find((r) => r.detail.upload === id)!.detail).toMatchObject({ valid: 50, invalid: 1 });
  });

  it('R6.1: log who-queried --id finds an identifier sent in a batch, with the link', () => {
    const r = cli(w.dataDir, ['log', 'who-queried', '--id', listed()[3], '--json']);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout);
    expect(rows).toEqual([expect.objectContaining({ type: 'batch.received', link, reference: '健保承字第1150000001號' })]);
  });

  it('R2.2: processing an upload again publishes nothing twice', async () => {
    const before = (await deliveries.list(w.cdb.db, link)).length;
    const again = await service.process(id);
    expect(again).toMatchObject({ state: 'answered', delivery: outcome.delivery });
    expect((await deliveries.list(w.cdb.db, link)).length).toBe(before);
    expect((await logOf('batch.answered')).filter((r) => r.detail.upload === id)).toHaveLength(1);
  });

  it('R2.2: batch list shows the request and its outcome', () => {
    const r = cli(w.dataDir, ['batch', 'list', '--link', String(link), '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toContainEqual(expect.objectContaining({ id, name: 'req-001.csv.pgp', state: 'answered', ids: 50, reference: '健保承字第1150000001號', file: 'req-001.result.csv.pgp' }));
  });
});

describe('R2.2 a refused request gets a signed error file and a batch.refused record, and no result', () => {
  const good = () => ['# reference: 參考第1號', 'person_id', ...people(300, 5)].join('\n') + '\n';
  async function refused(name: string, bytes: Buffer, code: string, svc = service, linkId = link) {
    const id = await upload(linkId, name, bytes);
    const o = await svc.process(id);
    expect(o).toMatchObject({ state: 'refused', code });
    const base = name.replace(/\.csv\.pgp$/, '');
    const files = outboxFiles(linkId).filter((f) => f.startsWith(`${base}.`));
    expect(files.sort()).toEqual([`${base}.error.json`, `${base}.error.json.asc`]);
    const errorFile = path.join(outboxOf(linkId), `${base}.error.json`);
    expect(verifies(errorFile)).toBe(true);
    expect(JSON.parse(readFileSync(errorFile, 'utf8'))).toMatchObject({ code, request: { name } });
    expect((await logOf('batch.refused')).filter((r) => r.detail.upload === id).map((r) => r.detail.code)).toEqual([code]);
    expect((await logOf('batch.received')).some((r) => r.detail.upload === id)).toBe(false);
    const up = (await inbox.uploadById(w.cdb.db, id))!;
    expect(up).toMatchObject({ state: 'refused', outcomeCode: code });
    expect(existsSync(up.spool)).toBe(false);
  }

  it('R2.2: an unsigned request → signature.missing', () => refused('r-unsigned.csv.pgp', request(good(), { signer: null }), 'signature.missing'));
  it('R2.2: a request signed by another agency\'s key → signature.unknown-key', () => refused('r-other.csv.pgp', request(good(), { signer: other }), 'signature.unknown-key'));
  it('R2.2: a signed request that is not encrypted, or plain CSV → not-encrypted', async () => {
    await refused('r-clear.csv.pgp', request(good(), { encrypt: false }), 'not-encrypted');
    await refused('r-plain.csv.pgp', Buffer.from(good()), 'not-encrypted');
  });
  it('R2.2: a wrong header, or no well-formed identifier → format.invalid', async () => {
    await refused('r-header.csv.pgp', request('# reference: x\nname\nA123456789\n'), 'format.invalid');
    await refused('r-none.csv.pgp', request('# reference: x\nperson_id\nA123456788\nnot-an-id\n'), 'format.invalid');
  });
  it('R2.2: a request without its reference → reference.missing', () => refused('r-noref.csv.pgp', request(['person_id', ...people(300, 5)].join('\n')), 'reference.missing'));
  it('R2.2: more identifiers than batch.maxIds → ids.too-many', () => refused('r-many.csv.pgp', request(good()), 'ids.too-many', newService({ maxIds: 4 })));
  it('R3.5: a request that would pass the link\'s daily cap (shared with the online query) takes nothing → cap.reached', async () => {
    const day = taipeiDate(w.clock.now());
    const before = await cap.used(link, day);
    cap.counts.set(`${link}:${day}`, 998);
    await refused('r-cap.csv.pgp', request(good()), 'cap.reached');
    expect(await cap.used(link, day)).toBe(998);
    cap.counts.set(`${link}:${day}`, before);
  });
  it('R2.2: a request on a suspended link → link.not-usable', async () => {
    const suspended = await approvedLink(w, keys, { account: 'b002', methods: ['sftp-pull', 'batch-query'], fields: F.map((name) => ({ name })), scope: { text: 'direction in entry' } });
    await buildServices(config, w.cdb, w.clock).compliance.suspend(suspended, '稽核缺失', 'test');
    await refused('r-suspended.csv.pgp', request(good()), 'link.not-usable', service, suspended);
  });
  it('R2.2: a link without batch-query → method.not-approved', async () => {
    const pull = await approvedLink(w, keys, { account: 'b003', methods: ['sftp-pull'] });
    await refused('r-method.csv.pgp', request(good()), 'method.not-approved', service, pull);
  });
});

describe('R3.4 subject lists scope deliveries', () => {
  let s: number;
  const exitPeople = (offset: number) => sql(`select person_id from entry_exit where direction = 'exit' group by person_id order by person_id limit 30 offset ${offset}`);
  const list = (ids: string[]) => request(['person_id', ...ids].join('\n') + '\n');
  const deliver = (full: boolean) => buildServices(config, w.cdb, w.clock).extracts.run({ key: `subjects-${Math.random()}`, linkId: s, full, trigger: 'manual' }, { finalAttempt: true });
  const exits = (ids: string[]) => sql(`select ${F.join(', ')} from entry_exit where person_id in (${quoted(ids)}) and direction = 'exit'`).sort();
  const rowsOf = (file: string) => decrypt(file).text.split('\n').filter(Boolean).slice(1).sort();

  beforeAll(async () => {
    s = await approvedLink(w, keys, { account: 's001', methods: ['sftp-pull'], fields: F.map((name) => ({ name })), scope: { text: 'subjects; direction in exit', maxSubjects: 1000 } });
  });

  it('R3.4: without a list a subjects link delivers nothing and says why', async () => {
    await expect(deliver(true)).rejects.toThrow(/subject list/);
    expect((await logOf('extract.failed')).filter((r) => r.linkId === s).map((r) => r.detail.code)).toEqual(['subjects.missing']);
    expect(cli(w.dataDir, ['link', 'show', String(s)]).stdout).toMatch(/subject list\s+none uploaded yet/);
  });

  it('R3.4: a list upload scopes the next delivery; a replacing list drops removed persons and gives added persons their older records; only the current list is kept', async () => {
    const s1 = exitPeople(200);
    const s2 = exitPeople(215);
    const first = await upload(s, 'subjects-1.csv.pgp', list(s1), 's001');
    expect(await service.process(first)).toMatchObject({ state: 'in-force' });
    expect(existsSync((await inbox.uploadById(w.cdb.db, first))!.spool)).toBe(false);
    const d1 = await deliver(true);
    expect(rowsOf(d1.path!)).toEqual(exits(s1));
    const show = cli(w.dataDir, ['link', 'show', String(s)]).stdout;
    expect(show).toMatch(/subject list\s+30 persons by person_id, in force since/);
    expect(show).not.toContain(s1[0]);

    w.clock.set(new Date(w.clock.now().getTime() + 60_000).toISOString());
    const second = await upload(s, 'subjects-2.csv.pgp', list(s2), 's001');
    expect(await service.process(second)).toMatchObject({ state: 'in-force' });
    expect((await inbox.uploadById(w.cdb.db, first))!.state).toBe('replaced');
    w.clock.set(new Date(w.clock.now().getTime() + 60_000).toISOString());
    const d2 = await deliver(false);
    expect(d2.mode).toBe('incremental');
    const added = s2.filter((x) => !s1.includes(x));
    expect(added.length).toBe(15);
    // Nothing changed in the source since d1: the increment is exactly the added persons' records.
    expect(rowsOf(d2.path!)).toEqual(exits(added));
    expect((await batch.subjectIds(w.cdb.db, s)).sort()).toEqual([...s2].sort());
    const rec = (await logOf('subjects.in-force')).find((r) => r.detail.upload === second)!;
    expect(rec.detail).toMatchObject({ count: 30, added: 15, removed: 15, replaced: { upload: first, count: 30 } });
    // A full delivery now holds the new list's persons only.
    expect(rowsOf((await deliver(true)).path!)).toEqual(exits(s2));
  });

  it('R3.4: an ended link keeps no list: the purge removes it and the log keeps its count and hash', async () => {
    const list = (await batch.subjectListOf(w.cdb.db, s))!;
    expect(list.count).toBe(30);
    await w.cdb.write((tx) => w.registry.terminate(tx, s, 'agency-notice', 'test', w.clock.now()));
    await buildServices(config, w.cdb, w.clock).extracts.purge('test');
    expect(await batch.subjectListOf(w.cdb.db, s)).toBeUndefined();
    expect(await batch.subjectIds(w.cdb.db, s)).toEqual([]);
    expect((await logOf('subjects.disposed')).filter((r) => r.linkId === s).map((r) => r.detail)).toEqual([expect.objectContaining({ count: 30, sha256: list.sha256 })]);
  });
});

describe('R2.2 a worker that stalls past its job lock and wakes after another answered the upload publishes nothing', () => {
  it('one delivery, one result file (the one recorded), one batch.received and one batch.answered', async () => {
    const id = await upload(link, 'req-stall.csv.pgp', request(['# reference: 參考第9號', 'person_id', ...people(400, 5)].join('\n') + '\n'));
    let reached!: () => void;
    const waiting = new Promise<void>((r) => (reached = r));
    let thaw!: () => void;
    const gate = new Promise<void>((r) => (thaw = r));
    // The first worker freezes while its answer streams (a paused VM); the second runs the same job.
    const frozenSource = (): Source => {
      const inner = new SqliteSource(source);
      return new Proxy(inner, {
        get(t, p) {
          if (p === 'answerCsv')
            return (a: Parameters<Source['answerCsv']>[0]) => {
              const x = t.answerCsv(a);
              const hold = new TransformStream<Uint8Array, Uint8Array>({
                async start() {
                  reached();
                  await gate;
                },
              });
              return { ...x, stream: x.stream.pipeThrough(hold) };
            };
          const v = (t as any)[p];
          return typeof v === 'function' ? v.bind(t) : v;
        },
      });
    };
    const first = newService({}, frozenSource).process(id);
    first.catch(() => undefined);
    await waiting;
    const second = await newService().process(id);
    expect(second).toMatchObject({ state: 'answered' });
    const file = path.join(outboxOf(link), 'req-stall.result.csv.pgp');
    const published = readFileSync(file);
    thaw();
    await expect(first).rejects.toBeInstanceOf(SupersededAttempt);
    const rows = (await deliveries.list(w.cdb.db, link)).filter((d) => d.idempotencyKey === `batch:${id}`);
    expect(rows.map((d) => [d.id, d.status])).toEqual([[second.delivery, 'built']]);
    expect(readFileSync(file)).toEqual(published);
    expect(createHash('sha256').update(published).digest('hex')).toBe(rows[0].cipherSha256);
    expect(outboxFiles(link).filter((f) => f.startsWith('req-stall.'))).toEqual(['req-stall.result.csv.pgp', 'req-stall.result.manifest.json', 'req-stall.result.manifest.json.asc']);
    expect(readdirSync(outboxOf(link)).filter((f) => f.startsWith('.req-stall.'))).toEqual([]);
    expect((await logOf('batch.received')).filter((r) => r.detail.upload === id)).toHaveLength(1);
    expect((await logOf('batch.answered')).filter((r) => r.detail.upload === id)).toHaveLength(1);
  });
});
