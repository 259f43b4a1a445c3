// The canonical form of a chained record, version 1: what the agent hashes and the aggregator
// stores verbatim in `ci_audit.chain.record`, so that a verifier needs nothing but that string,
// the previous hash and the public keys. docs/integrity.md specifies it for third-party verifiers;
// keep the two in step.
//
//   {"agent":<agent id>,"attributes":{...},"body":<value>,"observed":"<ns>","resource":{...},
//    "seq":<n>,"severity":<n>,"time":"<ns>","v":1}
//
// Times are decimal strings of nanoseconds since the Unix epoch ("0" when unset), so that no
// reader rounds them. Attribute values are normalized (see attestedValue) so that the agent, which
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
  timeUnixNano: bigint;
  observedTimeUnixNano: bigint;
  /** OTLP SeverityNumber; 0 when unset. */
  severityNumber: number;
  body: AttestedInput;
  attributes: Readonly<Record<string, AttestedInput>>;
  resource: Readonly<Record<string, AttestedInput>>;
}

/**
 * The canonical record as the object that `canonicalJson` writes. Exported for verifiers that
 * need the fields back (see parseCanonicalRecord).
 */
export function canonicalRecordObject(record: AttestedRecord): { [key: string]: CanonicalValue } {
  const out: { [key: string]: CanonicalValue } = {
    v: canonicalVersion,
    agent: record.agent,
    seq: record.seq,
    time: record.timeUnixNano.toString(),
    observed: record.observedTimeUnixNano.toString(),
    severity: record.severityNumber,
    attributes: attestedAttributes(record.attributes),
    resource: attestedAttributes(record.resource),
  };
  const body = attestedValue(record.body);
  if (body !== undefined) out.body = body;
  return out;
}

/** The canonical text of `record` (RFC 8785 JSON); its UTF-8 bytes are what the chain hashes. */
export function canonicalRecord(record: AttestedRecord): string {
  return canonicalJson(canonicalRecordObject(record));
}

function attestedAttributes(attributes: Readonly<Record<string, AttestedInput>>): { [key: string]: CanonicalValue } {
  const out: { [key: string]: CanonicalValue } = {};
  for (const key in attributes) {
    if (key.startsWith(chainAttrPrefix)) continue;
    const value = attestedValue(attributes[key]);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/**
 * Normalizes one value: strings and booleans as they are; finite numbers as numbers, others as
 * their name ("NaN", "Infinity"); int64 values that are safe integers as numbers, others as
 * decimal strings; bytes as base64; arrays item by item (an empty item becomes null); key-value
 * lists as objects without their empty members. `undefined` (an empty value) is left out.
 */
export function attestedValue(value: AttestedInput): CanonicalValue | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  }
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (Array.isArray(value)) return value.map((item: AttestedInput) => attestedValue(item) ?? null);
  const out: { [key: string]: CanonicalValue } = {};
  const object = value as { readonly [key: string]: AttestedInput };
  for (const key in object) {
    const member = attestedValue(object[key]);
    if (member !== undefined) out[key] = member;
  }
  return out;
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
