// One line of `journalctl --output=json` -> a journal entry and the record the source emits. Pure,
// so it is tested on journalctl's real output. journalctl writes a field as a string, as null (a
// value it withholds), as an array of byte values (not valid UTF-8, or unprintable), or as an array
// of such values when the field occurs more than once in the entry.
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { journaldAttr, recordAttr } from '../../../core/wire.ts';
import type { AckFn, SourceRecord } from '../source.ts';

/** The journal fields the source asks journalctl for (`--output-fields`); `__CURSOR` and the timestamps always come. */
export const journalFields = ['MESSAGE', 'SYSLOG_IDENTIFIER', '_PID', '_UID', '_COMM', '_HOSTNAME', '_SYSTEMD_UNIT'] as const;

export interface JournalEntry {
  cursor: string;
  /** Decoded field values; a field that occurs several times is joined with newlines. */
  fields: Record<string, string>;
  /** Fields whose bytes were not valid UTF-8 (replaced by U+FFFD). */
  invalidUtf8: string[];
}

export type ParsedLine = { ok: true; entry: JournalEntry } | { ok: false; reason: string };

/** Parses one output line. Never throws: a line that is not an entry comes back with the reason. */
export function parseJournalLine(line: string): ParsedLine {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (err) {
    return { ok: false, reason: `not JSON: ${(err as Error).message}` };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { ok: false, reason: 'not a JSON object' };
  const raw = json as Record<string, unknown>;
  const cursor = raw.__CURSOR;
  if (typeof cursor !== 'string' || cursor === '') return { ok: false, reason: 'no __CURSOR field' };
  const fields: Record<string, string> = {};
  const invalidUtf8: string[] = [];
  for (const [name, value] of Object.entries(raw)) {
    const decoded = decodeValue(value);
    if (decoded === undefined) continue;
    fields[name] = decoded.text;
    if (decoded.invalid) invalidUtf8.push(name);
  }
  return { ok: true, entry: { cursor, fields, invalidUtf8 } };
}

function decodeValue(value: unknown): { text: string; invalid: boolean } | undefined {
  if (typeof value === 'string') return { text: value, invalid: false };
  if (!Array.isArray(value)) return undefined;
  if (value.every((v) => typeof v === 'number')) {
    const bytes = Buffer.from(value);
    return { text: bytes.toString('utf8'), invalid: !isUtf8(bytes) };
  }
  // The field occurs several times in the entry: keep every value.
  const parts = value.map(decodeValue).filter((v) => v !== undefined);
  if (parts.length === 0) return undefined;
  return { text: parts.map((p) => p.text).join('\n'), invalid: parts.some((p) => p.invalid) };
}

export interface JournalFilter {
  units: readonly string[];
  identifiers: readonly string[];
}

/** Whether the source keeps the entry: no filter, or its unit or its syslog identifier is listed. */
export function keepEntry(entry: JournalEntry, filter: JournalFilter): boolean {
  if (filter.units.length === 0 && filter.identifiers.length === 0) return true;
  const unit = entry.fields._SYSTEMD_UNIT;
  const identifier = entry.fields.SYSLOG_IDENTIFIER;
  return (unit !== undefined && filter.units.includes(unit)) || (identifier !== undefined && filter.identifiers.includes(identifier));
}

/** A cursor's `s` (sequence number id) and `i` (sequence number) parts, which name one entry. */
function cursorPosition(cursor: string): { s: string; i: string } | undefined {
  const parts = new Map(cursor.split(';').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
  const s = parts.get('s');
  const i = parts.get('i');
  return s === undefined || i === undefined ? undefined : { s, i };
}

/** True when both cursors name the same entry (journalctl may print the trailing parts differently). */
export function sameEntry(a: string, b: string): boolean {
  if (a === b) return true;
  const pa = cursorPosition(a);
  const pb = cursorPosition(b);
  return pa !== undefined && pb !== undefined && pa.s === pb.s && pa.i === pb.i;
}

/** A cursor as journalctl prints it: `key=value` parts separated by `;`, with `s` and `i` among them. */
export function validCursor(cursor: string): boolean {
  return /^[a-z]=[0-9a-f]+(;[a-z]=[0-9a-f]+)*$/.test(cursor) && cursorPosition(cursor) !== undefined;
}

/** Deterministic record id: a hash of the agent id and the cursor, so a re-sent entry keeps its id. */
export function journalRecordId(agentId: string, cursor: string): string {
  return `j:${createHash('sha256').update(agentId).update('\0').update(cursor).digest('hex').slice(0, 40)}`;
}

const mapped: readonly [string, string][] = [
  ['MESSAGE', journaldAttr.message],
  ['SYSLOG_IDENTIFIER', journaldAttr.identifier],
  ['_PID', journaldAttr.pid],
  ['_UID', journaldAttr.uid],
  ['_COMM', journaldAttr.comm],
  ['_HOSTNAME', journaldAttr.hostname],
  ['_SYSTEMD_UNIT', journaldAttr.unit],
  ['__REALTIME_TIMESTAMP', journaldAttr.realtimeTimestamp],
];

/** The entry's time: `__REALTIME_TIMESTAMP` (microseconds) as [seconds, nanoseconds], or undefined. */
export function entryTime(entry: JournalEntry): [number, number] | undefined {
  const micros = entry.fields.__REALTIME_TIMESTAMP;
  if (micros === undefined || !/^\d{1,17}$/.test(micros)) return undefined;
  const us = Number(micros);
  return [Math.floor(us / 1e6), (us % 1e6) * 1000];
}

export function journalRecord(entry: JournalEntry, ctx: { agentId: string; dataset: string }, observedAt: number, ack: AckFn): SourceRecord {
  const attributes: SourceRecord['attributes'] = {
    [recordAttr.dataset]: ctx.dataset,
    [recordAttr.recordId]: journalRecordId(ctx.agentId, entry.cursor),
    [journaldAttr.cursor]: entry.cursor,
  };
  for (const [field, attr] of mapped) {
    const value = entry.fields[field];
    if (value !== undefined) attributes[attr] = value;
  }
  // The parsers read the message from this attribute; an entry without one still has an empty message.
  const message = entry.fields.MESSAGE ?? '';
  attributes[journaldAttr.message] = message;
  if (entry.invalidUtf8.length > 0) attributes[recordAttr.invalidUtf8] = true;
  const record: SourceRecord = { body: message, attributes, observedAt, ack };
  const time = entryTime(entry);
  if (time !== undefined) record.timestamp = time;
  return record;
}

/** The integrity record for a journal that no longer holds the saved cursor. */
export function gapRecord(
  gap: { savedCursor: string; nextCursor: string | undefined },
  ctx: { agentId: string; dataset: string; sourceId: string },
  observedAt: number,
  ack: AckFn,
): SourceRecord {
  const body =
    `journal gap: the saved cursor of journald source ${ctx.sourceId} is no longer in the journal (vacuumed or rotated away while the agent was not reading); ` +
    `entries after it and before ${gap.nextCursor ?? 'the next entry'} were lost; reading continues with the oldest entry left`;
  return {
    body,
    attributes: {
      [recordAttr.dataset]: ctx.dataset,
      [recordAttr.recordId]: journalRecordId(ctx.agentId, `gap:${gap.savedCursor}>${gap.nextCursor ?? ''}`),
      [recordAttr.gap]: true,
      [journaldAttr.cursor]: gap.savedCursor,
    },
    observedAt,
    ack,
  };
}
