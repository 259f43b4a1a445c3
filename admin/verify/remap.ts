// The re-map check: the canonical record (what the agent hashed) is sent through the aggregator's
// own mapping again and the result compared with the stored document, so that a changed
// searchable field (user.name, source.ip, message) is caught even though the hash only covers
// `ci_audit.chain.record`. The OTLP parts the canonical form does not attest (severity text, scope,
// trace and span ids, event name, flags, dropped attribute count) are taken from the stored
// document as they are: they cannot be verified, only passed through (docs/integrity.md).
import { isDeepStrictEqual } from 'node:util';
import { mapToEcs } from '../../aggregator/map/ecs.ts';
import type { AttributeValue, Attributes, DecodedLogRecord } from '../../aggregator/log-record.ts';
import type { CanonicalValue } from '../../core/integrity/canonical-json.ts';
import type { ParsedCanonicalRecord } from '../../core/integrity/record.ts';
import { chainAttr } from '../../core/wire.ts';

export type Source = Record<string, unknown>;

/** The value at a dotted path of a document (objects only; arrays end the walk). */
const splitPaths = new Map<string, string[]>();

export function valueAt(source: Source, path: string): unknown {
  let parts = splitPaths.get(path);
  if (parts === undefined) {
    parts = path.split('.');
    // Only the verifier's own, fixed paths come here; the cache stays small.
    if (splitPaths.size < 1000) splitPaths.set(path, parts);
  }
  let current: unknown = source;
  for (const part of parts) {
    if (typeof current !== 'object' || current === null || Array.isArray(current)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function attributeValue(value: CanonicalValue | undefined): AttributeValue {
  if (value === null || value === undefined) return undefined;
  if (Array.isArray(value)) return value.map(attributeValue);
  if (typeof value === 'object') return attributesOf(value);
  return value;
}

function attributesOf(object: { [key: string]: CanonicalValue }): Attributes {
  const out: Attributes = {};
  for (const [key, value] of Object.entries(object)) out[key] = attributeValue(value);
  return out;
}

function stringAt(source: Source, path: string): string {
  const value = valueAt(source, path);
  return typeof value === 'string' ? value : '';
}

function numberAt(source: Source, path: string): number {
  const value = valueAt(source, path);
  return typeof value === 'number' ? value : 0;
}

/** The unattested scope attributes as they were flattened into the document (dotted keys map back to the same fields). */
function flatAttributes(value: unknown): Attributes {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  return value as Attributes;
}

export interface ChainFields {
  seq: number;
  hash: string;
  prevHash: string;
}

/** The record the aggregator decoded, as far as the canonical form attests it. */
export function rebuildRecord(parsed: ParsedCanonicalRecord, chain: ChainFields, source: Source): DecodedLogRecord {
  const attributes = attributesOf(parsed.attributes);
  attributes[chainAttr.seq] = parsed.seq;
  attributes[chainAttr.hash] = chain.hash;
  attributes[chainAttr.prevHash] = chain.prevHash;
  return {
    resource: attributesOf(parsed.resource),
    scope: {
      name: stringAt(source, 'ci_audit.scope.name'),
      version: stringAt(source, 'ci_audit.scope.version'),
      attributes: flatAttributes(valueAt(source, 'ci_audit.scope.attributes')),
    },
    timeUnixNano: BigInt(parsed.time),
    observedTimeUnixNano: BigInt(parsed.observed),
    severityNumber: parsed.severity,
    // Not attested: log.level as stored (the mapping lower-cases the text, so it maps to itself).
    severityText: stringAt(source, 'log.level'),
    body: attributeValue(parsed.body),
    attributes,
    droppedAttributesCount: numberAt(source, 'ci_audit.dropped_attributes_count'),
    flags: numberAt(source, 'ci_audit.trace_flags'),
    traceId: stringAt(source, 'trace.id'),
    spanId: stringAt(source, 'span.id'),
    eventName: stringAt(source, 'ci_audit.event_name'),
  };
}

export interface RemapResult {
  /** Dotted paths whose stored value differs from the re-mapped one (missing on either side included). */
  fields: string[];
  /** The data stream and `_id` the aggregator would have written the record to. */
  dataStream: string;
  id: string | undefined;
}

/** Maps the rebuilt record as the aggregator did at ingest and lists the fields that differ from `source`. */
export function remapDiff(parsed: ParsedCanonicalRecord, chain: ChainFields, source: Source, namespace: string): RemapResult {
  const ingested = new Date(stringAt(source, 'event.ingested'));
  const verified = valueAt(source, 'ci_audit.verified') === true;
  const mapped = mapToEcs(rebuildRecord(parsed, chain, source), {
    namespace,
    ingested: Number.isNaN(ingested.getTime()) ? new Date(0) : ingested,
    chain: { canonical: stringAt(source, 'ci_audit.chain.record'), verified },
  });
  const fields: string[] = [];
  // Nearly every document is intact: one comparison, and the paths only when it differs.
  if (!isDeepStrictEqual(mapped.document, source)) diff(mapped.document, source, '', fields);
  return { fields, dataStream: mapped.dataStream, id: mapped.id };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Leaf paths where `expected` and `actual` differ. Member order does not matter; a string holding
 * JSON (a structured body, an array of key-value lists) is compared by content, because the
 * canonical form sorted its keys where the sender's order was kept at ingest.
 */
function diff(expected: unknown, actual: unknown, path: string, out: string[]): void {
  if (isObject(expected) && isObject(actual)) {
    const keys = new Set([...Object.keys(expected), ...Object.keys(actual)]);
    for (const key of keys) diff(expected[key], actual[key], path === '' ? key : `${path}.${key}`, out);
    return;
  }
  if (isDeepStrictEqual(expected, actual)) return;
  if (typeof expected === 'string' && typeof actual === 'string' && sameJson(expected, actual)) return;
  out.push(path);
}

function sameJson(a: string, b: string): boolean {
  try {
    return isDeepStrictEqual(JSON.parse(a), JSON.parse(b));
  } catch {
    return false;
  }
}
