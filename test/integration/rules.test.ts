import { sql, type SQL } from 'drizzle-orm';
import { rmSync } from 'node:fs';
import { rawRun } from '../../src/db/dialect';
import { checkDocument, sniffDocumentType } from '../../src/registry';
import { listLog } from '../../src/usagelog';
import { docx, odt } from '../helpers/documents';
import { ALL_TOPICS, application, approvedLink, cleanupKeys, cli, makeAgencyKeys, openTestWorld, RULES_TEXT, STAMPED_FORM, testDatabase, tmpDir, writeTemp, type AgencyKeys, type AnyWorld, type TestDatabase } from '../helpers/world';

let keys: AgencyKeys;
let w: AnyWorld;
beforeAll(() => (keys = makeAgencyKeys()));
afterAll(() => cleanupKeys(keys));
beforeEach(async () => {
  w = await openTestWorld();
  await w.registry.addAgency({ code: 'A001', name: '財政部賦稅署' }, 'test');
});
afterEach(async () => w?.close());

/** Write to the database behind the services' backs, in a write transaction (reads outside one cannot write on SQLite). */
const rawWrite = (statement: SQL): Promise<void> => w.cdb.write((tx) => rawRun(tx, statement));
/** What the database said refusing a statement (drizzle may carry it as its error's cause); 'not refused' when it ran. */
const refusal = (p: Promise<unknown>): Promise<string> => p.then(() => 'not refused', (e: Error) => [e.message, (e.cause as Error | undefined)?.message].join('\n'));
const rulesFile = (name = 'rules-v2.txt', text = RULES_TEXT + '九、附則\n') => ({ filename: name, content: Buffer.from(text) });
/** A minimal, well-formed PDF without active content. */
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n', 'latin1');

describe('management rules and the eight-topic review (R4.1)', () => {
  it('R4.1 approval is refused until the current rules version is reviewed as covering all eight topics', async () => {
    const { id } = await w.registry.apply(application(keys), 'agency');
    await expect(w.registry.approve(id, { by: 'nia' })).rejects.toThrow(/cannot be approved: management rules version 1 \(document \d+\) has not been reviewed/);

    await w.rules.review({ linkId: id }, '1,2,3,4,5,6,7', 'no account-change procedure', 'reviewer');
    await expect(w.registry.approve(id, { by: 'nia' })).rejects.toThrow(/do not cover topic 8 \(account and permission change procedure\)/);
    await w.rules.review({ linkId: id }, '1,2,4,5,6', undefined, 'reviewer');
    await expect(w.registry.approve(id, { by: 'nia' })).rejects.toThrow(/topics 3 \(user query procedure\), 7 \(users' liability for violations\), 8 /);
    expect((await w.registry.show(id)).status).toBe('pending');

    const v = await w.rules.review({ linkId: id }, '1-8', 'complete', 'reviewer');
    expect(v.review).toMatchObject({ covers: [1, 2, 3, 4, 5, 6, 7, 8], missing: [], reviewedBy: 'reviewer' });
    expect(await w.registry.approve(id, { by: 'nia', letterNo: '移署資字第1150001號', letterDate: '2026-03-01', stampedForm: STAMPED_FORM })).toMatchObject({
      status: 'active',
      rules: { version: 1, reviewed: true, missing: [] },
    });
    // The newest review is the one in force; earlier ones stay as records.
    expect((await w.rules.show(v.id)).reviews.map((r) => r.covers.length)).toEqual([7, 5, 8]);
    expect((await listLog(w.cdb.db, { linkId: id })).map((r) => r.type)).toEqual(['rules.added', 'link.applied', 'rules.reviewed', 'rules.reviewed', 'rules.reviewed', 'link.approved']);
    expect(await refusal(rawWrite(sql`UPDATE rules_review SET covers = ${'[1,2,3,4,5,6,7,8]'}`))).toMatch(/records/);
    expect(await refusal(rawWrite(sql`DELETE FROM rules_review`))).toMatch(/records/);
    expect((await w.rules.show(v.id)).reviews.map((r) => r.covers.length)).toEqual([7, 5, 8]);
  });

  it('R4.1 a later partial review takes the full one back: approval is refused again', async () => {
    const { id } = await w.registry.apply(application(keys), 'agency');
    await w.rules.review({ linkId: id }, ALL_TOPICS, undefined, 'r1');
    await w.rules.review({ linkId: id }, '1,2,3', 'topics 4–8 only name headings', 'r2');
    await expect(w.registry.approve(id, { by: 'nia' })).rejects.toThrow(/do not cover topics 4 .*, 8 /);
  });

  it('R4.1 a link applied for without rules cannot be approved', async () => {
    const { id } = await w.registry.apply(application(keys, { rules: undefined }), 'agency');
    await expect(w.registry.approve(id, { by: 'nia' })).rejects.toThrow(/no management rules .* are on file/);
    await expect(w.rules.review({ linkId: id }, ALL_TOPICS, undefined, 'r')).rejects.toThrow(/has no management rules on file: an application carries them/);
  });

  it('--covers takes topic numbers 1–8 only', async () => {
    const { id } = await w.registry.apply(application(keys), 'agency');
    for (const bad of ['', '0', '9', '1,x', '3-1', '1-9']) {
      await expect(w.rules.review({ linkId: id }, bad, undefined, 'r')).rejects.toThrow(/topic number/);
    }
    expect(await listLog(w.cdb.db, { type: 'rules.reviewed' })).toEqual([]);
  });

  it('R5.1 a new rules version for an approved link is a change request that takes effect only once that version is reviewed', async () => {
    const id = await approvedLink(w, keys);
    const before = await w.registry.show(id);
    const added = await w.rules.add({ agency: 'A001', file: rulesFile(), linkId: id }, 'agency');
    expect(added.document).toMatchObject({ version: 2, linkId: id, mediaType: 'text/plain; charset=utf-8', review: null });
    expect(added.changeId).not.toBeNull();
    await expect(w.registry.approveChange(added.changeId!, 'nia')).rejects.toThrow(/change request \d+ cannot be approved: management rules version 2 .* has not been reviewed/);
    expect(await w.registry.show(id)).toMatchObject({ revision: before.revision, rulesDocument: before.rulesDocument });

    await w.rules.review({ documentId: added.document.id }, ALL_TOPICS, undefined, 'reviewer');
    const { link } = await w.registry.approveChange(added.changeId!, 'nia');
    expect(link).toMatchObject({ revision: before.revision + 1, rulesDocument: added.document.id, rules: { version: 2, reviewed: true, missing: [] } });
    // `rules review --link` now names the new version.
    expect((await w.rules.review({ linkId: id }, ALL_TOPICS, undefined, 'r')).id).toBe(added.document.id);
    expect((await w.rules.list({ linkId: id })).map((d) => d.version)).toEqual([2, 1]);
    expect((await listLog(w.cdb.db, { linkId: id, type: 'rules.added' })).map((r) => JSON.parse(r.detail).version)).toEqual([1, 2]);
  });

  it('rules for a pending link come with the application; another agency cannot file for a link', async () => {
    const { id } = await w.registry.apply(application(keys), 'agency');
    await expect(w.rules.add({ agency: 'A001', file: rulesFile(), linkId: id }, 'agency')).rejects.toThrow(/pending: its application carries its rules/);
    await w.registry.addAgency({ code: 'B002', name: '其他機關' }, 'test');
    await expect(w.rules.add({ agency: 'B002', file: rulesFile(), linkId: id }, 'agency')).rejects.toThrow(/belongs to agency A001, not B002/);
    // Without a link, a version is stored for the agency alone.
    expect(await w.rules.add({ agency: 'B002', file: rulesFile() }, 'agency')).toMatchObject({ document: { version: 1, agency: 'B002', linkId: null }, changeId: null });
  });

  it('a stored version is returned byte for byte and the export is logged', async () => {
    const { document } = await w.rules.add({ agency: 'A001', file: { filename: 'rules.pdf', content: PDF } }, 'agency');
    expect(document.mediaType).toBe('application/pdf');
    expect((await w.rules.export(document.id, 'auditor')).content.equals(PDF)).toBe(true);
    expect(await listLog(w.cdb.db, { type: 'rules.exported' })).toHaveLength(1);
  });
});

describe('documents are checked by content, never by their name', () => {
  const refused = (name: string, content: Buffer | string, why: RegExp) => expect(() => checkDocument(name, Buffer.from(content))).toThrow(why);

  it('an executable named .pdf is refused as rules (ELF, PE, Mach-O, script, WebAssembly)', () => {
    refused('rules.pdf', Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), Buffer.alloc(64, 0)]), /ELF executable, not a document/);
    refused('rules.pdf', 'MZ\x90\x00binary', /Windows executable/);
    refused('rules.pdf', 'MZ this is printable text after the PE magic', /Windows executable/);
    refused('rules.txt', '#!/bin/sh\nrm -rf /\n', /script/);
    refused('rules.pdf', Buffer.from([0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1]), /Mach-O/);
    refused('rules.docx', Buffer.from([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), /WebAssembly/);
  });

  it('a name that claims another type is misleading and refused', () => {
    refused('rules.pdf', RULES_TEXT, /the name says \.pdf but the content is text\/plain/);
    refused('rules.txt', PDF, /the name says \.txt but the content is application\/pdf/);
    refused('rules.exe', RULES_TEXT, /the name says \.exe/);
    refused('rules.sh', RULES_TEXT, /the name says \.sh/);
  });

  it('markup and active content are refused; zips that are not ODT/DOCX too', () => {
    refused('rules.txt', '<!DOCTYPE html><script>alert(1)</script>', /not a PDF, ODT, DOCX or UTF-8 text/);
    refused('rules.txt', '\uFEFF  <svg onload="x()"/>', /not a PDF/);
    refused('rules.pdf', Buffer.concat([PDF, Buffer.from('4 0 obj << /S /JavaScript /JS (app.alert(1)) >> endobj\n')]), /PDF with \/JavaScript/);
    refused('rules.pdf', Buffer.concat([PDF, Buffer.from('5 0 obj << /S /Launch /F (cmd.exe) >> endobj\n')]), /\/Launch/);
    refused('rules.docx', docx({ 'word/vbaProject.bin': Buffer.from('VBA') }), /macros/);
    // Only the bytes of a zip, not a zip: refused, whatever names appear in it.
    refused('rules.docx', Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.from('word/document.xml [Content_Types].xml'), Buffer.alloc(64)]), /not a PDF, ODT, DOCX or UTF-8 text document: a zip that cannot be read/);
    refused('rules.zip', Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.from('evil.exe')]), /not a PDF/);
    refused('rules.txt', Buffer.from([0xff, 0xfe, 0x41, 0x00]), /not a PDF/);
    refused('rules.txt', '', /empty/);
  });

  it('PDF, ODT, DOCX and UTF-8 text pass, whatever case the extension is in, or none', () => {
    expect(checkDocument('Rules.PDF', PDF).mediaType).toBe('application/pdf');
    expect(checkDocument('rules', Buffer.from(RULES_TEXT)).mediaType).toBe('text/plain; charset=utf-8');
    expect(checkDocument('rules.md', Buffer.from('# 管理規定\n')).sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(checkDocument('rules.odt', odt()).mediaType).toBe('application/vnd.oasis.opendocument.text');
    expect(checkDocument('Rules.DOCX', docx()).mediaType).toBe('application/vnd.openxmlformats-officedocument.wordprocessingml.document');
    expect(sniffDocumentType(Buffer.from('%PDF-1.7 … /JSFont'))).toBe('application/pdf');
    expect(checkDocument('r.pdf', Buffer.from('%PDF-1.7\n<< /JSFont 1 >>\n')).mediaType).toBe('application/pdf');
  });
});

describe('nia-link rules (CLI)', () => {
  let dir: string;
  /** The control database of `dir`'s installation: its SQLite file, or (PostgreSQL pass) a scratch database. */
  let db: TestDatabase;
  beforeEach(async () => {
    dir = tmpDir();
    db = await testDatabase();
  });
  afterEach(async () => {
    rmSync(dir, { recursive: true, force: true });
    await db?.drop();
  });
  const run = (args: string[]) => cli(dir, args, db.env);

  it('rules add refuses an executable named .pdf with one line and stores nothing; rules review/show/list work as written', () => {
    expect(run(['init']).code).toBe(0);
    expect(run(['agency', 'add', '--code', 'A003', '--name', '內政部警政署']).code).toBe(0);
    const evil = writeTemp(dir, 'evil.pdf', Buffer.from('MZ\x90\x00binary', 'latin1'));
    const r = run(['rules', 'add', '--agency', 'A003', '--file', evil]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/evil\.pdf: the content is a Windows executable/);
    expect(JSON.parse(run(['rules', 'list', '--json']).stdout)).toEqual([]);

    const ok = run(['rules', 'add', '--agency', 'A003', '--file', writeTemp(dir, 'rules.txt', RULES_TEXT)]);
    expect(ok.code).toBe(0);
    const docId = ok.stdout.trim().split('\n').pop()!;
    expect(run(['rules', 'review', docId, '--covers', '1,2,3,4,5,6,7', '--note', '缺帳號異動']).stdout).toMatch(/version 1 .*missing topic 8/);
    expect(run(['rules', 'review', docId, '--covers', '1,2,3,4,5,6,7,8']).stdout).toMatch(/covers all 8 topics/);
    const shown = run(['rules', 'show', docId]).stdout;
    expect(shown).toMatch(/\[x\] 8\. 系統帳號權限異動之作業程序/);
    expect(shown).toMatch(/covers 1,2,3,4,5,6,7 — 缺帳號異動/);
    const bad = run(['rules', 'review', docId, '--link', '1', '--covers', '1']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/rules review DOCUMENT_ID` or `rules review --link LINK_ID/);
    const types = (JSON.parse(run(['log', 'list', '--json']).stdout) as { type: string }[]).map((x) => x.type);
    expect(types).toEqual(['agency.added', 'rules.added', 'rules.reviewed', 'rules.reviewed']);
  });
});
