import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openControlDb } from '../../src/db';
import { backup, restore } from '../../src/backup';
import { createCheckpoint, exportEvidence, verifyEvidence, verifyUsageLog } from '../../src/usagelog';
import { archiveLog } from '../../src/usagelog/archive';
import { generateSigningKey } from '../../src/crypto';
import { approvedLink, cleanupKeys, makeAgencyKeys, servicesOn, tmpDir, type AgencyKeys } from '../helpers/world';
import { dropGuards, logWorld, rawWrite, type LogWorld } from './usagelog-world';

let scratch: string;
let keys: AgencyKeys;
beforeAll(() => (keys = makeAgencyKeys()));
afterAll(() => cleanupKeys(keys));
beforeEach(() => (scratch = tmpDir('nia-link-ule-')));
afterEach(() => rmSync(scratch, { recursive: true, force: true }));

describe('evidence package (R9.1)', () => {
  let w: ReturnType<typeof servicesOn>;
  let lw: LogWorld;
  let link1: number;
  let link2: number;
  beforeEach(async () => {
    // Two agencies' links on one log, their records interleaved.
    lw = await logWorld();
    w = servicesOn(lw.cdb);
    link1 = await approvedLink(w, keys);
    await w.registry.addAgency({ code: 'A002', name: '勞動部' }, 'test');
    link2 = await approvedLink(w, keys, { agency: 'A002', account: 'a002' });
    for (let i = 0; i < 6; i++) {
      await lw.append({ type: 'file.downloaded', agency: 'A001', linkId: link1, actor: 'a001', ip: '10.0.0.1', object: `f${i}.csv.pgp`, detail: { bytes: 100 + i, result: 'complete' } });
      await lw.append({ type: 'file.downloaded', agency: 'A002', linkId: link2, actor: 'a002', ip: '10.0.0.2', object: `secret-${i}.csv.pgp`, detail: { bytes: 7 } });
    }
    await createCheckpoint(lw.cdb, lw.keysDir, new Date());
    await lw.append({ type: 'file.downloaded', agency: 'A001', linkId: link1, actor: 'a001', ip: '10.0.0.1', object: 'last.csv.pgp', detail: { bytes: 1 } });
  });
  afterEach(() => lw.close());

  const today = new Date().toISOString().slice(0, 10);
  const exportTo = (out: string) => exportEvidence(lw.cdb, { keysDir: lw.keysDir, linkId: link1, from: '2026-01-01', to: today > '2026-12-31' ? today : '2026-12-31', out, now: new Date() });

  it("carries the link's records in full, others as digests only, and verifies offline", async () => {
    const out = path.join(scratch, 'evidence');
    const s = await exportTo(out);
    expect(s).toMatchObject({ fromSeq: 1, full: 11, checkpoints: 1 }); // rules added, applied, rules reviewed, approved, 7 downloads
    expect(readdirSync(out).sort()).toEqual(['README.txt', 'checkpoints.json', 'manifest.json', 'manifest.json.asc', 'nia-signing.pub.asc', 'records.jsonl', 'verification.json']);
    const text = readFileSync(path.join(out, 'records.jsonl'), 'utf8');
    const lines = text.trim().split('\n').map((l) => JSON.parse(l));
    // Only the link's own records are in full. Hashes, digests and key fingerprints are hex and may
    // spell anything (a002 among them), so they are left out of the look.
    expect(JSON.stringify(lines.filter((l) => l.type)).replace(/[0-9a-fA-F]{32,}/g, 'HEX')).not.toMatch(/secret-|A002|a002|10\.0\.0\.2/);
    expect(lines.filter((l) => l.type).every((l) => l.linkId === link1)).toBe(true);
    expect(lines.filter((l) => !l.type).every((l) => Object.keys(l).sort().join() === 'digest,seq')).toBe(true);
    // Offline: the database is gone; the auditor holds NIA's public key apart from the package.
    const copy = path.join(scratch, 'copy');
    cpSync(out, copy, { recursive: true });
    const niaKey = path.join(scratch, 'nia.pub.asc');
    cpSync(path.join(lw.keysDir, 'nia-signing.pub.asc'), niaKey);
    lw.close();
    const r = await verifyEvidence(copy, niaKey);
    expect(r).toMatchObject({ ok: true, linkId: link1, records: s.records, full: 11, checkpoints: 1 });
    lw = await logWorld(); // for afterEach
  });

  it('fails when one of its records is edited, naming the seq', async () => {
    const out = path.join(scratch, 'evidence');
    await exportTo(out);
    const file = path.join(out, 'records.jsonl');
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const i = lines.findIndex((l) => l.includes('"f3.csv.pgp"'));
    const rec = JSON.parse(lines[i]);
    lines[i] = JSON.stringify({ ...rec, ip: '192.0.2.66' });
    writeFileSync(file, lines.join('\n') + '\n');
    expect(await verifyEvidence(out, path.join(lw.keysDir, 'nia-signing.pub.asc'))).toMatchObject({ ok: false, bad: { seq: rec.seq, reason: expect.stringMatching(/edited/) } });
  });

  it("fails when another agency's digest is swapped, or checked with another key", async () => {
    const out = path.join(scratch, 'evidence');
    await exportTo(out);
    const file = path.join(out, 'records.jsonl');
    const original = readFileSync(file, 'utf8');
    writeFileSync(file, original.replace(/"digest":"[0-9a-f]{64}"\}/, `"digest":"${'a'.repeat(64)}"}`));
    expect((await verifyEvidence(out, path.join(lw.keysDir, 'nia-signing.pub.asc'))).ok).toBe(false);
    writeFileSync(file, original);
    const k = await generateSigningKey('Someone Else', 'x@example.org', new Date(Date.now() - 86400000));
    writeFileSync(path.join(scratch, 'other.asc'), k.publicKey);
    expect(await verifyEvidence(out, path.join(scratch, 'other.asc'))).toMatchObject({ ok: false, bad: { reason: expect.stringMatching(/signature does not verify/) } });
    expect((await verifyEvidence(out, path.join(lw.keysDir, 'nia-signing.pub.asc'))).ok).toBe(true);
  });

  it('refuses a log that does not verify, and writes nothing', async () => {
    await dropGuards(lw.cdb);
    await rawWrite(lw.cdb, (db) => db.prepare("UPDATE usage_log SET actor = 'x' WHERE seq = 3").run());
    await expect(exportTo(path.join(scratch, 'e'))).rejects.toThrow(/does not verify at seq 3/);
    expect(existsSync(path.join(scratch, 'e'))).toBe(false);
  });
});

describe('backup and restore', () => {
  let lw: LogWorld;
  beforeEach(async () => {
    lw = await logWorld();
    await lw.fill(30, '2019-01-01T00:00:00.000Z');
    await lw.fill(30);
    await archiveLog(lw.cdb, { keysDir: lw.keysDir, dir: path.join(lw.dataDir, 'archive'), before: '2020-01-01', retentionYears: 5, now: new Date(), actor: 'test' });
    await createCheckpoint(lw.cdb, lw.keysDir, new Date());
  });
  afterEach(() => lw.close());

  it('backup → restore into an empty data dir gives a verifying log', async () => {
    const out = path.join(scratch, 'backup');
    const b = await backup(lw.cdb, { dataDir: lw.dataDir, keysDir: lw.keysDir, out, now: new Date() });
    expect(b.log).toMatchObject({ ok: true, lastSeq: 61, archived: { checked: 1 } });
    expect(readdirSync(out).sort()).toEqual(['archive', 'keys', 'manifest.json', 'manifest.json.asc', 'nia-link.db']);
    const target = path.join(scratch, 'restored');
    const niaKey = path.join(lw.keysDir, 'nia-signing.pub.asc');
    const r = await restore({ from: out, dataDir: target, keysDir: path.join(target, 'keys'), now: new Date(), keyFile: niaKey });
    expect(r).toMatchObject({ keySource: 'given', replaced: [], log: { ok: true, records: 31, lastSeq: 61 } });
    const cdb = openControlDb(target);
    try {
      const v = await verifyUsageLog(cdb, { keysDir: path.join(target, 'keys'), archives: [path.join(target, 'archive')] });
      expect(v).toMatchObject({ ok: true, lastSeq: 61, archived: { throughSeq: 30, checked: 1 }, checkpoints: { database: 1 } });
    } finally {
      cdb.close();
    }
    // An installation is never replaced without --force, and then it is moved aside.
    await expect(restore({ from: out, dataDir: target, keysDir: path.join(target, 'keys'), now: new Date() })).rejects.toThrow(/already holds an installation/);
    const again = await restore({ from: out, dataDir: target, keysDir: path.join(target, 'keys'), now: new Date(), force: true });
    expect(again.keySource).toBe('installation');
    expect(again.replaced.some((f) => /nia-link\.db\.replaced-/.test(f))).toBe(true);
  });

  it('an evidence package cannot reach into the archived stretch', async () => {
    const link = await approvedLink(servicesOn(lw.cdb), keys);
    await expect(exportEvidence(lw.cdb, { keysDir: lw.keysDir, linkId: link, from: '2019-01-01', to: '2030-01-01', out: path.join(scratch, 'e'), now: new Date() })).rejects.toThrow(/up to seq 30 .* are archived .*start the period after 2019-01-01/);
  });

  it('refuses a backup whose files or log were changed, before touching anything', async () => {
    const out = path.join(scratch, 'backup');
    await backup(lw.cdb, { dataDir: lw.dataDir, keysDir: lw.keysDir, out, now: new Date() });
    const target = path.join(scratch, 'restored');
    const keyFile = path.join(lw.keysDir, 'nia-signing.pub.asc');
    const db = path.join(out, 'nia-link.db');
    const bytes = readFileSync(db);
    bytes[bytes.length - 100] ^= 0xff;
    writeFileSync(db, bytes);
    await expect(restore({ from: out, dataDir: target, keysDir: path.join(target, 'keys'), now: new Date(), keyFile })).rejects.toThrow(/nia-link\.db does not match its SHA-256/);
    expect(existsSync(target)).toBe(false);
    const manifest = path.join(out, 'manifest.json');
    writeFileSync(manifest, readFileSync(manifest, 'utf8').replace('"version":1', '"version":1 '));
    await expect(restore({ from: out, dataDir: target, keysDir: path.join(target, 'keys'), now: new Date(), keyFile })).rejects.toThrow(/signature does not verify/);
    expect(existsSync(target)).toBe(false);
  });
});
