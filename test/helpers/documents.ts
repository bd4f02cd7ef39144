import { crc32, deflateRawSync, deflateSync } from 'node:zlib';

export interface ZipInput {
  name: string;
  data: Buffer | string;
  /** Stored instead of deflated (ODF's `mimetype` must be). */
  store?: boolean;
  /** Claim this uncompressed size in the headers instead of the real one. */
  claimSize?: number;
}

/** A zip written the plain way (local headers, central directory, end record), as Office and LibreOffice write them. */
export function zip(entries: readonly ZipInput[]): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const data = Buffer.from(e.data);
    const method = e.store ? 0 : 8;
    const body = method ? deflateRawSync(data) : data;
    const name = Buffer.from(e.name, 'utf8');
    const crc = crc32(data);
    const size = e.claimSize ?? data.length;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(0x800, 8);
    cd.writeUInt16LE(method, 10);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(body.length, 20);
    cd.writeUInt32LE(size, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    central.push(cd, name);
    offset += 30 + name.length + body.length;
  }
  const dir = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}

const XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n';
const W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"';
const REL = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships';

export const DOCX_TYPES =
  XML +
  '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
  '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Default Extension="png" ContentType="image/png"/>' +
  '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>' +
  '<Override PartName="/word/settings.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.settings+xml"/>' +
  '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/></Types>';

export const docxBody = (inner: string) => `${XML}<w:document ${W}><w:body>${inner}<w:sectPr/></w:body></w:document>`;

/**
 * A small Word document as Word writes it: content types, package and part relationships, the main
 * part with a paragraph and a hyperlink (an external relationship that is only followed when clicked),
 * settings, core properties, a picture. `over` replaces or adds parts.
 */
export function docx(over: Record<string, string | Buffer | null> = {}): Buffer {
  const parts: Record<string, string | Buffer | null> = {
    '[Content_Types].xml': DOCX_TYPES,
    '_rels/.rels': `${XML}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="${REL}/officeDocument" Target="word/document.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/></Relationships>`,
    'word/document.xml': docxBody('<w:p><w:r><w:t>應用移民資訊管理規定</w:t></w:r></w:p><w:p><w:hyperlink r:id="rId9"><w:r><w:t>全國法規資料庫</w:t></w:r></w:hyperlink></w:p><w:p><w:fldSimple w:instr=" PAGE "><w:r><w:t>1</w:t></w:r></w:fldSimple></w:p>'),
    'word/_rels/document.xml.rels': `${XML}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId8" Type="${REL}/settings" Target="settings.xml"/><Relationship Id="rId7" Type="${REL}/image" Target="media/image1.png"/><Relationship Id="rId9" Type="${REL}/hyperlink" Target="https://law.moj.gov.tw/" TargetMode="External"/></Relationships>`,
    'word/settings.xml': `${XML}<w:settings ${W}><w:zoom w:percent="100"/></w:settings>`,
    'word/media/image1.png': Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex'),
    'docProps/core.xml': `${XML}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>管理規定</dc:title></cp:coreProperties>`,
    ...over,
  };
  return zip(Object.entries(parts).filter((e): e is [string, string | Buffer] => e[1] !== null).map(([name, data]) => ({ name, data })));
}

const ODF_NS =
  'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:script="urn:oasis:names:tc:opendocument:xmlns:script:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" office:version="1.3"';

export const odtContent = (body: string, head = '<office:scripts/>') =>
  `${XML}<office:document-content ${ODF_NS}>${head}<office:body><office:text>${body}</office:text></office:body></office:document-content>`;

export const odtManifest = (extra = '') =>
  `${XML}<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/><manifest:file-entry manifest:full-path="styles.xml" manifest:media-type="text/xml"/><manifest:file-entry manifest:full-path="Configurations2/" manifest:media-type="application/vnd.sun.xml.ui.configuration"/>${extra}</manifest:manifest>`;

/**
 * A small OpenDocument text as LibreOffice writes it: `mimetype` first and stored, an empty
 * `office:scripts`, a hyperlink, LibreOffice's empty configuration folder, the manifest. `extra`:
 * more entries after these; `over` replaces parts.
 */
export function odt(over: Record<string, string | null> = {}, extra: { name: string; data: string }[] = []): Buffer {
  const parts: Record<string, string | null> = {
    'Configurations2/': '',
    'Configurations2/accelerator/current.xml': '',
    'content.xml': odtContent('<text:p>應用移民資訊管理規定</text:p><text:p><text:a xlink:type="simple" xlink:href="https://law.moj.gov.tw/">全國法規資料庫</text:a></text:p>'),
    'styles.xml': `${XML}<office:document-styles ${ODF_NS}><office:styles/></office:document-styles>`,
    'META-INF/manifest.xml': odtManifest(),
    ...over,
  };
  return zip([
    { name: 'mimetype', data: 'application/vnd.oasis.opendocument.text', store: true },
    ...Object.entries(parts)
      .filter((e): e is [string, string] => e[1] !== null)
      .map(([name, data]) => ({ name, data })),
    ...extra,
  ]);
}

/** A PDF from its objects, with a correct cross-reference table (readers find every object by it). */
export function pdf(objects: readonly (string | Buffer)[], trailer = '/Root 1 0 R'): Buffer {
  const chunks: Buffer[] = [Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  const offsets: number[] = [];
  let at = chunks[0].length;
  objects.forEach((o, i) => {
    const body = Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`, 'latin1'), typeof o === 'string' ? Buffer.from(o, 'latin1') : o, Buffer.from('\nendobj\n', 'latin1')]);
    offsets.push(at);
    chunks.push(body);
    at += body.length;
  });
  const xref = `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}trailer\n<< /Size ${objects.length + 1} ${trailer} >>\nstartxref\n${at}\n%%EOF\n`;
  chunks.push(Buffer.from(xref, 'latin1'));
  return Buffer.concat(chunks);
}

/** A stream object with its dictionary entries and data (deflated when `flate`). */
export function pdfStream(dict: string, data: Buffer | string, flate = true): Buffer {
  const body = flate ? deflateSync(Buffer.from(data)) : Buffer.from(data);
  return Buffer.concat([Buffer.from(`<< ${dict}${flate ? ' /Filter /FlateDecode' : ''} /Length ${body.length} >>\nstream\n`, 'latin1'), body, Buffer.from('\nendstream', 'latin1')]);
}

/** An object stream holding `objects` (numbered from `first`), as PDF 1.5 writers compress objects. */
export function objectStream(objects: readonly string[], firstNumber: number, extraDict = ''): Buffer {
  let offsets = '';
  let body = '';
  objects.forEach((o, i) => {
    offsets += `${firstNumber + i} ${body.length} `;
    body += o + '\n';
  });
  return pdfStream(`/Type /ObjStm /N ${objects.length} /First ${offsets.length}${extraDict ? ' ' + extraDict : ''}`, offsets + body);
}

/** A plain one-page PDF: catalog, pages, a page with a deflated content stream and a font. */
export function plainPdf(extraCatalog = ''): Buffer {
  return pdf([
    `<< /Type /Catalog /Pages 2 0 R${extraCatalog} >>`,
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    pdfStream('', 'BT /F1 12 Tf 72 720 Td (Management rules) Tj ET'),
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ]);
}
