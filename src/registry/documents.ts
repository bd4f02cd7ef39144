import { createHash } from 'node:crypto';
import { UserError } from '../errors';

export const MAX_DOCUMENT_BYTES = 20 * 1024 * 1024;

/**
 * The media type of a management-rules document, decided by its content (never by its name): PDF,
 * OpenDocument / OOXML (a zip with the right marker), or UTF-8 text. Anything else is refused.
 */
export function sniffDocumentType(content: Buffer): string | null {
  if (content.subarray(0, 5).toString('latin1') === '%PDF-') return 'application/pdf';
  if (content.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04]))) {
    const head = content.subarray(0, Math.min(content.length, 4096)).toString('latin1');
    if (head.includes('mimetypeapplication/vnd.oasis.opendocument.text')) return 'application/vnd.oasis.opendocument.text';
    if (content.includes(Buffer.from('word/document.xml'))) return 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';
    return null;
  }
  if (content.includes(0)) return null;
  const text = content.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(content) && !/[\x01-\x08\x0e-\x1f\x7f]/.test(text)) return 'text/plain; charset=utf-8';
  return null;
}

export interface CheckedDocument {
  filename: string;
  mediaType: string;
  size: number;
  sha256: string;
  content: Buffer;
}

export function checkDocument(filename: string, content: Buffer): CheckedDocument {
  if (content.length === 0) throw new UserError(`${filename}: the document is empty`, 'document.empty');
  if (content.length > MAX_DOCUMENT_BYTES) {
    throw new UserError(`${filename}: larger than ${MAX_DOCUMENT_BYTES / 1024 / 1024} MiB`, 'document.too-large');
  }
  const mediaType = sniffDocumentType(content);
  if (!mediaType) throw new UserError(`${filename}: not a PDF, ODT, DOCX or UTF-8 text document (checked by content)`, 'document.type');
  return { filename, mediaType, size: content.length, sha256: createHash('sha256').update(content).digest('hex'), content };
}
