import { createHash } from 'node:crypto';
import path from 'node:path';
import { inflateRawSync, inflateSync } from 'node:zlib';
import { UserError } from '../errors';

export const MAX_DOCUMENT_BYTES = 20 * 1024 * 1024;

const PDF = 'application/pdf';
const ODT = 'application/vnd.oasis.opendocument.text';
const DOCX = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';
const TEXT = 'text/plain; charset=utf-8';

/** Magic numbers of programs: whatever its name says, such a file is refused. */
const EXECUTABLES: { name: string; magic: Buffer }[] = [
  { name: 'an ELF executable', magic: Buffer.from([0x7f, 0x45, 0x4c, 0x46]) },
  { name: 'a Windows executable (MZ/PE)', magic: Buffer.from('MZ', 'latin1') },
  { name: 'a script (#!)', magic: Buffer.from('#!', 'latin1') },
  { name: 'a Mach-O executable', magic: Buffer.from([0xfe, 0xed, 0xfa, 0xce]) },
  { name: 'a Mach-O executable', magic: Buffer.from([0xfe, 0xed, 0xfa, 0xcf]) },
  { name: 'a Mach-O executable', magic: Buffer.from([0xce, 0xfa, 0xed, 0xfe]) },
  { name: 'a Mach-O executable', magic: Buffer.from([0xcf, 0xfa, 0xed, 0xfe]) },
  { name: 'a Java class or Mach-O universal binary', magic: Buffer.from([0xca, 0xfe, 0xba, 0xbe]) },
  { name: 'a WebAssembly module', magic: Buffer.from([0x00, 0x61, 0x73, 0x6d]) },
];

/** What a file's name claims, for the name-vs-content check. */
const BY_EXTENSION: Record<string, string> = { '.pdf': PDF, '.odt': ODT, '.docx': DOCX, '.txt': TEXT, '.text': TEXT, '.md': TEXT };

/** The program a file is, by its first bytes, or null. */
export function executableKind(content: Buffer): string | null {
  return EXECUTABLES.find((e) => content.subarray(0, e.magic.length).equals(e.magic))?.name ?? null;
}

// ---- inflating, bounded ----

/** All that may be inflated while checking one document: a compression bomb is refused, not expanded. */
export const MAX_INFLATED_BYTES = 50 * 1024 * 1024;

/** A refusal with its one-line reason; checkDocument names the file. */
class Refusal extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}
const refuse = (reason: string, code = 'document.active-content'): never => {
  throw new Refusal(reason, code);
};

class InflateBudget {
  private left = MAX_INFLATED_BYTES;
  /** Inflate zlib (PDF) or raw deflate (zip) data to at most `expected` bytes (or what is left). */
  take(data: Buffer, raw: boolean, what: string, expected?: number): Buffer {
    const limit = Math.min(this.left, expected ?? this.left);
    let out: Buffer;
    try {
      out = (raw ? inflateRawSync : inflateSync)(data, { maxOutputLength: Math.max(1, limit) });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        refuse(expected !== undefined && expected < this.left ? `${what} inflates past its declared size` : `${what} inflates past ${MAX_INFLATED_BYTES / 1024 / 1024} MiB in all (a compression bomb)`, 'document.bomb');
      }
      return refuse(`${what} cannot be inflated (${(err as Error).message})`, 'document.malformed');
    }
    if (out.length > limit) refuse(`${what} inflates past ${MAX_INFLATED_BYTES / 1024 / 1024} MiB in all (a compression bomb)`, 'document.bomb');
    this.left -= out.length;
    return out;
  }
}

// ---- PDF ----

/**
 * Names whose presence means the PDF can act on its own: run scripts, launch programs, carry or
 * open other files, submit or import data, render Flash/XFA. An /OpenAction that is only a
 * destination is fine; one that runs a script names /JavaScript or /JS. Encrypted content cannot
 * be checked at all.
 */
const PDF_ACTIVE: Record<string, string> = {
  JavaScript: 'scripts',
  JS: 'scripts',
  Launch: 'launch actions',
  EmbeddedFile: 'attachments',
  EmbeddedFiles: 'attachments',
  AA: 'automatic actions',
  RichMedia: 'rich media',
  XFA: 'XFA forms',
  GoToE: 'actions into attachments',
  GoToR: 'actions opening other files',
  SubmitForm: 'form submissions',
  ImportData: 'data imports',
  Encrypt: 'encrypted contents (they cannot be checked: save it without a password)',
};

/** A PDF name token: `/` and regular characters (anything but white space and delimiters). */
const PDF_NAME = /\/([^\x00\x09\x0a\x0c\x0d\x20()<>[\]{}/%]*)/g;
/** `#xx` is a hex escape inside a name: `/J#61vaScript` is /JavaScript to every reader. */
const decodePdfName = (raw: string) => raw.replace(/#([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

function pdfActiveName(text: string): string | null {
  for (const m of text.matchAll(PDF_NAME)) {
    const name = decodePdfName(m[1]);
    if (Object.prototype.hasOwnProperty.call(PDF_ACTIVE, name)) return name;
  }
  return null;
}

type PdfToken = { kind: 'name' | 'num' | 'word' | 'open' | 'close' | 'aopen' | 'aclose' | 'str'; text: string };

/** The tokens of a dictionary's text (strings are skipped: only their place matters here). */
function pdfTokens(s: string): PdfToken[] {
  const out: PdfToken[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (/[\x00\x09\x0a\x0c\x0d\x20]/.test(c)) i++;
    else if (c === '%') while (i < s.length && s[i] !== '\n' && s[i] !== '\r') i++;
    else if (s.startsWith('<<', i)) (out.push({ kind: 'open', text: '<<' }), (i += 2));
    else if (s.startsWith('>>', i)) (out.push({ kind: 'close', text: '>>' }), (i += 2));
    else if (c === '[') (out.push({ kind: 'aopen', text: '[' }), i++);
    else if (c === ']') (out.push({ kind: 'aclose', text: ']' }), i++);
    else if (c === '<') {
      const e = s.indexOf('>', i);
      i = e < 0 ? s.length : e + 1;
      out.push({ kind: 'str', text: '' });
    } else if (c === '(') {
      let depth = 0;
      for (; i < s.length; i++) {
        if (s[i] === '\\') i++;
        else if (s[i] === '(') depth++;
        else if (s[i] === ')' && --depth === 0) break;
      }
      i++;
      out.push({ kind: 'str', text: '' });
    } else if (c === '/') {
      const m = /^\/[^\x00\x09\x0a\x0c\x0d\x20()<>[\]{}/%]*/.exec(s.slice(i, i + 256))!;
      out.push({ kind: 'name', text: decodePdfName(m[0].slice(1)) });
      i += m[0].length;
    } else {
      const m = /^[^\x00\x09\x0a\x0c\x0d\x20()<>[\]{}/%]+/.exec(s.slice(i, i + 256));
      const w = m ? m[0] : c;
      out.push({ kind: /^[+-]?(\d+\.?\d*|\.\d+)$/.test(w) ? 'num' : 'word', text: w });
      i += w.length;
    }
  }
  return out;
}

/** The top-level entries of a dictionary: key → its value's tokens. */
function pdfDict(text: string): Map<string, PdfToken[]> {
  const t = pdfTokens(text);
  const entries = new Map<string, PdfToken[]>();
  if (t[0]?.kind !== 'open') return entries;
  let i = 1;
  while (i < t.length && t[i].kind !== 'close') {
    if (t[i].kind !== 'name') {
      i++;
      continue;
    }
    const key = t[i++].text;
    const start = i;
    if (t[i]?.kind === 'open' || t[i]?.kind === 'aopen') {
      let depth = 0;
      do {
        if (t[i].kind === 'open' || t[i].kind === 'aopen') depth++;
        else if (t[i].kind === 'close' || t[i].kind === 'aclose') depth--;
        i++;
      } while (i < t.length && depth > 0);
    } else if (t[i]?.kind === 'num' && t[i + 1]?.kind === 'num' && t[i + 2]?.text === 'R') i += 3;
    else i++;
    entries.set(key, t.slice(start, i));
  }
  return entries;
}

/**
 * Object streams: objects stored compressed inside a stream, where a byte search never looks. Each
 * `stream` keyword's object is read back to the end of the object before it; when its names say
 * object stream (/Type /ObjStm, or /N with /First), its dictionary must parse and its data inflate
 * (bounded) for the same name check as the file. One that cannot be decoded here is refused: a
 * reader would still find the objects in it.
 */
function pdfObjectStreams(content: Buffer, text: string, budget: InflateBudget): string | null {
  for (const m of text.matchAll(/stream(\r\n|\n|\r)/g)) {
    const at = m.index!;
    if (at > 0 && /[A-Za-z]/.test(text[at - 1])) continue; // endstream, or a longer word
    const from = Math.max(at - 64 * 1024, text.lastIndexOf('endobj', at) + 6, text.lastIndexOf('endstream', at - 1) + 9, 0);
    const head = text.slice(from, at);
    const names = new Set([...head.matchAll(PDF_NAME)].map((n) => decodePdfName(n[1])));
    if (!names.has('ObjStm') && !(names.has('N') && names.has('First'))) continue;
    const open = head.indexOf('<<');
    const dict = pdfDict(open < 0 ? '' : head.slice(open));
    if (!(dict.get('Type')?.[0]?.text === 'ObjStm' || (dict.has('N') && dict.has('First')))) return 'an object stream whose dictionary cannot be read';
    const start = at + m[0].length;
    const len = dict.get('Length');
    let end = -1;
    if (len?.length === 1 && len[0].kind === 'num') {
      const l = Number(len[0].text);
      if (Number.isInteger(l) && l >= 0 && /^(\r\n|\n|\r)?endstream/.test(text.slice(start + l, start + l + 12))) end = start + l;
    }
    if (end < 0) end = text.indexOf('endstream', start);
    if (end < 0) return 'an object stream without its end';
    const filters = (dict.get('Filter') ?? []).filter((x) => x.kind !== 'aopen' && x.kind !== 'aclose');
    if (filters.some((f) => f.kind !== 'name' || (f.text !== 'FlateDecode' && f.text !== 'Fl'))) return 'an object stream with a filter that cannot be checked (only FlateDecode is)';
    const parms = dict.get('DecodeParms') ?? dict.get('DP');
    if (parms && !(parms.length === 1 && parms[0].text === 'null')) return 'an object stream with decode parameters that cannot be checked';
    let data = content.subarray(start, end);
    for (let i = 0; i < filters.length; i++) data = budget.take(data, false, 'an object stream');
    const name = pdfActiveName(data.toString('latin1'));
    if (name) return `a PDF with /${name} in a compressed object stream (${PDF_ACTIVE[name]} are refused)`;
  }
  return null;
}

function pdfActiveContent(content: Buffer, budget: InflateBudget): string | null {
  const text = content.toString('latin1');
  // Every byte, stream data included: a reader may find an object anywhere its cross-reference points.
  const name = pdfActiveName(text);
  if (name) return `a PDF with /${name} (${PDF_ACTIVE[name]} are refused)`;
  return pdfObjectStreams(content, text, budget);
}

// ---- zip containers (ODT, DOCX) ----

interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  offset: number;
  dataStart: number;
  dataEnd: number;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32(b: Buffer): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * The entries of a zip, from its central directory, checked the strict way: one end record at the
 * very end, no zip64, multi-volume or encryption, stored or deflated entries only, each local header
 * naming the same file as the directory, and the entries covering the archive exactly with no gap
 * or overlap (where a second reader could find something else). Names are plain relative paths, each
 * once (part names are compared without case, as Office does).
 */
function readZip(b: Buffer): ZipEntry[] {
  const bad = (why: string): never => refuse(`not a PDF, ODT, DOCX or UTF-8 text document: a zip that cannot be read (${why})`, 'document.type');
  if (b.length < 22) bad('too short');
  let eocd = -1;
  for (let i = b.length - 22; i >= Math.max(0, b.length - 22 - 0xffff); i--) {
    if (b.readUInt32LE(i) === 0x06054b50 && i + 22 + b.readUInt16LE(i + 20) === b.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) bad('no end of central directory');
  if (eocd >= 20 && b.readUInt32LE(eocd - 20) === 0x07064b50) bad('zip64');
  const [disk, cdDisk, onDisk, total] = [4, 6, 8, 10].map((o) => b.readUInt16LE(eocd + o));
  const cdSize = b.readUInt32LE(eocd + 12);
  const cdOffset = b.readUInt32LE(eocd + 16);
  if (disk !== 0 || cdDisk !== 0 || onDisk !== total) bad('multi-volume');
  if (total === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) bad('zip64');
  if (cdOffset + cdSize !== eocd) bad('the central directory is not where the end record says');
  if (total === 0 || total > 10_000) bad(`${total} entries`);
  const entries: ZipEntry[] = [];
  const seen = new Set<string>();
  let p = cdOffset;
  for (let n = 0; n < total; n++) {
    if (p + 46 > eocd || b.readUInt32LE(p) !== 0x02014b50) bad('a broken central directory');
    const flags = b.readUInt16LE(p + 8);
    const method = b.readUInt16LE(p + 10);
    const nameLen = b.readUInt16LE(p + 28);
    const next = p + 46 + nameLen + b.readUInt16LE(p + 30) + b.readUInt16LE(p + 32);
    if (next > eocd) bad('a broken central directory');
    const nameBytes = b.subarray(p + 46, p + 46 + nameLen);
    const name = nameBytes.toString(flags & 0x800 ? 'utf8' : 'latin1');
    if (!name || /[\x00-\x1f\x7f\\]/.test(name) || name.startsWith('/') || name.split('/').some((s, i, a) => s === '..' || s === '.' || (s === '' && i < a.length - 1)) || name.includes('\ufffd')) {
      bad(`an entry named ${JSON.stringify(name)}`);
    }
    if (seen.has(name.toLowerCase())) bad(`${name} twice`);
    seen.add(name.toLowerCase());
    if (flags & 0x1) refuse(`an encrypted entry ${name} (it cannot be checked)`, 'document.type');
    if (method !== 0 && method !== 8) bad(`${name} is compressed with method ${method}`);
    const offset = b.readUInt32LE(p + 42);
    const compressedSize = b.readUInt32LE(p + 20);
    const size = b.readUInt32LE(p + 24);
    if (offset + 30 > cdOffset || b.readUInt32LE(offset) !== 0x04034b50) bad(`no local header for ${name}`);
    const localNameLen = b.readUInt16LE(offset + 26);
    const dataStart = offset + 30 + localNameLen + b.readUInt16LE(offset + 28);
    if (!b.subarray(offset + 30, offset + 30 + localNameLen).equals(nameBytes) || b.readUInt16LE(offset + 8) !== method) bad(`the local header of ${name} differs from the directory`);
    const dataEnd = dataStart + compressedSize;
    if (dataEnd > cdOffset) bad(`${name} runs past the central directory`);
    if (method === 0 && compressedSize !== size) bad(`${name} is stored with two sizes`);
    entries.push({ name, method, flags, crc: b.readUInt32LE(p + 16), compressedSize, size, offset, dataStart, dataEnd });
    p = next;
  }
  if (p !== eocd) bad('a broken central directory');
  let expected = 0;
  for (const e of [...entries].sort((x, y) => x.offset - y.offset)) {
    if (e.offset !== expected) bad(e.offset < expected ? `${e.name} overlaps another entry` : `bytes before ${e.name} that no entry accounts for`);
    expected = e.dataEnd;
    if (e.flags & 0x8) expected += expected + 4 <= cdOffset && b.readUInt32LE(expected) === 0x08074b50 ? 16 : 12;
  }
  if (expected !== cdOffset) bad('bytes before the central directory that no entry accounts for');
  if (entries.reduce((n, e) => n + e.size, 0) > MAX_INFLATED_BYTES) refuse(`a zip that inflates past ${MAX_INFLATED_BYTES / 1024 / 1024} MiB (a compression bomb)`, 'document.bomb');
  return entries;
}

/** Every entry's bytes, inflated within the budget and checked against its size and CRC. */
function unzip(b: Buffer, entries: readonly ZipEntry[], budget: InflateBudget): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of entries) {
    const raw = b.subarray(e.dataStart, e.dataEnd);
    const data = e.method === 0 ? raw : budget.take(raw, true, `the entry ${e.name}`, e.size);
    if (data.length !== e.size || crc32(data) !== e.crc) refuse(`the entry ${e.name} is corrupt (size or CRC)`, 'document.type');
    out.set(e.name, data);
  }
  return out;
}

const ODT_MIMETYPE = 'application/vnd.oasis.opendocument.text';

/** ODF puts an uncompressed `mimetype` first; OOXML has [Content_Types].xml and, for Word, its main part. */
function zipType(b: Buffer, entries: readonly ZipEntry[]): string | null {
  const first = [...entries].sort((x, y) => x.offset - y.offset)[0];
  if (first.name === 'mimetype' && first.method === 0 && b.subarray(first.dataStart, first.dataEnd).toString('latin1') === ODT_MIMETYPE) return ODT;
  const names = new Set(entries.map((e) => e.name));
  if (names.has('[Content_Types].xml') && names.has('word/document.xml')) return DOCX;
  return null;
}

/** XML text with its five entities and character references resolved (`&#69;xternal` is External). */
const xmlText = (s: string) =>
  s.replace(/&(#x[0-9A-Fa-f]+|#\d+|amp|lt|gt|quot|apos);/g, (_, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp <= 0x10ffff ? String.fromCodePoint(cp) : '';
    }
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[e];
  });

/** Each element start tag: its local name (whatever prefix a namespace got) and attributes by local name. */
function* xmlElements(xml: string): Generator<{ local: string; attrs: Map<string, string> }> {
  // XML names may be any letters, not only ASCII: a prefix like `腳本:` must not hide an element.
  for (const m of xml.matchAll(/<(?:[^\s<>/:="'!?]+:)?([^\s<>/:="'!?]+)((?:\s+[^\s<>/="']+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*\/?>/g)) {
    const attrs = new Map<string, string>();
    for (const a of m[2].matchAll(/(?:[^\s<>/:="']+:)?([^\s<>/:="']+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) attrs.set(a[1], xmlText(a[2] ?? a[3]));
    yield { local: m[1], attrs };
  }
}

const IMAGE = /\.(png|jpe?g|gif|bmp|tiff?|emf|wmf)$/i;

/** Part names of a Word document that are fine, and the content types they may have. */
const DOCX_PARTS = [
  /^\[Content_Types\]\.xml$/,
  /^_rels\/\.rels$/,
  /^docProps\/(core|app|custom)\.xml$/,
  /^docProps\/thumbnail\.(jpe?g|png|emf|wmf)$/,
  /^word\/[A-Za-z0-9]+\.xml$/,
  /^word\/(theme|glossary)\/[A-Za-z0-9]+\.xml$/,
  /^word\/(glossary\/|theme\/)?_rels\/[A-Za-z0-9]+\.xml\.rels$/,
  /^word\/(glossary\/)?media\/[A-Za-z0-9_.-]+\.(png|jpe?g|gif|bmp|tiff?|emf|wmf)$/,
  /^word\/fonts\/[A-Za-z0-9_.-]+\.odttf$/,
  /^customXml\/(item|itemProps)\d+\.xml$/,
  /^customXml\/_rels\/item\d+\.xml\.rels$/,
];
const DOCX_TYPES = [
  /^(application|text)\/xml$/,
  /^application\/vnd\.openxmlformats-package\.(relationships|core-properties)\+xml$/,
  /^application\/vnd\.openxmlformats-officedocument\.(extended-properties|custom-properties|customXmlProperties|theme)\+xml$/,
  /^application\/vnd\.openxmlformats-officedocument\.obfuscatedFont$/,
  /^application\/vnd\.openxmlformats-officedocument\.wordprocessingml\.(document\.main|document\.glossary|styles|settings|webSettings|fontTable|numbering|footnotes|endnotes|comments|commentsExtended|commentsIds|commentsExtensible|header|footer|people)\+xml$/,
  /^application\/vnd\.ms-word\.(stylesWithEffects|commentsExtended|commentsIds|commentsExtensible)\+xml$/,
  /^image\/(png|jpeg|gif|bmp|tiff|x-emf|x-wmf)$/,
];
/** Elements of a Word body that embed or run something: OLE objects, ActiveX, imported chunks, subdocuments. */
const DOCX_ELEMENTS: Record<string, string> = { object: 'embedded objects', OLEObject: 'embedded objects', control: 'ActiveX controls', altChunk: 'imported content', subDoc: 'subdocuments', binData: 'binary data' };
/** Fields that fetch or run something when the document is opened or updated. */
const DOCX_FIELDS = /\b(DDE|DDEAUTO|INCLUDETEXT|INCLUDEPICTURE|IMPORT|LINK|MACROBUTTON)\b/i;

function dangerousPart(name: string): string | null {
  if (/(^|\/)vba(Project\.bin|Data\.xml)$/i.test(name)) return 'a Word document with macros (vbaProject)';
  if (/^(Basic|Scripts)\//i.test(name)) return 'an OpenDocument text with macros (Basic/ or Scripts/)';
  if (/(^|\/)activeX\//i.test(name)) return 'a document with ActiveX controls';
  if (/(^|\/)(embeddings|Object \d+|ObjectReplacements)\//i.test(name) || /oleObject/i.test(name)) return `a document with embedded objects (${name})`;
  if (/\.(bin|exe|dll|js|vbs|class|jar|py|bsh)$/i.test(name)) return `a document carrying a program (${name})`;
  return null;
}

function docxActiveContent(parts: Map<string, Buffer>): string | null {
  for (const name of parts.keys()) {
    const d = dangerousPart(name);
    if (d) return d;
    if (name.endsWith('/') ? parts.get(name)!.length !== 0 : !DOCX_PARTS.some((re) => re.test(name))) return `a Word document with an unexpected part ${name}`;
  }
  const types = parts.get('[Content_Types].xml')!.toString('utf8');
  const byExt = new Map<string, string>();
  const byPart = new Map<string, string>();
  for (const e of xmlElements(types)) {
    const ct = e.attrs.get('ContentType');
    if (ct === undefined) continue;
    if (!DOCX_TYPES.some((re) => re.test(ct))) return `a Word document with a part of type ${ct}`;
    if (e.local === 'Default' && e.attrs.has('Extension')) byExt.set(e.attrs.get('Extension')!.toLowerCase(), ct);
    if (e.local === 'Override' && e.attrs.has('PartName')) byPart.set(e.attrs.get('PartName')!.toLowerCase(), ct);
  }
  for (const name of parts.keys()) {
    if (name === '[Content_Types].xml' || name.endsWith('/')) continue;
    if (!byPart.has('/' + name.toLowerCase()) && !byExt.has((/\.([^./]+)$/.exec(name)?.[1] ?? '').toLowerCase())) return `a Word document whose part ${name} has no content type`;
  }
  for (const [name, data] of parts) {
    if (!name.endsWith('.rels')) continue;
    for (const e of xmlElements(data.toString('utf8'))) {
      if (e.local !== 'Relationship' || e.attrs.get('TargetMode')?.trim() !== 'External') continue;
      const type = (e.attrs.get('Type') ?? '').split('/').pop() ?? '';
      const target = e.attrs.get('Target') ?? '';
      // A hyperlink is followed only when clicked; anything else external is fetched on opening (a remote template, a linked picture).
      if (type === 'hyperlink' && /^(https?|mailto):/i.test(target.trim())) continue;
      return `a Word document with an external ${type || 'relationship'} (${target.slice(0, 80)}), e.g. a remote template`;
    }
  }
  for (const [name, data] of parts) {
    if (!/^word\/.*\.xml$/.test(name)) continue;
    const xml = data.toString('utf8');
    let fields = '';
    for (const e of xmlElements(xml)) {
      const what = Object.prototype.hasOwnProperty.call(DOCX_ELEMENTS, e.local) ? DOCX_ELEMENTS[e.local] : undefined;
      if (what) return `a Word document with ${what} (${e.local} in ${name})`;
      if (e.attrs.has('instr')) fields += ' ' + e.attrs.get('instr');
    }
    // Field codes may be split across runs: the instruction texts are read together.
    for (const m of xml.matchAll(/<(?:[^\s<>/:="'!?]+:)?instrText(?:\s[^>]*)?>([^<]*)</g)) fields += xmlText(m[1]);
    const f = DOCX_FIELDS.exec(fields);
    if (f) return `a Word document with a ${f[1].toUpperCase()} field (it runs or fetches something)`;
  }
  return null;
}

const ODT_PARTS = [/^(mimetype|content\.xml|styles\.xml|meta\.xml|settings\.xml|manifest\.rdf|META-INF\/manifest\.xml|META-INF\/documentsignatures\.xml)$/, /^Thumbnails\/thumbnail\.png$/, /^Pictures\/[A-Za-z0-9_.-]+\.(png|jpe?g|gif|bmp|tiff?|emf|wmf|svm)$/];
const ODT_TYPES = [/^$/, /^application\/vnd\.oasis\.opendocument\.text$/, /^(text|application)\/xml$/, /^application\/rdf\+xml$/, /^image\/(png|jpeg|gif|bmp|tiff|x-emf|x-wmf|x-svm)$/, /^application\/vnd\.sun\.xml\.ui\.configuration$/];
/** Elements of ODF content that run or embed something: scripts, macros, event handlers, form controls, objects, linked sections. */
const ODT_ELEMENTS: Record<string, string> = {
  script: 'scripts',
  'event-listener': 'event handlers',
  'execute-macro': 'macro fields',
  form: 'form controls',
  object: 'embedded objects',
  'object-ole': 'embedded objects',
  applet: 'applets',
  plugin: 'plugins',
  'section-source': 'linked sections',
  'encryption-data': 'encrypted parts (they cannot be checked)',
};

function odtActiveContent(parts: Map<string, Buffer>): string | null {
  for (const [name, data] of parts) {
    const d = dangerousPart(name);
    if (d) return d;
    if (name.endsWith('/')) {
      if (data.length !== 0) return `an OpenDocument text with an unexpected part ${name}`;
      continue;
    }
    // LibreOffice writes an empty keyboard configuration; any other configuration may bind macros.
    if (name === 'Configurations2/accelerator/current.xml' && data.length === 0) continue;
    if (!ODT_PARTS.some((re) => re.test(name))) return `an OpenDocument text with an unexpected part ${name}`;
  }
  const manifest = parts.get('META-INF/manifest.xml');
  if (!manifest) return 'an OpenDocument text without META-INF/manifest.xml';
  for (const e of xmlElements(manifest.toString('utf8'))) {
    if (e.local === 'encryption-data') return 'an encrypted OpenDocument text (it cannot be checked)';
    if (e.local !== 'file-entry') continue;
    const type = e.attrs.get('media-type') ?? '';
    if (!ODT_TYPES.some((re) => re.test(type))) return `an OpenDocument text with a part of type ${type} (${e.attrs.get('full-path') ?? '?'})`;
  }
  for (const name of ['content.xml', 'styles.xml', 'settings.xml', 'meta.xml']) {
    const data = parts.get(name);
    if (!data) continue;
    for (const e of xmlElements(data.toString('utf8'))) {
      const what = Object.prototype.hasOwnProperty.call(ODT_ELEMENTS, e.local) ? ODT_ELEMENTS[e.local] : undefined;
      if (what) return `an OpenDocument text with ${what} (${e.local} in ${name})`;
      const href = e.attrs.get('href');
      if (href === undefined) continue;
      if (/^\s*(javascript|vbscript|vnd\.sun\.star\.script|macro|file|smb|data):/i.test(href)) return `an OpenDocument text with a link that runs or opens something (${href.slice(0, 80)})`;
      // Only a hyperlink may point elsewhere: an image or object with a URL is fetched on opening.
      if (e.local !== 'a' && /^\s*[A-Za-z][A-Za-z0-9+.-]*:/.test(href)) return `an OpenDocument text with an external reference (${href.slice(0, 80)} in ${e.local})`;
    }
  }
  return null;
}

// ---- what a document is, and whether it may be stored ----

/** The zip entries when the content is a zip; a zip that is not readable is refused with its reason. */
function zipOf(content: Buffer): ZipEntry[] | null {
  return content.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04])) ? readZip(content) : null;
}

function typeOf(content: Buffer, zip: ZipEntry[] | null): string | null {
  if (executableKind(content)) return null;
  if (content.subarray(0, 5).toString('latin1') === '%PDF-') return PDF;
  if (zip) return zipType(content, zip);
  if (content.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04]))) return null;
  if (content.includes(0)) return null;
  const text = content.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(content) && !/[\x01-\x08\x0e-\x1f\x7f]/.test(text)) {
    // Markup is a page a browser would run, not a text document.
    if (/^\uFEFF?\s*<(!doctype|html|svg|\?xml|script)\b/i.test(text)) return null;
    return TEXT;
  }
  return null;
}

/**
 * The media type of a management-rules document, decided by its content (never by its name): PDF,
 * OpenDocument text or Word (a readable zip with their markers), or UTF-8 text. Anything else: null.
 */
export function sniffDocumentType(content: Buffer): string | null {
  try {
    return typeOf(content, zipOf(content));
  } catch (err) {
    if (err instanceof Refusal) return null;
    throw err;
  }
}

/**
 * Active content inside an otherwise well-formed document, decided by parsing: PDF names decoded
 * and object streams inflated; zip containers read from their central directory, their parts and
 * content types allow-listed, relationships and markup checked.
 */
function activeContent(mediaType: string, content: Buffer, zip: ZipEntry[] | null): string | null {
  const budget = new InflateBudget();
  if (mediaType === PDF) return pdfActiveContent(content, budget);
  if (zip && mediaType === DOCX) return docxActiveContent(unzip(content, zip, budget));
  if (zip && mediaType === ODT) return odtActiveContent(unzip(content, zip, budget));
  return null;
}

export interface CheckedDocument {
  filename: string;
  mediaType: string;
  size: number;
  sha256: string;
  content: Buffer;
}

/**
 * A management-rules document as it may be stored: not empty, not too large, a PDF, ODT, DOCX or
 * UTF-8 text by content, without active content, and named for what it is (a name that claims
 * another type is misleading, and refused).
 */
export function checkDocument(filename: string, content: Buffer): CheckedDocument {
  if (content.length === 0) throw new UserError(`${filename}: the document is empty`, 'document.empty');
  if (content.length > MAX_DOCUMENT_BYTES) {
    throw new UserError(`${filename}: larger than ${MAX_DOCUMENT_BYTES / 1024 / 1024} MiB`, 'document.too-large');
  }
  const program = executableKind(content);
  if (program) throw new UserError(`${filename}: the content is ${program}, not a document (checked by content; refused whatever its name)`, 'document.executable');
  let mediaType: string | null;
  let active: string | null = null;
  try {
    const zip = zipOf(content);
    mediaType = typeOf(content, zip);
    if (mediaType) active = activeContent(mediaType, content, zip);
  } catch (err) {
    if (err instanceof Refusal) throw new UserError(`${filename}: ${err.message}`, err.code);
    throw err;
  }
  if (!mediaType) throw new UserError(`${filename}: not a PDF, ODT, DOCX or UTF-8 text document (checked by content)`, 'document.type');
  if (active) throw new UserError(`${filename}: ${active}`, 'document.active-content');
  const ext = path.extname(filename).toLowerCase();
  if (ext !== '' && BY_EXTENSION[ext] !== mediaType) {
    throw new UserError(
      `${filename}: the name says ${ext} but the content is ${mediaType.split(';')[0]}: name the file for what it is (.pdf, .odt, .docx, .txt)`,
      'document.misleading-name',
    );
  }
  return { filename, mediaType, size: content.length, sha256: createHash('sha256').update(content).digest('hex'), content };
}
