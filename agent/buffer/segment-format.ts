// The on-disk framing of the agent's buffer segments: each entry is
//   u32 BE payload length | u32 BE CRC-32 of the payload | payload
// so that a reader can tell a complete entry from a torn one (the process or the machine died in
// the middle of a write) and a damaged one (bits changed on disk) without trusting anything after
// the first bad byte. Pure functions: the file handling is in disk-buffer.ts.
import { crc32 } from 'node:zlib';

/** Bytes of an entry's header (length + CRC). */
export const entryHeaderBytes = 8;

/** Largest payload an entry may hold; a longer length field can only be damage. */
export const maxEntryPayloadBytes = 64 * 1024 * 1024;

/** One entry framed for appending. */
export function encodeEntry(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(entryHeaderBytes + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.writeUInt32BE(crc32(payload), 4);
  out.set(payload, entryHeaderBytes);
  return out;
}

/** Why the entries of a segment stop before its end. */
export type ScanProblem =
  /** The last entry is cut short: a write that did not complete (torn tail). */
  | 'torn'
  /** An entry's CRC does not match its payload: the bytes were damaged. */
  | 'crc'
  /** An entry's length field is impossible (0 or beyond the largest entry): the header was damaged. */
  | 'length';

export interface ScanResult {
  /** The complete, intact payloads in order (views into the scanned bytes). */
  payloads: Buffer[];
  /** Bytes from the start that hold those entries: everything after this is unread. */
  consumed: number;
  /** Set when the bytes after `consumed` are damaged or torn (not merely the end of the data). */
  problem?: { reason: ScanProblem; offset: number };
}

/**
 * Reads the entries in `bytes`, at most `maxEntries`. With `final` (the bytes are the whole rest of
 * a segment), an incomplete entry at the end is reported as torn; without it (a chunk of a longer
 * read) it is simply where the chunk ends, and the caller reads on from `consumed`.
 */
export function scanEntries(bytes: Buffer, options: { final: boolean; maxEntries?: number }): ScanResult {
  const payloads: Buffer[] = [];
  const maxEntries = options.maxEntries ?? Infinity;
  let offset = 0;
  while (offset < bytes.length && payloads.length < maxEntries) {
    if (bytes.length - offset < entryHeaderBytes) {
      return options.final ? { payloads, consumed: offset, problem: { reason: 'torn', offset } } : { payloads, consumed: offset };
    }
    const length = bytes.readUInt32BE(offset);
    if (length === 0 || length > maxEntryPayloadBytes) return { payloads, consumed: offset, problem: { reason: 'length', offset } };
    const end = offset + entryHeaderBytes + length;
    if (end > bytes.length) {
      return options.final ? { payloads, consumed: offset, problem: { reason: 'torn', offset } } : { payloads, consumed: offset };
    }
    const payload = bytes.subarray(offset + entryHeaderBytes, end);
    if (crc32(payload) !== bytes.readUInt32BE(offset + 4)) return { payloads, consumed: offset, problem: { reason: 'crc', offset } };
    payloads.push(payload);
    offset = end;
  }
  return { payloads, consumed: offset };
}

/** Bytes the entry at the start of `bytes` needs in all (header + payload), or undefined when even the header is incomplete. */
export function entryLengthAt(bytes: Buffer): number | undefined {
  return bytes.length < entryHeaderBytes ? undefined : entryHeaderBytes + bytes.readUInt32BE(0);
}

/** File name of segment `index`: zero-padded so that names sort in order. */
export function segmentFileName(index: number): string {
  return `segment-${String(index).padStart(12, '0')}.buf`;
}

/** The index in a segment file name, or undefined for any other file. */
export function segmentIndexOf(name: string): number | undefined {
  const match = /^segment-(\d{12})\.buf$/.exec(name);
  return match === null ? undefined : Number(match[1]);
}
