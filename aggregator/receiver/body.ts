// Request-body handling before OTLP decoding: which format, which encoding, and gunzip or zstd
// decompression with a cap on the decompressed size, so that a small gzip or zstd bomb cannot
// exhaust memory.
import { constants, gunzipSync, zstdDecompressSync } from 'node:zlib';
import { CiAuditError, hasErrorCode } from '../../core/errors.ts';
import type { OtlpFormat } from './otlp-encode.ts';
import { zstdContentSize, zstdFrames } from './zstd-frame.ts';

/** The Content-Encoding values the receiver decodes (its Accept-Encoding). */
export const contentEncodings = ['gzip', 'zstd', 'identity'] as const;
export type ContentEncoding = (typeof contentEncodings)[number];

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
  if (value === 'zstd') return 'zstd';
  return undefined;
}

/**
 * The body as the decoder needs it. Throws CIA_ERR_RECEIVER_TOO_LARGE when it is (or would
 * decompress to) more than `maxBytes`, CIA_ERR_RECEIVER_ENCODING when the gzip or zstd data is
 * corrupt.
 */
export function decodeBody(body: Buffer, encoding: ContentEncoding, maxBytes: number): Buffer {
  if (encoding === 'identity') {
    if (body.byteLength > maxBytes) throw tooLarge(maxBytes);
    return body;
  }
  // Inflated on this thread, not in zlib's thread pool: the async path took about twice the CPU in
  // all (an agent's 1,000-record batch: 5.5-8.5 µs a record against 3.7-4.2) while the event loop's
  // own share stayed about the same (2 µs: its stream machinery), so it saved the loop nothing. The
  // protobuf decode that follows holds the loop longer anyway; max_decompressed_bytes bounds both.
  try {
    if (encoding === 'zstd') return unzstd(body, maxBytes);
    return gunzipSync(body, { maxOutputLength: maxBytes, chunkSize: oneChunk(gzipContentSize(body), body, gzipMaxExpansion, maxBytes) });
  } catch (cause) {
    if (hasErrorCode(cause)) throw cause;
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(maxBytes, cause);
    const message = code === 'ZSTD_error_frameParameter_windowTooLarge'
      ? `body's zstd window exceeds ${zstdWindowBytes} bytes, the most the HTTP zstd coding allows (RFC 9659); compress at zstd level 19 or lower`
      : `body is not valid ${encoding} data: ${(cause as Error).message}`;
    throw new CiAuditError('CIA_ERR_RECEIVER_ENCODING', message, { cause });
  }
}

/**
 * Most frames in a zstd body. Node.js decodes one frame a call, each in a zstd context of its own:
 * 50-100 µs on the event loop whatever the frame holds, so a 4 MiB body of 466,000 empty frames held
 * the loop for a minute. Senders write one frame a request (the agent's exporter compresses the
 * whole request in one call; zstd's streaming encoders, the Collector's among them, write one frame
 * a stream); 16 leaves room for a body put together from a few, at a millisecond or two at most.
 */
export const maxZstdFrames = 16;

/** The content of every frame of a zstd body, at most `maxBytes` of it. */
function unzstd(body: Buffer, maxBytes: number): Buffer {
  const frames = zstdFrames(body, maxZstdFrames);
  if (frames === undefined) {
    // zstd names what is wrong with a frame it cannot decode; it ignores bytes after one it can.
    unzstdFrame(body, maxBytes);
    throw new CiAuditError('CIA_ERR_RECEIVER_ENCODING', 'body is not valid zstd data: bytes after its first frame are not whole zstd frames');
  }
  if (frames.length > maxZstdFrames) {
    throw new CiAuditError(
      'CIA_ERR_RECEIVER_ENCODING',
      `body holds more than ${maxZstdFrames} zstd frames, the most the receiver decodes in one request; compress each request as one zstd frame`,
      { details: { limit: maxZstdFrames } },
    );
  }
  if (frames.length <= 1) return unzstdFrame(body, maxBytes);
  const parts: Buffer[] = [];
  let total = 0;
  for (const frame of frames) {
    if (frame.skippable) continue;
    // At least 1: zlib refuses a limit of 0, and a frame with content is caught by the check below.
    const part = unzstdFrame(body.subarray(frame.start, frame.start + frame.length), Math.max(1, maxBytes - total));
    parts.push(part);
    total += part.byteLength;
    if (total > maxBytes) throw tooLarge(maxBytes);
  }
  return Buffer.concat(parts, total);
}

function unzstdFrame(frame: Buffer, maxBytes: number): Buffer {
  return zstdDecompressSync(frame, {
    maxOutputLength: maxBytes,
    chunkSize: oneChunk(zstdContentSize(frame), frame, zstdMaxExpansion, maxBytes),
    params: { [constants.ZSTD_d_windowLogMax]: zstdWindowLogMax },
  });
}

/**
 * Largest zstd window decoded: 8 MiB, what RFC 9659 has senders of the HTTP `zstd` coding keep to.
 * zstd sizes its own buffer by the window the frame declares (by default up to 128 MiB); beyond
 * this one a frame is refused before anything is allocated for it.
 */
const zstdWindowLogMax = 23;
const zstdWindowBytes = 2 ** zstdWindowLogMax;

/** Most output per input byte: deflate's 1032:1; zstd's 32768:1 (a 4-byte RLE block of 128 KiB). */
const gzipMaxExpansion = 1032;
const zstdMaxExpansion = 32_768;

/**
 * Output chunk size for a compressed body: all of its output in one chunk, so that zlib is called
 * once and nothing is copied again (in zlib's default 16 KiB chunks gunzip cost twice as much CPU;
 * in 1 MiB ones an agent's batch still took two and a copy, a third more than one). The size is
 * the one the sender wrote into the body (`claimed`, 0 when none), which may be wrong: a wrong one
 * only costs more chunks or a buffer too large, and that is bounded by what the codec can expand
 * the body to (`maxExpansion`), by `maxBytes` and by 8 MiB. At least 64 KiB.
 */
function oneChunk(claimed: number, body: Buffer, maxExpansion: number, maxBytes: number): number {
  // One byte more than the output: a chunk filled exactly makes zlib allocate another, left empty.
  const most = Math.min(body.byteLength * maxExpansion, maxBytes, 8 * 1024 * 1024) + 1;
  return Math.max(64 * 1024, Math.min(claimed + 1, most));
}

/** The size a gzip body claims: its trailer's ISIZE (the last member's size mod 2^32). */
function gzipContentSize(body: Buffer): number {
  return body.byteLength >= 18 ? body.readUInt32LE(body.byteLength - 4) : 0;
}

function tooLarge(maxBytes: number, cause?: unknown): CiAuditError {
  return new CiAuditError(
    'CIA_ERR_RECEIVER_TOO_LARGE',
    `decompressed body exceeds limits.max_decompressed_bytes (${maxBytes} bytes); send smaller batches`,
    { cause, details: { limit: maxBytes } },
  );
}
