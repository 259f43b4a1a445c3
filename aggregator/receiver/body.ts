// Request-body handling before OTLP decoding: which format, which encoding, and gunzip with a cap on
// the decompressed size, so that a small gzip bomb cannot exhaust memory.
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { CiAuditError } from '../../core/errors.ts';
import type { OtlpFormat } from './otlp-encode.ts';

const gunzipAsync = promisify(gunzip);

export type ContentEncoding = 'gzip' | 'identity';

/** The OTLP format of a Content-Type header value (parameters such as charset are ignored), or undefined. */
export function formatOf(contentType: string | undefined): OtlpFormat | undefined {
  const media = contentType?.split(';', 1)[0]?.trim().toLowerCase();
  if (media === 'application/x-protobuf' || media === 'application/protobuf') return 'protobuf';
  if (media === 'application/json') return 'json';
  return undefined;
}

/** The encoding of a Content-Encoding header value, or undefined when it is not one we decode. */
export function encodingOf(contentEncoding: string | undefined): ContentEncoding | undefined {
  const value = (contentEncoding ?? '').trim().toLowerCase();
  if (value === '' || value === 'identity') return 'identity';
  if (value === 'gzip' || value === 'x-gzip') return 'gzip';
  return undefined;
}

/**
 * The body as the decoder needs it. Throws CIA_ERR_RECEIVER_TOO_LARGE when it is (or would
 * decompress to) more than `maxBytes`, CIA_ERR_RECEIVER_ENCODING when the gzip data is corrupt.
 */
export async function decodeBody(body: Buffer, encoding: ContentEncoding, maxBytes: number): Promise<Buffer> {
  if (encoding === 'identity') {
    if (body.byteLength > maxBytes) throw tooLarge(maxBytes);
    return body;
  }
  try {
    return await gunzipAsync(body, { maxOutputLength: maxBytes, chunkSize: gunzipChunkSize(body.byteLength) });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(maxBytes, cause);
    throw new CiAuditError('CIA_ERR_RECEIVER_ENCODING', `body is not valid gzip data: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Output chunk size for a gzip body of `compressedBytes`: an agent's batch (48 KB) inflates to about
 * 650 KB, and in zlib's default 16 KiB chunks (a call into zlib and a buffer each, all copied once
 * more at the end) gunzip cost twice as much CPU. Between 64 KiB and 1 MiB: a small body does not
 * get a large buffer, and `maxBytes` still bounds the whole.
 */
function gunzipChunkSize(compressedBytes: number): number {
  return Math.min(1024 * 1024, Math.max(64 * 1024, compressedBytes * 16));
}

function tooLarge(maxBytes: number, cause?: unknown): CiAuditError {
  return new CiAuditError(
    'CIA_ERR_RECEIVER_TOO_LARGE',
    `decompressed body exceeds limits.max_decompressed_bytes (${maxBytes} bytes); send smaller batches`,
    { cause, details: { limit: maxBytes } },
  );
}
