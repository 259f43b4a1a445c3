// The canonical form of a chained record, version 1: what the agent hashes and the aggregator
// stores verbatim in `ci_audit.chain.record`, so that a verifier needs nothing but that string,
// the previous hash and the public keys. docs/integrity.md specifies it for third-party verifiers;
// keep the two in step.
//
//   {"agent":<agent id>,"attributes":{...},"body":<value>,"observed":"<ns>","resource":{...},
//    "seq":<n>,"severity":<n>,"time":"<ns>","v":1}
//
// Times are decimal strings of nanoseconds since the Unix epoch ("0" when unset), so that no
// reader rounds them. Attribute values are normalized (see canonicalValue) so that the agent, which
// holds OpenTelemetry SDK values, and the aggregator, which holds decoded OTLP values, write the
// same text. The chain's own attributes (`ci_audit.chain.*`) are not part of the record.
import { CiAuditError } from '../errors.ts';
import { canonicalJson, type CanonicalValue } from './canonical-json.ts';
import { chainAttrPrefix } from '../wire.ts';

/** Version of the canonical form; a new form gets a new number and verifiers keep the old ones. */
export const canonicalVersion = 1;

/** A value as the agent's SDK or the aggregator's decoder hold it. */
export type AttestedInput =
  | string
  | number
  | bigint
  | boolean
  | Uint8Array
  | null
  | undefined
  | readonly AttestedInput[]
  | { readonly [key: string]: AttestedInput };

export interface AttestedRecord {
  /** The agent's id (the aggregator uses the id its credential proves). */
  agent: string;
  /** Position in the agent's chain, from 1. */
  seq: number;
  /** Nanoseconds since the epoch, as a bigint or as its decimal text. */
  timeUnixNano: bigint | string;
  observedTimeUnixNano: bigint | string;
  /** OTLP SeverityNumber; 0 when unset. */
  severityNumber: number;
  body: AttestedInput;
  attributes: Readonly<Record<string, AttestedInput>>;
  resource: Readonly<Record<string, AttestedInput>>;
}

/**
 * The canonical text of `record` (RFC 8785 JSON); its UTF-8 bytes are what the chain hashes.
 * Written directly, members in RFC 8785 order (agent, attributes, body, observed, resource, seq,
 * severity, time, v), without building the object first: the agent does this for every line.
 * `resourceText` is canonicalAttributes(record.resource) when the caller keeps it (the agent's
 * resource is one object for all its records).
 */
export function canonicalRecord(record: AttestedRecord, resourceText?: string): string {
  const body = record.body === undefined || record.body === null ? '' : `,"body":${canonicalValue(record.body)}`;
  return (
    `{"agent":${canonicalString(record.agent)},"attributes":${canonicalAttributes(record.attributes, true)}${body}` +
    `,"observed":"${record.observedTimeUnixNano.toString()}","resource":${resourceText ?? canonicalAttributes(record.resource)}` +
    `,"seq":${canonicalNumber(record.seq)},"severity":${canonicalNumber(record.severityNumber)}` +
    `,"time":"${record.timeUnixNano.toString()}","v":${canonicalVersion}}`
  );
}

/**
 * Attributes (or a key-value list) in canonical form: members sorted, empty members (undefined,
 * null) left out, and with `skipChain` the chain's own attributes (`ci_audit.chain.*`) too.
 */
export function canonicalAttributes(attributes: Readonly<Record<string, AttestedInput>>, skipChain = false): string {
  const keys = sortedKeys(attributes);
  let out = '{';
  for (const key of keys) {
    const value = attributes[key];
    if (value === undefined || value === null || (skipChain && key.startsWith(chainAttrPrefix))) continue;
    if (out.length > 1) out += ',';
    out += `${canonicalKey(key)}:${canonicalValue(value)}`;
  }
  return `${out}}`;
}

/**
 * The keys of `attributes` in code-unit order. The records of one source carry the same keys in the
 * same order, so the order of the last key list is kept: comparing the lists is cheaper than sorting.
 */
function sortedKeys(attributes: object): readonly string[] {
  const keys = Object.keys(attributes);
  if (keys.length === lastKeys.length) {
    let i = 0;
    while (i < keys.length && keys[i] === lastKeys[i]) i++;
    if (i === keys.length) return lastSorted;
  }
  lastKeys = keys;
  lastSorted = [...keys].sort();
  return lastSorted;
}

let lastKeys: readonly string[] = [];
let lastSorted: readonly string[] = [];

const minInt64 = -(2 ** 63);
const maxInt64 = 2 ** 63;
const minSafe = BigInt(Number.MIN_SAFE_INTEGER);
const maxSafe = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * One value in canonical form, normalized so that the agent (OpenTelemetry SDK values) and the
 * aggregator (decoded OTLP values) write the same text: strings and booleans as they are; finite
 * numbers as JSON numbers, except integers beyond ±(2^53 - 1) within the int64 range (the exporter
 * sends those as int64, which decode to bigints), written as decimal strings like such bigints;
 * non-finite numbers as their names ("NaN", "Infinity", "-Infinity"); bytes as base64; arrays item
 * by item (an empty item is null); key-value lists as objects without their empty members.
 */
export function canonicalValue(value: AttestedInput): string {
  switch (typeof value) {
    case 'string':
      return canonicalString(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      return canonicalNumber(value);
    case 'bigint':
      return value >= minSafe && value <= maxSafe ? String(Number(value)) : `"${value.toString()}"`;
    default:
  }
  if (value === null || value === undefined) return 'null';
  if (value instanceof Uint8Array) return `"${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')}"`;
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i > 0 ? ',' : '') + canonicalValue(value[i] as AttestedInput);
    return `${out}]`;
  }
  return canonicalAttributes(value as Readonly<Record<string, AttestedInput>>);
}

/**
 * A string as RFC 8785 writes it. A lone surrogate (possible in a JavaScript string, not in UTF-8)
 * becomes U+FFFD first, as the exporter's UTF-8 encoding turns it into, so that both sides agree.
 */
function canonicalString(s: string): string {
  const json = JSON.stringify(s);
  // JSON.stringify writes a lone surrogate as a \udXXX escape: only then is the slower check due.
  return json.includes('\\ud') && !s.isWellFormed() ? JSON.stringify(s.toWellFormed()) : json;
}

/** Attribute keys repeat on every record: their canonical text is kept. */
const keyTexts = new Map<string, string>();
const maxKeyTexts = 4096;

function canonicalKey(key: string): string {
  let text = keyTexts.get(key);
  if (text === undefined) {
    text = canonicalString(key);
    if (keyTexts.size >= maxKeyTexts) keyTexts.clear();
    keyTexts.set(key, text);
  }
  return text;
}

function canonicalNumber(n: number): string {
  if (!Number.isFinite(n)) return `"${String(n)}"`;
  if (Number.isInteger(n)) {
    if (!Number.isSafeInteger(n) && n >= minInt64 && n < maxInt64) return `"${BigInt(n).toString()}"`;
    // A safe integer (a sequence number, an offset): toFixed(0) writes it as String() does, -0 as
    // 0 (RFC 8785 3.2.2.3), without putting the text in V8's number-to-string cache, which lives in
    // the old generation: at a new number per record that was old garbage for every record.
    if (Number.isSafeInteger(n)) return n.toFixed(0);
  }
  // -0 is written as 0 (RFC 8785 3.2.2.3); String() already does.
  return String(n);
}

/** The fields of a canonical record read back from its text; throws CIA_ERR_INTEGRITY_CANONICAL when it is not one. */
export interface ParsedCanonicalRecord {
  v: number;
  agent: string;
  seq: number;
  time: string;
  observed: string;
  severity: number;
  body?: CanonicalValue;
  attributes: { [key: string]: CanonicalValue };
  resource: { [key: string]: CanonicalValue };
}

/**
 * Reads a stored canonical record back. It must be exactly canonical (parsing and writing it again
 * gives the same text), so that the hash a verifier recomputes is over the text that was stored.
 */
export function parseCanonicalRecord(text: string): ParsedCanonicalRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new CiAuditError('CIA_ERR_INTEGRITY_CANONICAL', `the stored canonical record is not JSON: ${(cause as Error).message}`, { cause });
  }
  const r = parsed as Partial<ParsedCanonicalRecord> | null;
  if (
    r === null ||
    typeof r !== 'object' ||
    Array.isArray(r) ||
    r.v !== canonicalVersion ||
    typeof r.agent !== 'string' ||
    !Number.isSafeInteger(r.seq) ||
    typeof r.time !== 'string' ||
    typeof r.observed !== 'string' ||
    typeof r.severity !== 'number' ||
    typeof r.attributes !== 'object' ||
    r.attributes === null ||
    typeof r.resource !== 'object' ||
    r.resource === null
  ) {
    throw new CiAuditError('CIA_ERR_INTEGRITY_CANONICAL', `the stored canonical record does not have the fields of version ${canonicalVersion}`);
  }
  if (canonicalJson(parsed as CanonicalValue) !== text) {
    throw new CiAuditError('CIA_ERR_INTEGRITY_CANONICAL', 'the stored canonical record is not in canonical form (RFC 8785)');
  }
  return r as ParsedCanonicalRecord;
}
