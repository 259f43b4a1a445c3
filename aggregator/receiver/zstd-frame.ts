// What the receiver reads of a zstd body's framing itself (RFC 8878 3.1): where each frame ends, and
// the content size a frame's header declares. Node's zstdDecompressSync stops at the end of the
// first frame and drops whatever follows without a word, where a zstd body may hold several frames
// (as a gzip body several members); so the receiver finds the frames and decodes each.

const frameMagic = 0xfd2fb528;
/** Skippable frames: magic 0x184D2A50 to 0x184D2A5F, a 4-byte length, then that many bytes to ignore. */
const skippableMagic = 0x184d2a50;

export interface ZstdFrame {
  /** Offset of the frame in the body and its length, header to checksum. */
  start: number;
  length: number;
  /** Skippable frames hold no content. */
  skippable: boolean;
}

/**
 * The frames of `body`, in order. Undefined when the body is not a sequence of whole frames (a frame
 * cut short, bytes after the last one, a reserved block type): zstd's own error then says what is
 * wrong, so the caller hands it the whole body. With more than `maxFrames` frames, the first
 * `maxFrames + 1` only: the caller refuses the body, so the rest is not walked.
 */
export function zstdFrames(body: Buffer, maxFrames = Number.POSITIVE_INFINITY): ZstdFrame[] | undefined {
  const frames: ZstdFrame[] = [];
  for (let at = 0; at < body.byteLength && frames.length <= maxFrames; ) {
    const length = frameLength(body, at);
    if (length === undefined) return undefined;
    frames.push({ start: at, length, skippable: body.readUInt32LE(at) !== frameMagic });
    at += length;
  }
  return frames;
}

function frameLength(body: Buffer, at: number): number | undefined {
  if (body.byteLength < at + 8) return undefined;
  const magic = body.readUInt32LE(at);
  if ((magic & 0xfffffff0) >>> 0 === skippableMagic) {
    const end = at + 8 + body.readUInt32LE(at + 4);
    return end <= body.byteLength ? end - at : undefined;
  }
  if (magic !== frameMagic) return undefined;
  const header = frameHeader(body, at);
  let pos = at + header.length;
  for (;;) {
    if (body.byteLength < pos + 3) return undefined;
    const block = body.readUIntLE(pos, 3);
    const type = (block >> 1) & 3;
    if (type === 3) return undefined;
    // Raw and compressed blocks carry their size in bytes; an RLE block one byte, repeated.
    pos += 3 + (type === 1 ? 1 : block >>> 3);
    if ((block & 1) === 1) break;
  }
  if (header.checksum) pos += 4;
  return pos <= body.byteLength ? pos - at : undefined;
}

/**
 * Frame_Content_Size of the frame at `at` (a zstd frame's magic there), 0 when the header does not
 * carry one (a sender that streamed the content) or is cut short.
 */
export function zstdContentSize(body: Buffer, at = 0): number {
  if (body.byteLength < at + 6 || body.readUInt32LE(at) !== frameMagic) return 0;
  const { length, sizeBytes } = frameHeader(body, at);
  const field = at + length - sizeBytes;
  if (sizeBytes === 0 || body.byteLength < at + length) return 0;
  switch (sizeBytes) {
    case 1:
      return body[field]!;
    case 2:
      return body.readUInt16LE(field) + 256;
    case 4:
      return body.readUInt32LE(field);
    default:
      // Beyond 2^53 only loses precision, and any such size is far beyond what it is compared with.
      return Number(body.readBigUInt64LE(field));
  }
}

/** The layout of the frame header at `at` (its magic included), from its descriptor byte. */
function frameHeader(body: Buffer, at: number): { length: number; sizeBytes: number; checksum: boolean } {
  const descriptor = body[at + 4]!;
  const singleSegment = (descriptor & 0x20) !== 0;
  const sizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6]!;
  // Magic, descriptor, a window descriptor unless single-segment, the dictionary id, the content size.
  const length = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][descriptor & 3]! + sizeBytes;
  return { length, sizeBytes, checksum: (descriptor & 4) !== 0 };
}
