import { createHash } from 'node:crypto';
import path from 'node:path';
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

/**
 * The media type of a management-rules document, decided by its content (never by its name): PDF,
 * OpenDocument / OOXML (a zip with the right marker), or UTF-8 text. Anything else is refused.
 */
export function sniffDocumentType(content: Buffer): string | null {
  if (executableKind(content)) return null;
  if (content.subarray(0, 5).toString('latin1') === '%PDF-') return PDF;
  if (content.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04]))) {
    const head = content.subarray(0, Math.min(content.length, 4096)).toString('latin1');
    if (head.includes('mimetypeapplication/vnd.oasis.opendocument.text')) return ODT;
    if (content.includes(Buffer.from('word/document.xml'))) return DOCX;
    return null;
  }
  if (content.includes(0)) return null;
  const text = content.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(content) && !/[\x01-\x08\x0e-\x1f\x7f]/.test(text)) {
    // Markup is a page a browser would run, not a text document.
    if (/^\uFEFF?\s*<(!doctype|html|svg|\?xml|script)\b/i.test(text)) return null;
    return TEXT;
  }
  return null;
}

/** Active content inside an otherwise well-formed document: scripts, launch actions, macros. */
function activeContent(mediaType: string, content: Buffer): string | null {
  if (mediaType === PDF) {
    for (const k of ['/JavaScript', '/JS', '/Launch', '/EmbeddedFile']) {
      // A name token ends at a delimiter: /JS must not match /JSomething.
      for (let at = content.indexOf(k); at >= 0; at = content.indexOf(k, at + 1)) {
        if (!/[A-Za-z0-9]/.test(String.fromCharCode(content[at + k.length] ?? 0x20))) return `a PDF with ${k} (scripts, launch actions and attachments are refused)`;
      }
    }
  }
  if (mediaType === DOCX && content.includes(Buffer.from('vbaProject.bin'))) return 'a Word document with macros';
  if (mediaType === ODT && content.includes(Buffer.from('Basic/'))) return 'an OpenDocument text with macros';
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
  const mediaType = sniffDocumentType(content);
  if (!mediaType) throw new UserError(`${filename}: not a PDF, ODT, DOCX or UTF-8 text document (checked by content)`, 'document.type');
  const active = activeContent(mediaType, content);
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
