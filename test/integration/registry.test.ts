import type Database from 'better-sqlite3';
import * as openpgp from 'openpgp';
import { execFileSync } from 'node:child_process';
import { inspectAgencyKey, inspectSshPublicKey } from '../../src/crypto';
import { connectionOf } from '../../src/db';
import { links } from '../../src/db/repositories';
import { addDays, taipeiDate } from '../../src/domain';
import { FormService, renderHtml } from '../../src/forms';
import { listLog, verifyLog } from '../../src/usagelog';
import { ALL_TOPICS, application, approvedLink, openWorld, RULES_TEXT, servicesOn, STAMPED_FORM, type AgencyKeys, type TestWorld, worldEachTest } from '../helpers/world';

let keys: AgencyKeys;
let w: TestWorld;
worldEachTest({ keys: (k) => (keys = k), world: (x) => (w = x) }, { agency: true });

/** New services on the same database: a registry keeps revisions it has read, so one edited behind its back needs a fresh one. */
const openWorldOn = (x: TestWorld) => servicesOn(x.cdb, x.clock);

const count = (table: string) => (w.cdb.sqlite.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
/** Edit the database behind the services' backs, on its write connection (`w.cdb.sqlite` only reads). */
const rawWrite = <T>(fn: (db: Database.Database) => T): Promise<T> => w.cdb.write((tx) => fn(connectionOf(tx)));

describe('link registry on a real SQLite database', () => {
  it('R3.3 an application is pending until NIA approves it, and approval is logged', async () => {
    const view = await w.registry.apply(application(keys), 'officer-a');
    expect(view).toMatchObject({ status: 'pending', revision: 1, agency: 'A001', account: 'a001', fields: ['person_id', 'nationality', 'crossed_at', 'port'] });
    expect(view.pgpFingerprint).toBe(keys.fingerprint);
    await w.rules.review({ linkId: view.id }, ALL_TOPICS, undefined, 'nia-r');
    const approved = await w.registry.approve(view.id, { by: 'nia-b', letterNo: '移署資字第1150001號', letterDate: '2026-03-01', stampedForm: STAMPED_FORM });
    expect(approved).toMatchObject({ status: 'active', approvedBy: 'nia-b', letterNo: '移署資字第1150001號', letterDate: '2026-03-01' });
    expect((await listLog(w.cdb.db, { linkId: view.id })).map((r) => r.type)).toEqual(['rules.added', 'link.applied', 'rules.reviewed', 'link.approved']);
  });

  it('R3.2 an unknown field is refused and nothing is written', async () => {
    const before = { link: count('link'), rev: count('link_revision'), log: count('usage_log'), acct: count('sftp_account'), doc: count('document') };
    await expect(w.registry.apply(application(keys, { fields: [{ name: 'person_id' }, { name: 'religion' }] }), 't')).rejects.toThrow(/unknown field 'religion'/);
    expect({ link: count('link'), rev: count('link_revision'), log: count('usage_log'), acct: count('sftp_account'), doc: count('document') }).toEqual(before);
  });

  it('a failure inside the write transaction leaves no partial rows (taken account name)', async () => {
    await w.registry.apply(application(keys), 't');
    const before = { link: count('link'), rev: count('link_revision'), log: count('usage_log'), doc: count('document') };
    await expect(w.registry.apply(application(keys), 't')).rejects.toThrow(/account a001 is taken/);
    expect({ link: count('link'), rev: count('link_revision'), log: count('usage_log'), doc: count('document') }).toEqual(before);
  });

  it('R3.3 a rejected application can never become active', async () => {
    const view = await w.registry.apply(application(keys), 't');
    await w.registry.reject(view.id, 'purpose not covered by the legal basis', 'nia');
    await expect(w.registry.approve(view.id, { by: 'nia' })).rejects.toThrow(/a rejected link cannot be approved/);
  });

  it('R5.1 an approved change makes revision 2 and keeps revision 1 unchanged', async () => {
    const id = await approvedLink(w, keys);
    const rev1 = (await links.revision(w.cdb.db, id, 1))!;
    const cr = await w.registry.fileChange(id, 'fields', { value: 'person_id,nationality' }, 'agency');
    expect((await w.registry.show(id)).revision).toBe(1); // nothing changes before approval
    const r = await w.registry.approveChange(cr.id, 'nia');
    expect(r.link).toMatchObject({ revision: 2, fields: ['person_id', 'nationality'] });
    expect(await links.revision(w.cdb.db, id, 1)).toEqual(rev1);
    const hist = await w.registry.history(id);
    expect(hist.revisions.map((x) => x.number)).toEqual([1, 2]);
    expect(hist.revisions[1].changeRequestId).toBe(cr.id);
    await expect(rawWrite((db) => db.prepare('UPDATE link_revision SET content = ? WHERE link_id = ? AND number = 1').run('{}', id))).rejects.toMatchObject({ message: expect.stringMatching(/immutable/) });
    await expect(w.registry.approveChange(cr.id, 'nia')).rejects.toThrow(/approved already/);
  });

  it('R3.2 a change that asks for an unknown field is refused when filed', async () => {
    const id = await approvedLink(w, keys);
    await expect(w.registry.fileChange(id, 'fields', { value: 'person_id,religion' }, 'a')).rejects.toThrow(/unknown field 'religion'/);
    expect((await w.registry.history(id)).changes).toEqual([]);
  });

  it('R12.1 an approved stop request records the end date and ends nothing itself (the compliance service ends links); it needs the agency\'s letter and a date not past', async () => {
    const id = await approvedLink(w, keys);
    const today = taipeiDate(w.clock.now());
    await expect(w.registry.fileChange(id, 'stop', { value: today }, 'agency')).rejects.toThrow(/a stop request needs the letter number of the agency's written request/);
    await expect(w.registry.fileChange(id, 'stop', { value: addDays(today, -1), letterNo: '府授字第1150000001號' }, 'agency')).rejects.toThrow(/is in the past/);
    const later = await w.registry.fileChange(id, 'stop', { value: addDays(today, 30), letterNo: '府授字第1150000001號' }, 'agency');
    expect((await w.registry.approveChange(later.id, 'nia')).link).toMatchObject({ status: 'active', endsOn: addDays(today, 30) });
    const now = await w.registry.fileChange(id, 'stop', { value: today, letterNo: '府授字第1150000002號' }, 'agency');
    expect((await w.registry.approveChange(now.id, 'nia')).link).toMatchObject({ status: 'active', endsOn: today });
    expect(await listLog(w.cdb.db, { linkId: id, type: 'link.terminated' })).toEqual([]);
  });

  it('R5.1 a rejected change leaves the link as it was', async () => {
    const id = await approvedLink(w, keys);
    const cr = await w.registry.fileChange(id, 'ips', { value: '10.0.0.0/24' }, 'agency');
    await w.registry.rejectChange(cr.id, 'not the agency\'s machines', 'nia');
    expect(await w.registry.show(id)).toMatchObject({ revision: 1, allowIps: ['127.0.0.1/32'] });
  });

  it('R8.2 an allow-list wider than a /24 (IPv4) or /56 (IPv6) is refused at apply and at an ips change; /24, /32, /56, /128 are accepted', async () => {
    const before = { link: count('link'), log: count('usage_log') };
    for (const wide of ['0.0.0.0/0', '10.0.0.0/16', '::/0', '2001:db8::/48']) {
      await expect(w.registry.apply(application(keys, { allowIps: ['127.0.0.1/32', wide] }), 't')).rejects.toThrow(/is wider than a \/(24|56): an allow-list names dedicated machines/);
    }
    expect({ link: count('link'), log: count('usage_log') }).toEqual(before);
    const id = await approvedLink(w, keys, { allowIps: ['10.1.2.0/24', '10.9.9.9/32', '2001:db8:0:100::/56', '2001:db8::1/128'] });
    for (const wide of ['0.0.0.0/0', '10.0.0.0/16', '::/0', '2001:db8::/48']) {
      await expect(w.registry.fileChange(id, 'ips', { value: `127.0.0.1/32,${wide}` }, 'agency')).rejects.toThrow(/wider than/);
    }
    expect((await w.registry.history(id)).changes).toEqual([]);
    const cr = await w.registry.fileChange(id, 'ips', { value: '10.1.3.0/24,10.9.9.8/32,2001:db8:0:200::/56,2001:db8::2/128' }, 'agency');
    expect((await w.registry.approveChange(cr.id, 'nia')).link.allowIps).toEqual(['10.1.3.0/24', '10.9.9.8/32', '2001:db8:0:200::/56', '2001:db8::2/128']);
  });

  it('R8.2 a link approved with a wide allow-list before the rule still files other changes and may narrow it', async () => {
    const id = await approvedLink(w, keys);
    // As a database from before the rule holds it: revision 1 allowing the whole Internet.
    await rawWrite((db) => {
      db.exec('DROP TRIGGER link_revision_no_update');
      db.prepare("UPDATE link_revision SET content = json_set(content, '$.allowIps', json('[\"0.0.0.0/0\"]')) WHERE link_id = ?").run(id);
    });
    const fresh = openWorldOn(w);
    const officer = await fresh.registry.fileChange(id, 'officer', { value: '李小華' }, 'agency');
    expect((await fresh.registry.approveChange(officer.id, 'nia')).link).toMatchObject({ officer: '李小華', allowIps: ['0.0.0.0/0'] });
    await expect(fresh.registry.fileChange(id, 'ips', { value: '0.0.0.0/0' }, 'agency')).rejects.toThrow(/wider than a \/24/);
    const narrow = await fresh.registry.fileChange(id, 'ips', { value: '127.0.0.1/32' }, 'agency');
    expect((await fresh.registry.approveChange(narrow.id, 'nia')).link.allowIps).toEqual(['127.0.0.1/32']);
  });

  it('R5.2 a change request records the agency\'s newest rules version on record at filing, or the one filed with it; its form names the version', async () => {
    const id = await approvedLink(w, keys);
    const v1 = (await w.registry.show(id)).rules!.document;
    const officer = await w.registry.fileChange(id, 'officer', { value: '李小華' }, 'agency');
    expect(officer.rulesDocument).toBe(v1);
    // A newer version on record (filed without a link) is what the next request names, by itself.
    const v2 = (await w.rules.add({ agency: 'A001', file: { filename: 'rules-v2.txt', content: Buffer.from(RULES_TEXT + '九、附則\n') } }, 'agency')).document;
    const supervisor = await w.registry.fileChange(id, 'supervisor', { value: '林主任' }, 'agency');
    expect(supervisor.rulesDocument).toBe(v2.id);
    // Or a new version comes with the change form.
    const withRules = await w.registry.fileChange(id, 'extend', { value: '2028-12-31', rules: { filename: 'rules-v3.txt', content: Buffer.from(RULES_TEXT + '十、施行\n') } }, 'agency');
    const v3 = (await w.rules.list({ agency: 'A001' }))[0];
    expect(v3.version).toBe(3);
    expect(withRules.rulesDocument).toBe(v3.id);
    await expect(w.registry.fileChange(id, 'rules', { file: { filename: 'r.txt', content: Buffer.from(RULES_TEXT) }, rules: { filename: 'r.txt', content: Buffer.from(RULES_TEXT) } }, 'agency')).rejects.toThrow(/a rules change carries the amended rules as the change's file/);
    const rulesChange = await w.rules.add({ agency: 'A001', file: { filename: 'rules-v4.txt', content: Buffer.from(RULES_TEXT + '十一、\n') }, linkId: id }, 'agency');
    expect((await w.registry.history(id)).changes.find((c) => c.id === rulesChange.changeId)!.rulesDocument).toBe(rulesChange.document.id);
    // The form of each change revision says which version came with it.
    const forms = new FormService(w.cdb, w.registry, w.clock);
    const line = async (rev: number) => (await forms.model(id, rev)).blocks.flatMap((b) => (b.kind === 'para' && b.runs[0]?.t === 'text' && b.runs[0].text.startsWith('隨附') ? [b.runs.map((r) => ('text' in r ? r.text : '')).join('')] : []));
    expect((await w.registry.approveChange(officer.id, 'nia')).link.revision).toBe(2);
    expect((await w.registry.approveChange(supervisor.id, 'nia')).link.revision).toBe(3);
    expect((await w.registry.approveChange(withRules.id, 'nia')).link.revision).toBe(4);
    expect(await line(1)).toEqual([]);
    expect(await line(2)).toEqual(['隨附本機關應用移民資訊管理規定：第 1 版']);
    expect(await line(3)).toEqual(['隨附本機關應用移民資訊管理規定：第 2 版']);
    expect(await line(4)).toEqual(['隨附本機關應用移民資訊管理規定：第 3 版']);
  });

  it('R14.2 agencies have contact addresses; a non-government body\'s notices reach its sponsor\'s contacts, and its form names the sponsor', async () => {
    await expect(w.registry.addAgency({ code: 'A002', name: '某機關', emails: ['not-an-address'] }, 't')).rejects.toThrow(/'not-an-address' is not an e-mail address/);
    await w.registry.setAgencyEmails('A001', ['audit@tax.example.gov.tw', 'AUDIT@tax.example.gov.tw', ' it@tax.example.gov.tw '], 'nia');
    const ngo = await w.registry.addAgency({ code: 'N001', name: '某保險公司', nonGovernment: true, sponsor: 'A001', emails: ['compliance@insurer.example.com'] }, 't');
    expect((await w.registry.listAgencies()).map((a) => [a.code, a.emails])).toEqual([
      ['A001', ['audit@tax.example.gov.tw', 'it@tax.example.gov.tw']],
      ['N001', ['compliance@insurer.example.com']],
    ]);
    expect(await w.registry.noticeContacts(w.cdb.db, ngo.id)).toEqual({
      agency: 'N001',
      emails: ['compliance@insurer.example.com'],
      sponsor: { code: 'A001', name: '財政部賦稅署', emails: ['audit@tax.example.gov.tw', 'it@tax.example.gov.tw'] },
    });
    expect(await listLog(w.cdb.db, { type: 'agency.contacts-set' })).toHaveLength(1);
    const id = await approvedLink(w, keys, { agency: 'N001', account: 'n001' });
    expect((await w.registry.show(id)).sponsor).toEqual({ code: 'A001', name: '財政部賦稅署' });
    const page = renderHtml(await new FormService(w.cdb, w.registry, w.clock).model(id));
    expect(page).toContain('目的事業主管機關（代為申請並督考）：<span class="value">財政部賦稅署（A001）</span>');
    const own = await approvedLink(w, keys, { account: 'a009' });
    expect(renderHtml(await new FormService(w.cdb, w.registry, w.clock).model(own))).not.toContain('目的事業主管機關');
  });

  it('R14.1 a non-government agency needs a government sponsor', async () => {
    await expect(w.registry.addAgency({ code: 'N001', name: '某公司', nonGovernment: true }, 't')).rejects.toThrow(/a non-government agency needs a sponsoring authority/);
    expect(await w.registry.addAgency({ code: 'N001', name: '某公司', nonGovernment: true, sponsor: 'A001' }, 't')).toMatchObject({ government: false });
    await expect(w.registry.addAgency({ code: 'N002', name: '某公司', nonGovernment: true, sponsor: 'N001' }, 't')).rejects.toThrow(/not a government agency/);
  });
});

describe('agency key validation', () => {
  // Read when each test runs: keys made after the module loaded must not look as if from the future.
  const now = () => new Date();
  const gen = (opts: Record<string, unknown>) =>
    openpgp.generateKey({ userIDs: [{ name: 'x', email: 'x@example.gov.tw' }], format: 'armored', ...opts } as any) as Promise<{ publicKey: string; privateKey: string }>;

  it('accepts a GnuPG Ed25519/Curve25519 key', async () => {
    const facts = await inspectAgencyKey(keys.publicArmored, now());
    expect(facts.fingerprint).toBe(keys.fingerprint);
  });
  it('refuses an unparseable key', async () => {
    await expect(inspectAgencyKey('-----BEGIN PGP PUBLIC KEY BLOCK-----\n\ngarbage\n-----END PGP PUBLIC KEY BLOCK-----\n', now())).rejects.toThrow(/not an OpenPGP public key/);
  });
  it('refuses an expired key', async () => {
    const k = await gen({ type: 'ecc', curve: 'ed25519Legacy', date: new Date(now().getTime() - 10 * 86400000), keyExpirationTime: 86400 });
    await expect(inspectAgencyKey(k.publicKey, now())).rejects.toThrow(/expired/);
  });
  it('refuses a weak RSA-1024 key', async () => {
    const k = await gen({ type: 'rsa', rsaBits: 1024, config: { minRSABits: 1024 } });
    await expect(inspectAgencyKey(k.publicKey, now())).rejects.toThrow(/rsa.*1024 is too weak/i);
  });
  it('refuses a NIST P-256 key (only RSA ≥ 2048 or Curve25519)', async () => {
    const k = await gen({ type: 'ecc', curve: 'nistP256' });
    await expect(inspectAgencyKey(k.publicKey, now())).rejects.toThrow(/too weak/);
  });
  it('refuses a v6 key GnuPG 2.2 cannot read', async () => {
    const k = await gen({ type: 'curve25519', config: { v6Keys: true } });
    await expect(inspectAgencyKey(k.publicKey, now())).rejects.toThrow(/version 6/);
  });
  it('refuses a secret key handed in by mistake', async () => {
    const k = await gen({ type: 'ecc', curve: 'ed25519Legacy' });
    await expect(inspectAgencyKey(k.privateKey, now())).rejects.toThrow(/secret key/);
  });
  it('a bad key refuses the application and writes nothing', async () => {
    const w2 = openWorld();
    try {
      await w2.registry.addAgency({ code: 'A001', name: 'x' }, 't');
      const k = await gen({ type: 'rsa', rsaBits: 1024, config: { minRSABits: 1024 } });
      await expect(w2.registry.apply(application(keys, { pgpKey: k.publicKey }), 't')).rejects.toThrow(/too weak/);
      expect(await w2.registry.list()).toEqual([]);
    } finally {
      w2.close();
    }
  });
  it('SSH keys: OpenSSH public keys parse; private keys, junk, DSA and short RSA are refused', () => {
    expect(inspectSshPublicKey(keys.sshPublic)).toMatchObject({ algorithm: 'ssh-ed25519', fingerprint: expect.stringMatching(/^SHA256:/) });
    const expected = execFileSync('ssh-keygen', ['-lf', `${keys.sshPrivateFile}.pub`]).toString().split(' ')[1];
    expect(inspectSshPublicKey(keys.sshPublic).fingerprint).toBe(expected);
    expect(() => inspectSshPublicKey(require('node:fs').readFileSync(keys.sshPrivateFile, 'utf8'))).toThrow(/private key/);
    expect(() => inspectSshPublicKey('ssh-ed25519 AAAAnotbase64')).toThrow(/not an OpenSSH public key/);
    const dir = keys.dir;
    execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '1024', '-N', '', '-f', `${dir}/weak_rsa`]);
    expect(() => inspectSshPublicKey(require('node:fs').readFileSync(`${dir}/weak_rsa.pub`, 'utf8'))).toThrow(/RSA 1024 bits is too weak/);
  });
});

describe('usage log hash chain (R6.1, R6.3)', () => {
  async function logWithRecords(): Promise<void> {
    const id = await approvedLink(w, keys);
    for (const who of ['李小華', '張三', '林四']) {
      const cr = await w.registry.fileChange(id, 'officer', { value: who }, 'agency');
      await w.registry.approveChange(cr.id, 'nia');
    }
  }
  const dropGuards = () =>
    rawWrite((db) => {
      for (const t of db.prepare("SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='usage_log'").all() as { name: string }[]) {
        db.exec(`DROP TRIGGER "${t.name}"`);
      }
    });

  it('R6.1 every registry action is recorded with a contiguous seq', async () => {
    await logWithRecords();
    const rows = await listLog(w.cdb.db, {});
    expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
    expect(rows.map((r) => r.type)).toEqual(['agency.added', 'rules.added', 'link.applied', 'rules.reviewed', 'link.approved', ...Array(3).fill(['change.filed', 'change.approved']).flat()]);
  });
  it('R6.3 an untouched log verifies', async () => {
    await logWithRecords();
    expect(await verifyLog(w.cdb)).toMatchObject({ ok: true, records: 11, firstSeq: 1, lastSeq: 11 });
  });
  it('R6.3 the log refuses UPDATE and DELETE while its guards are in place', async () => {
    await logWithRecords();
    await expect(rawWrite((db) => db.prepare("UPDATE usage_log SET actor = 'x' WHERE seq = 2").run())).rejects.toMatchObject({ message: expect.stringMatching(/append-only/) });
    await expect(rawWrite((db) => db.prepare('DELETE FROM usage_log WHERE seq = 2').run())).rejects.toMatchObject({ message: expect.stringMatching(/append-only/) });
  });
  it('R6.3 an edited record is named, even after the guards are dropped', async () => {
    await logWithRecords();
    await dropGuards();
    await rawWrite((db) => db.prepare("UPDATE usage_log SET actor = 'someone-else' WHERE seq = 4").run());
    expect(await verifyLog(w.cdb)).toMatchObject({ ok: false, bad: { seq: 4, reason: expect.stringMatching(/edited/) } });
  });
  it('R6.3 a removed record is named', async () => {
    await logWithRecords();
    await dropGuards();
    await rawWrite((db) => db.prepare('DELETE FROM usage_log WHERE seq = 5').run());
    expect(await verifyLog(w.cdb)).toMatchObject({ ok: false, bad: { seq: 5, reason: expect.stringMatching(/missing/) } });
  });
  it('R6.3 reordered records are detected at the first moved one', async () => {
    await logWithRecords();
    await dropGuards();
    const a = w.cdb.sqlite.prepare('SELECT * FROM usage_log WHERE seq = 6').get() as Record<string, unknown>;
    const b = w.cdb.sqlite.prepare('SELECT * FROM usage_log WHERE seq = 7').get() as Record<string, unknown>;
    await rawWrite((db) => {
      const put = db.prepare('UPDATE usage_log SET at=@at, type=@type, actor=@actor, object=@object, detail=@detail, digest=@digest, prev_hash=@prev_hash, hash=@hash WHERE seq=@seq');
      put.run({ ...b, seq: 6 });
      put.run({ ...a, seq: 7 });
    });
    expect(await verifyLog(w.cdb)).toMatchObject({ ok: false, bad: { seq: 6 } });
  });
  it('R6.3 an inserted record is detected', async () => {
    await logWithRecords();
    await dropGuards();
    const last = w.cdb.sqlite.prepare('SELECT * FROM usage_log WHERE seq = 11').get() as Record<string, unknown>;
    await rawWrite((db) => {
      db.prepare('UPDATE usage_log SET seq = 12 WHERE seq = 11').run();
      db.prepare('INSERT INTO usage_log (seq, at, type, agency, link_id, revision, actor, ip, channel, object, detail, digest, prev_hash, hash) VALUES (11, @at, @type, @agency, @link_id, @revision, @actor, @ip, @channel, @object, @detail, @digest, @prev_hash, @hash)').run({ ...last, type: 'file.downloaded' });
    });
    expect((await verifyLog(w.cdb)).ok).toBe(false);
  });
});
