import { createHash } from 'node:crypto';
import type * as openpgp from 'openpgp';
import { signEncryptToFile } from '../crypto';
import type { FieldSpec } from '../domain';
import { csvLine } from './csv';
import { canWriteCsv, type ExtractRange, type ExtractSource } from './source';
import { projection } from './transforms';

export interface ExtractSpec {
  source: ExtractSource;
  dataset: string;
  fields: readonly FieldSpec[];
  hmacSecret: string;
  range: ExtractRange;
  signingKey: openpgp.PrivateKey;
  encryptionKey: openpgp.Key;
  /** Written new (never overwritten); the caller renames it into place once this resolves. */
  file: string;
}

export interface ExtractResult {
  rows: number;
  bytes: number;
  plainSha256: string;
  cipherSha256: string;
}

const BATCH_ROWS = 4000;

/**
 * rows (only the approved columns) → transforms → CSV (RFC 4180, UTF-8, header of field names) →
 * sign + encrypt → file. Streamed end to end. A source that writes CSV itself does so in a worker
 * thread while this thread encrypts; otherwise each pull builds one batch here, so the event loop
 * (and the job lock renewal) still runs between batches.
 */
export async function buildExtract(spec: ExtractSpec): Promise<ExtractResult> {
  const csv = canWriteCsv(spec.source) ? spec.source.csvStream(spec.dataset, spec.fields, spec.hmacSecret, spec.range) : null;
  if (csv) {
    const sealed = await signEncryptToFile(csv.stream, spec.signingKey, spec.encryptionKey, spec.file);
    const { rows, sha256 } = await csv.done;
    return { rows, bytes: sealed.bytes, plainSha256: sha256, cipherSha256: sealed.cipherSha256 };
  }
  const names = spec.fields.map((f) => f.name);
  const fns = projection(spec.fields, spec.hmacSecret);
  const plainHash = createHash('sha256');
  const encoder = new TextEncoder();
  let rows = 0;
  const batches = spec.source.batches(spec.dataset, names, spec.range, BATCH_ROWS)[Symbol.asyncIterator]();
  const emit = (controller: ReadableStreamDefaultController<Uint8Array>, text: string) => {
    const bytes = encoder.encode(text);
    plainHash.update(bytes);
    controller.enqueue(bytes);
  };
  let headerSent = false;
  const plain = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (!headerSent) {
          headerSent = true;
          return emit(controller, csvLine(names));
        }
        const next = await batches.next();
        if (next.done) return controller.close();
        let text = '';
        const values: string[] = new Array(fns.length);
        for (const row of next.value) {
          for (let i = 0; i < fns.length; i++) values[i] = fns[i](row[i]);
          text += csvLine(values);
        }
        rows += next.value.length;
        emit(controller, text);
      },
      async cancel() {
        await batches.return?.();
      },
    },
    { highWaterMark: 2 },
  );
  const sealed = await signEncryptToFile(plain, spec.signingKey, spec.encryptionKey, spec.file);
  return { rows, bytes: sealed.bytes, plainSha256: plainHash.digest('hex'), cipherSha256: sealed.cipherSha256 };
}
