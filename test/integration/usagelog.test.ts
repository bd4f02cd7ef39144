import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { addMonths, taipeiDate } from '../../src/domain';
import { canonicalJson, chainHash, checkpointStatement, createCheckpoint, exportCheckpoints, recordDigest, verifyLog, verifyUsageLog } from '../../src/usagelog';
import { archiveLog, retentionFloor } from '../../src/usagelog/archive';
import { loadSigner, signText } from '../../src/usagelog/signatures';
import { tmpDir } from '../helpers/world';
import { dropGuards, logWorld, rawWrite, rowAt, type LogWorld, type Raw } from './usagelog-world';

let w: LogWorld;
let scratch: string;
beforeEach(async () => {
  w = await logWorld();
  scratch = tmpDir('nia-link-ulx-');
});
afterEach(() => {
  w.close();
  rmSync(scratch, { recursive: true, force: true });
});

const verify = (o: { checkpointFiles?: string[]; archives?: string[]; threads?: number } = {}) => verifyUsageLog(w.cdb, { keysDir: w.keysDir, ...o });

/** 12 records, a checkpoint at 9, exported to a file as an auditor keeps it; 3 more records after. */
async function checkpointedLog(): Promise<string> {
  await w.fill(9);
  await createCheckpoint(w.cdb, w.keysDir, new Date());
  const file = path.join(scratch, 'cp.json');
  writeFileSync(file, JSON.stringify(await exportCheckpoints(w.cdb, w.keysDir, new Date())));
  await w.fill(3);
  return file;
}

const put = (seq: number, r: Raw) =>
  rawWrite(w.cdb, (db) =>
    db
      .prepare('UPDATE usage_log SET at=@at, type=@type, agency=@agency, link_id=@link_id, actor=@actor, object=@object, detail=@detail, digest=@digest, prev_hash=@prev_hash, hash=@hash WHERE seq=@seq')
      .run({ ...r, seq }),
  );

/** Recompute digest and hash of every record from `seq` on, as an attacker who knows the chain would. */
function rechainFrom(seq: number): Promise<void> {
  return rawWrite(w.cdb, (db) => {
    let prev = (rowAt(w.cdb, seq - 1)?.hash as string) ?? '0'.repeat(64);
    for (const r of db.prepare('SELECT * FROM usage_log WHERE seq >= ? ORDER BY seq').all(seq) as Raw[]) {
      const digest = recordDigest({ seq: r.seq as number, at: r.at as string, type: r.type as string, agency: r.agency as string, linkId: r.link_id as number, revision: r.revision as number, actor: r.actor as string, ip: r.ip as string, channel: r.channel as string, object: r.object as string, detail: r.detail as string });
      const hash = chainHash(prev, digest);
      db.prepare('UPDATE usage_log SET digest = ?, prev_hash = ?, hash = ? WHERE seq = ?').run(digest, prev, hash, r.seq);
      prev = hash;
    }
  });
}

describe('checkpoints (R6.3)', () => {
  it('signs the head, only when it moved, and an untouched log verifies against database and exported checkpoints', async () => {
    const file = await checkpointedLog();
    const again = await createCheckpoint(w.cdb, w.keysDir, new Date());
    expect(again).toMatchObject({ created: true, checkpoint: { seq: 12 } });
    expect((await createCheckpoint(w.cdb, w.keysDir, new Date())).created).toBe(false);
    const r = await verify({ checkpointFiles: [file] });
    expect(r).toMatchObject({ ok: true, records: 12, firstSeq: 1, lastSeq: 12, checkpoints: { database: 2, exported: 1, matched: 3, newestSeq: 12 } });
    // The export carries what the signature covers, so GnuPG can check a checkpoint without nia-link.
    const exported = JSON.parse(readFileSync(file, 'utf8'));
    expect(exported.checkpoints[0].statement).toBe(checkpointStatement(exported.checkpoints[0]));
    const gnupg = path.join(scratch, 'gnupg');
    mkdirSync(gnupg, { mode: 0o700 });
    writeFileSync(path.join(scratch, 'stmt'), exported.checkpoints[0].statement);
    writeFileSync(path.join(scratch, 'stmt.asc'), exported.checkpoints[0].signature);
    writeFileSync(path.join(scratch, 'key.asc'), exported.signingKey.armored);
    const env = { ...process.env, GNUPGHOME: gnupg };
    execFileSync('gpg', ['--batch', '--import', path.join(scratch, 'key.asc')], { env, stdio: 'ignore' });
    execFileSync('gpg', ['--batch', '--verify', path.join(scratch, 'stmt.asc'), path.join(scratch, 'stmt')], { env, stdio: 'ignore' });
    execFileSync('gpgconf', ['--kill', 'all'], { env });
  });

  it('a log with nothing signed verifies without the keys directory; with checkpoints it needs the key', async () => {
    await w.fill(3);
    const keys = w.keysDir;
    rmSync(keys, { recursive: true });
    expect(await verify()).toMatchObject({ ok: true, records: 3, signingKey: null });
    await expect(createCheckpoint(w.cdb, keys, new Date())).rejects.toThrow(/key file .* is missing: run `nia-link init`/);
  });

  it('refuses to sign a log that does not verify', async () => {
    await w.fill(5);
    await dropGuards(w.cdb);
    await rawWrite(w.cdb, (db) => db.prepare("UPDATE usage_log SET actor = 'x' WHERE seq = 3").run());
    await expect(createCheckpoint(w.cdb, w.keysDir, new Date())).rejects.toThrow(/does not verify at seq 3/);
  });
});

describe('tampering is detected at the first bad seq, with the guards dropped (R6.3)', () => {
  let file: string;
  beforeEach(async () => {
    file = await checkpointedLog();
    await dropGuards(w.cdb);
  });

  it('an untouched log verifies', async () => {
    expect((await verify({ checkpointFiles: [file] })).ok).toBe(true);
  });
  it('edit', async () => {
    await rawWrite(w.cdb, (db) => db.prepare("UPDATE usage_log SET actor = 'someone-else' WHERE seq = 4").run());
    expect(await verify({ checkpointFiles: [file] })).toMatchObject({ ok: false, bad: { seq: 4, reason: expect.stringMatching(/edited/) } });
  });
  it('delete', async () => {
    await rawWrite(w.cdb, (db) => db.prepare('DELETE FROM usage_log WHERE seq = 5').run());
    expect(await verify({ checkpointFiles: [file] })).toMatchObject({ ok: false, bad: { seq: 5, reason: expect.stringMatching(/missing/) } });
  });
  it('reorder', async () => {
    const a = rowAt(w.cdb, 6);
    const b = rowAt(w.cdb, 7);
    await put(6, b);
    await put(7, a);
    expect(await verify({ checkpointFiles: [file] })).toMatchObject({ ok: false, bad: { seq: 6 } });
  });
  it('insert (the records after it shifted by one)', async () => {
    await rawWrite(w.cdb, (db) => {
      for (let s = 12; s >= 8; s--) db.prepare('UPDATE usage_log SET seq = seq + 1 WHERE seq = ?').run(s);
    });
    const prev = rowAt(w.cdb, 7);
    const body = { seq: 8, at: prev.at as string, type: 'file.downloaded', agency: 'A001', linkId: 1, revision: null, actor: 'x', ip: '10.9.9.9', channel: null, object: null, detail: '{}' };
    const digest = recordDigest(body);
    await rawWrite(w.cdb, (db) =>
      db
        .prepare('INSERT INTO usage_log (seq, at, type, agency, link_id, revision, actor, ip, channel, object, detail, digest, prev_hash, hash) VALUES (@seq, @at, @type, @agency, @linkId, @revision, @actor, @ip, @channel, @object, @detail, @digest, @prevHash, @hash)')
        .run({ ...body, digest, prevHash: prev.hash, hash: chainHash(prev.hash as string, digest) }),
    );
    // The forged record chains on; the one after it no longer does.
    expect(await verify({ checkpointFiles: [file] })).toMatchObject({ ok: false, bad: { seq: 9 } });
  });
  it('truncation after an exported checkpoint, even with the database checkpoints removed too', async () => {
    await rawWrite(w.cdb, (db) => db.prepare('DELETE FROM usage_log WHERE seq > 6').run());
    await dropGuards(w.cdb, 'log_checkpoint');
    await rawWrite(w.cdb, (db) => db.prepare('DELETE FROM log_checkpoint').run());
    // A clean prefix: without the auditor's copy nothing shows it — that is what the export is for.
    expect((await verify()).ok).toBe(true);
    const r = await verify({ checkpointFiles: [file] });
    expect(r).toMatchObject({ ok: false, bad: { seq: 7, range: [7, 9], reason: expect.stringMatching(/ends at seq 6.*records 7–9 were removed/) } });
  });
  it('an edit with the whole chain recomputed after it is caught by the checkpoint and bounded', async () => {
    await rawWrite(w.cdb, (db) => db.prepare("UPDATE usage_log SET actor = 'someone-else' WHERE seq = 4").run());
    await rechainFrom(4);
    await dropGuards(w.cdb, 'log_checkpoint');
    await rawWrite(w.cdb, (db) => db.prepare('DELETE FROM log_checkpoint').run());
    expect((await verifyLog(w.cdb)).ok).toBe(true);
    expect(await verify({ checkpointFiles: [file] })).toMatchObject({ ok: false, bad: { seq: 9, range: [1, 9], reason: expect.stringMatching(/rewritten/) } });
  });
  it('a checkpoint file altered to match a rewritten log fails its signature', async () => {
    await rawWrite(w.cdb, (db) => db.prepare("UPDATE usage_log SET actor = 'someone-else' WHERE seq = 4").run());
    await rechainFrom(4);
    await dropGuards(w.cdb, 'log_checkpoint');
    await rawWrite(w.cdb, (db) => db.prepare('DELETE FROM log_checkpoint').run());
    const e = JSON.parse(readFileSync(file, 'utf8'));
    e.checkpoints[0].hash = rowAt(w.cdb, 9).hash;
    writeFileSync(file, JSON.stringify(e));
    expect(await verify({ checkpointFiles: [file] })).toMatchObject({ ok: false, bad: { reason: expect.stringMatching(/valid signature/) } });
  });
});

describe('the text a digest covers', () => {
  it('SQLite builds the same text as JS for awkward values; what it cannot build is checked in JS', async () => {
    const awkward = ['quo"te \\ back', 'ctl \u0000 \u0001 \u001f \u007f \b\f\n\r\t', '漢字 😀 \u2028\u2029 /', 'lone \ud800 surrogate', "<>&'"];
    for (const a of awkward) await w.append({ type: 'test.awkward', agency: a, actor: a, ip: a, channel: a, object: a, detail: { a } });
    await w.append({ type: 'test.nulls' });
    expect(await verifyLog(w.cdb)).toMatchObject({ ok: true, records: 6 });
    const { iterateCanonical } = await import('../../src/db/repositories/usageLog');
    const { sha256Hex } = await import('../../src/usagelog/chain');
    for (const [seq, text, digest] of iterateCanonical(w.cdb.sqlite, 1, 6)) expect([seq, sha256Hex(text)]).toEqual([seq, digest]);
    // A BLOB put in by hand makes SQLite's JSON functions refuse the row: it is still named, not a crash.
    await dropGuards(w.cdb);
    await rawWrite(w.cdb, (db) => db.prepare("UPDATE usage_log SET object = x'00ff' WHERE seq = 4").run());
    expect(await verifyLog(w.cdb)).toMatchObject({ ok: false, bad: { seq: 4, reason: expect.stringMatching(/edited/) } });
  });
});

describe('verify over many records', () => {
  it('splits the walk over threads and names the same first bad seq', async () => {
    await w.fill(6000);
    expect(await verify({ threads: 3 })).toMatchObject({ ok: true, records: 6000, lastSeq: 6000 });
    await dropGuards(w.cdb);
    await rawWrite(w.cdb, (db) => db.prepare("UPDATE usage_log SET detail = '{}' WHERE seq IN (2500, 4100)").run());
    await rawWrite(w.cdb, (db) => db.prepare('DELETE FROM usage_log WHERE seq = 4001').run());
    for (const threads of [1, 2, 3]) expect((await verify({ threads })).bad).toMatchObject({ seq: 2500, reason: expect.stringMatching(/edited/) });
    await rawWrite(w.cdb, (db) => db.prepare('DELETE FROM usage_log WHERE seq BETWEEN 2000 AND 3000').run());
    for (const threads of [1, 3]) expect((await verify({ threads })).bad).toMatchObject({ seq: 2000, reason: expect.stringMatching(/missing/) });
  });
});

describe('archive and retention (R6.2)', () => {
  const OLD = '2019-03-01T02:00:00.000Z';
  const today = () => taipeiDate(new Date());
  async function oldAndNew(): Promise<void> {
    await w.fill(40, OLD);
    await w.fill(10);
  }
  const archive = (before: string, dir = path.join(w.dataDir, 'archive')) =>
    archiveLog(w.cdb, { keysDir: w.keysDir, dir, before, retentionYears: 5, now: new Date(), actor: 'test' });

  it('refuses to archive inside the five-year floor and writes nothing', async () => {
    await oldAndNew();
    const floor = retentionFloor(today(), 5);
    expect(floor).toBe(addMonths(today(), -60));
    await expect(archive(addMonths(today(), -12))).rejects.toThrow(/retention period.*5 years.*latest date allowed today is/);
    await expect(archive(addMonths(floor, 1))).rejects.toThrow(/retention period/);
    await expect(archiveLog(w.cdb, { keysDir: w.keysDir, dir: scratch, before: floor, retentionYears: 7, now: new Date(), actor: 't' })).rejects.toThrow(/7 years/);
    expect(w.count()).toBe(50);
    expect(existsSync(path.join(w.dataDir, 'archive'))).toBe(false);
  });

  it('archives, removes, keeps the chain, and verify accepts the archived head (and re-reads it when given)', async () => {
    await oldAndNew();
    const r = await archive('2020-01-01');
    expect(r).toMatchObject({ fromSeq: 1, toSeq: 40, records: 40 });
    expect(w.count()).toBe(11); // 10 live + log.archived
    expect(rowAt(w.cdb, 51)).toMatchObject({ type: 'log.archived', object: path.basename(r!.recordsFile) });
    expect(readdirSync(path.join(w.dataDir, 'archive')).sort()).toEqual([`${path.basename(r!.recordsFile)}`, path.basename(r!.manifestFile), `${path.basename(r!.manifestFile)}.asc`].sort());
    const plain = await verify();
    expect(plain).toMatchObject({ ok: true, records: 11, firstSeq: 41, lastSeq: 51, archived: { throughSeq: 40, archives: 1, checked: 0 } });
    expect(plain.notes.join()).toMatch(/records 1–40 are archived/);
    expect(await verify({ archives: [path.join(w.dataDir, 'archive')] })).toMatchObject({ ok: true, archived: { checked: 1 } });
    expect(await verifyLog(w.cdb)).toMatchObject({ ok: true, firstSeq: 41, lastSeq: 51 });
    expect(await w.append({ type: 'test.after' })).toBe(52);
    expect(await archive('2020-01-01')).toBeNull(); // nothing that old is left
    // The guard still refuses removing what no archive holds.
    await expect(rawWrite(w.cdb, (db) => db.prepare('DELETE FROM usage_log WHERE seq = 45').run())).rejects.toMatchObject({ message: expect.stringMatching(/append-only/) });
    await expect(rawWrite(w.cdb, (db) => db.prepare('DELETE FROM log_archive').run())).rejects.toMatchObject({ message: expect.stringMatching(/append-only/) });
    // The archive is checkable with GnuPG and sha256sum alone.
    const gnupg = path.join(scratch, 'gnupg');
    mkdirSync(gnupg, { mode: 0o700 });
    const env = { ...process.env, GNUPGHOME: gnupg };
    execFileSync('gpg', ['--batch', '--import', path.join(w.keysDir, 'nia-signing.pub.asc')], { env, stdio: 'ignore' });
    execFileSync('gpg', ['--batch', '--verify', `${r!.manifestFile}.asc`, r!.manifestFile], { env, stdio: 'ignore' });
    execFileSync('gpgconf', ['--kill', 'all'], { env });
    expect(execFileSync('sha256sum', [r!.recordsFile]).toString().split(' ')[0]).toBe(r!.sha256);
  });

  it('a second archive chains on the first', async () => {
    await w.fill(20, '2018-01-01T00:00:00.000Z');
    await w.fill(20, '2019-06-01T00:00:00.000Z');
    await w.fill(5);
    expect(await archive('2019-01-01')).toMatchObject({ fromSeq: 1, toSeq: 20 });
    expect(await archive('2020-01-01')).toMatchObject({ fromSeq: 21, toSeq: 40 });
    expect(await verify({ archives: [path.join(w.dataDir, 'archive')] })).toMatchObject({ ok: true, firstSeq: 41, archived: { throughSeq: 40, archives: 2, checked: 2 } });
  });

  it('exported checkpoints over an archived stretch need the archive; with it they verify', async () => {
    await w.fill(40, OLD);
    await createCheckpoint(w.cdb, w.keysDir, new Date());
    const file = path.join(scratch, 'cp.json');
    writeFileSync(file, JSON.stringify(await exportCheckpoints(w.cdb, w.keysDir, new Date())));
    await w.fill(5);
    await archive('2020-01-01');
    expect(await verify({ checkpointFiles: [file] })).toMatchObject({ ok: false, bad: { seq: 1, reason: expect.stringMatching(/archived: give their archive files/) } });
    expect(await verify({ checkpointFiles: [file], archives: [path.join(w.dataDir, 'archive')] })).toMatchObject({ ok: true, checkpoints: { exported: 1 } });
  });

  it('an edited archive is named at its first bad seq', async () => {
    await oldAndNew();
    const r = await archive('2020-01-01');
    const lines = readFileSync(r!.recordsFile, 'utf8').split('\n');
    const rec = JSON.parse(lines[6]);
    lines[6] = JSON.stringify({ ...rec, actor: 'someone-else' });
    writeFileSync(r!.recordsFile, lines.join('\n'));
    expect(await verify({ archives: [r!.manifestFile] })).toMatchObject({ ok: false, bad: { seq: 7, reason: expect.stringMatching(/edited/) } });
  });

  it('refuses to archive a broken chain', async () => {
    await oldAndNew();
    await dropGuards(w.cdb);
    await rawWrite(w.cdb, (db) => db.prepare("UPDATE usage_log SET actor = 'x' WHERE seq = 12").run());
    await expect(archive('2020-01-01')).rejects.toThrow(/does not verify at seq 12.*nothing archived/);
    expect(w.count()).toBe(50);
    expect(readdirSync(path.join(w.dataDir, 'archive'))).toEqual([]);
  });

  it('records removed under a forged anchor are detected', async () => {
    await oldAndNew();
    await dropGuards(w.cdb);
    await dropGuards(w.cdb, 'log_archive');
    const r20 = rowAt(w.cdb, 20);
    const manifest = canonicalJson({ type: 'nia-link.usage-log-archive', version: 1, fromSeq: 1, toSeq: 20, records: 20, prevHash: '0'.repeat(64), lastHash: r20.hash, sha256: 'f'.repeat(64) });
    const insertAnchor = (signature: string) =>
      rawWrite(w.cdb, (db) =>
        db
          .prepare('INSERT INTO log_archive (from_seq, to_seq, prev_hash, last_hash, records, file_name, sha256, manifest, signature, created_at) VALUES (1, 20, ?, ?, 20, ?, ?, ?, ?, ?)')
          .run('0'.repeat(64), r20.hash, 'usage-log-x.jsonl', 'f'.repeat(64), manifest, signature, new Date().toISOString()),
      );
    await rawWrite(w.cdb, (db) => db.prepare('DELETE FROM usage_log WHERE seq <= 20').run());
    // Without NIA's key the anchor cannot be signed.
    await insertAnchor('-----BEGIN PGP SIGNATURE-----\n\nnot a signature\n-----END PGP SIGNATURE-----\n');
    expect(await verify()).toMatchObject({ ok: false, bad: { seq: 1, range: [1, 20], reason: expect.stringMatching(/forged anchor/) } });
  });

  it('an anchor forged with the stolen key still fails against exported checkpoints without the archive', async () => {
    await oldAndNew();
    await createCheckpoint(w.cdb, w.keysDir, new Date());
    const file = path.join(scratch, 'cp.json');
    writeFileSync(file, JSON.stringify(await exportCheckpoints(w.cdb, w.keysDir, new Date())));
    await dropGuards(w.cdb);
    const r20 = rowAt(w.cdb, 20);
    const m = { type: 'nia-link.usage-log-archive', version: 1, fromSeq: 1, toSeq: 20, records: 20, prevHash: '0'.repeat(64), lastHash: r20.hash, sha256: 'f'.repeat(64) };
    const signer = await loadSigner(w.keysDir);
    const signature = await signText(canonicalJson(m), signer.key);
    await rawWrite(w.cdb, (db) =>
      db
        .prepare('INSERT INTO log_archive (from_seq, to_seq, prev_hash, last_hash, records, file_name, sha256, manifest, signature, created_at) VALUES (1, 20, ?, ?, 20, ?, ?, ?, ?, ?)')
        .run(m.prevHash, m.lastHash, 'usage-log-x.jsonl', m.sha256, canonicalJson(m), signature, new Date().toISOString()),
    );
    await rawWrite(w.cdb, (db) => db.prepare('DELETE FROM usage_log WHERE seq <= 20').run());
    expect((await verify()).ok).toBe(true); // the box alone cannot tell: its key signed it
    expect(await verify({ checkpointFiles: [file] })).toMatchObject({ ok: false, bad: { seq: 1, reason: expect.stringMatching(/give their archive files/) } });
  });
});
