// DecodedLogRecord -> Elastic Common Schema document and its data stream. A pure function: no
// clock (the ingest time is passed in), no I/O, never throws on bad data. A record that lacks
// something is still mapped, with what was wrong listed in `issues` and in `ci_audit.issues`.
import { boundedDocumentId, chainDocumentId, checkpointDocumentId, recordDocumentId } from '../../core/integrity/document.ts';
import { genesisHash, isChainHash } from '../../core/integrity/chain.ts';
import { agentServiceName, chainAttr, dataStreamName, datasetPattern, defaultDataset, ecsAttr, recordAttr, resourceAttr, resourceDetectAttr } from '../../core/wire.ts';
import type { AttributeValue, Attributes, DecodedLogRecord, InstrumentationScope } from '../log-record.ts';
import { RecentKeyLists } from '../../core/recent-key-lists.ts';
import { placeAt, placementOf } from './ecs-fields.ts';
import type { Placement } from './ecs-fields.ts';

/** What can be wrong with a record; each is flagged on the document, none stops it being indexed. */
export type MappingIssue =
  | 'dataset_missing'
  | 'dataset_invalid'
  | 'timestamp_missing'
  | 'timestamp_out_of_range'
  | 'record_id_missing'
  | 'log_offset_invalid'
  | 'ecs_field_invalid'
  | 'chain_invalid';

export interface MappedRecord {
  /** Data stream to index into, `logs-ci_audit.<dataset>-<namespace>`. */
  dataStream: string;
  /** Deterministic `_id`, so that a re-sent record is a conflict (409), not a duplicate. Absent: Elasticsearch picks one. */
  id?: string;
  document: EcsDocument;
  issues: MappingIssue[];
}

export type EcsDocument = Record<string, unknown>;

export interface MapOptions {
  /** Namespace part of the data stream name. */
  namespace: string;
  /** Ingest time, for `event.ingested`. */
  ingested: Date;
  /**
   * What the verify stage found for a chained record: the canonical text it hashed (stored as
   * `ci_audit.chain.record`) and whether the hash and link held (`ci_audit.verified`); `position`
   * is chainPosition of this record's attributes, when the stage read it already.
   */
  chain?: { canonical: string; verified: boolean; position?: ChainPosition | undefined } | undefined;
  /** For a checkpoint record: whether the verify stage found its signature valid (`ci_audit.checkpoint.verified`). */
  checkpointVerified?: boolean | undefined;
}

/** Where a chained record stands in its agent's chain, read off its attributes. */
export interface ChainPosition {
  seq: number;
  hash: string;
  prevHash: string;
}

/** The chain attributes of a record when all three are present and well formed; undefined otherwise. */
export function chainPosition(attributes: Attributes): ChainPosition | undefined {
  const seq = attributes[chainAttr.seq];
  const hash = attributes[chainAttr.hash];
  const prevHash = attributes[chainAttr.prevHash];
  const n = typeof seq === 'bigint' ? Number(seq) : seq;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || !isChainHash(hash)) return undefined;
  // A record's prev_hash is the hash of the record before it, checked a moment ago: comparing the
  // two is cheaper than matching the pattern again (both are read per record, in verify and in map).
  if (prevHash !== lastChainHash && !isChainHash(prevHash)) return undefined;
  lastChainHash = hash;
  return { seq: n, hash, prevHash };
}

/** The last hash chainPosition found well formed (never anything else). */
let lastChainHash = genesisHash;

/** Largest time `date_nanos` can hold: 2262-04-11T23:47:16.854775807Z. */
const maxDateNanos = 2n ** 63n - 1n;

const consumedResource = new Set<string>([resourceAttr.hostName, resourceAttr.serviceName, resourceAttr.serviceVersion, resourceAttr.agentId]);

/** Resource attributes of the agent's detectors (agent/resource.ts) -> their ECS paths under `host`. */
const hostFromResource: readonly [string, string[]][] = [
  [resourceDetectAttr.hostId, ['id']],
  [resourceDetectAttr.hostArch, ['architecture']],
  [resourceDetectAttr.osType, ['os', 'type']],
  [resourceDetectAttr.osName, ['os', 'name']],
  [resourceDetectAttr.osVersion, ['os', 'version']],
  [resourceDetectAttr.osDescription, ['os', 'full']],
];
for (const [key] of hostFromResource) consumedResource.add(key);

/** ECS `host.os.type` knows macos where OpenTelemetry's `os.type` says darwin. */
function ecsHostValue(key: string, value: string): string {
  return key === resourceDetectAttr.osType && value === 'darwin' ? 'macos' : value;
}

export function mapToEcs(record: DecodedLogRecord, options: MapOptions): MappedRecord {
  const issues: MappingIssue[] = [];
  const source = record.attributes;

  // Dataset -> data stream. A bad value is kept among the attributes so that nothing is lost.
  const rawDataset = source[recordAttr.dataset];
  let dataset = defaultDataset;
  let datasetTaken = false;
  if (rawDataset === undefined) {
    issues.push('dataset_missing');
  } else if (typeof rawDataset === 'string' && (rawDataset === datasetNames.dataset || datasetPattern.test(rawDataset))) {
    dataset = rawDataset;
    datasetTaken = true;
  } else {
    issues.push('dataset_invalid');
  }

  // The chain position: to ci_audit.chain, and the `_id` (agent + sequence number) that makes a
  // re-sent record a 409 conflict. Malformed chain attributes stay attributes, flagged.
  const chain = options.chain?.position ?? chainPosition(source);
  if (chain === undefined && (source[chainAttr.seq] !== undefined || source[chainAttr.hash] !== undefined || source[chainAttr.prevHash] !== undefined)) {
    issues.push('chain_invalid');
  }

  const recordId = scalarString(source[recordAttr.recordId]);
  if (recordId === undefined) issues.push('record_id_missing');

  const logFilePath = scalarString(source[recordAttr.logFilePath]);

  let logOffset: number | string | undefined;
  const rawOffset = source[recordAttr.logOffset];
  if (rawOffset !== undefined) {
    logOffset = offsetValue(rawOffset);
    if (logOffset === undefined) issues.push('log_offset_invalid');
  }

  const resource = resourceParts(record.resource);
  const { hostName, agentId, serviceName, serviceVersion } = resource;

  // @timestamp: the event's time, else when the sender saw it, else when we received it.
  let timestamp: string;
  if (record.timeUnixNano > 0n && record.timeUnixNano <= maxDateNanos) {
    timestamp = nanosToRfc3339(record.timeUnixNano);
  } else {
    issues.push(record.timeUnixNano === 0n ? 'timestamp_missing' : 'timestamp_out_of_range');
    timestamp =
      record.observedTimeUnixNano > 0n && record.observedTimeUnixNano <= maxDateNanos
        ? nanosToRfc3339(record.observedTimeUnixNano)
        : nanosToRfc3339(BigInt(options.ingested.getTime()) * 1_000_000n);
  }

  const body = bodyString(record.body);
  const { stream, eventDataset } = namesOf(dataset, options.namespace);

  // The document's own fields come first, in their order; the attributes' ECS fields are placed into
  // it afterwards, and so follow them. Placing them into an object of their own and merging that in
  // cost a tenth of the mapping; it gives the same document because no ECS field lands on a field
  // the mapping sets (test/unit/aggregator/ecs-fields.test.ts), except two: `message`, which the
  // parsed message replaces (the whole line stays `event.original`), and `ci_audit.*`, whose fields
  // follow ci_audit's own, which are only known after the attributes.
  const ciAudit: Record<string, unknown> = {
    // What the verify stage vouched for: a chained record's hash and link, or a checkpoint's signature.
    verified: options.chain?.verified ?? options.checkpointVerified ?? false,
    from_agent: serviceName === agentServiceName,
  };
  if (chain !== undefined) {
    const stored: Record<string, unknown> = { seq: chain.seq, hash: chain.hash, prev_hash: chain.prevHash };
    if (options.chain !== undefined) stored.record = options.chain.canonical;
    ciAudit.chain = stored;
  }

  const event: Record<string, unknown> = { dataset: eventDataset, ingested: isoText(options.ingested) };
  if (body !== undefined) event.original = body;
  if (recordId !== undefined) event.id = recordId;
  if (record.observedTimeUnixNano > 0n && record.observedTimeUnixNano <= maxDateNanos) {
    event.created = nanosToRfc3339(record.observedTimeUnixNano);
  }
  if (record.severityNumber > 0) event.severity = record.severityNumber;

  const document: EcsDocument = { '@timestamp': timestamp };
  if (body !== undefined) document.message = body;
  document.event = event;
  const level = record.severityText !== '' ? record.severityText.toLowerCase() : levelOf(record.severityNumber);
  if (level !== undefined || logFilePath !== undefined || logOffset !== undefined) {
    const log: Record<string, unknown> = {};
    if (level !== undefined) log.level = level;
    if (logFilePath !== undefined) log.file = { path: logFilePath };
    if (logOffset !== undefined) log.offset = logOffset;
    document.log = log;
  }
  if (hostName !== undefined || resource.host.length > 0) {
    const host: Record<string, unknown> = {};
    if (hostName !== undefined) host.name = hostName;
    for (const [path, value] of resource.host) {
      if (path.length === 1) host[path[0] ?? ''] = value;
      else ((host.os ??= {}) as Record<string, unknown>)[path[1] ?? ''] = value;
    }
    document.host = host;
  }
  if (agentId !== undefined || serviceName !== undefined || serviceVersion !== undefined) {
    const agent: Record<string, unknown> = {};
    if (agentId !== undefined) agent.id = agentId;
    if (serviceName !== undefined) agent.type = serviceName;
    if (serviceVersion !== undefined) agent.version = serviceVersion;
    document.agent = agent;
  }
  if (record.traceId !== '') document.trace = { id: record.traceId };
  if (record.spanId !== '') document.span = { id: record.spanId };
  document.data_stream = { type: 'logs', dataset: eventDataset, namespace: options.namespace };
  document.ci_audit = ciAudit;
  // Without a body, a parsed message comes right after ci_audit, before the other ECS fields: its
  // place is taken now, and given up again when the attribute is not placed after all.
  const messageSlot = body === undefined && source[ecsAttr.message] !== undefined;
  if (messageSlot) document.message = undefined;

  // One pass over the attributes, in their order: what was taken above is left out, `ci_audit.gap.*`
  // and `ci_audit.checkpoint.*` go to those groups, the agent's parsed ECS / CI/CD fields to their
  // ECS paths (what does not fit stays an attribute, flagged), and the rest stays an attribute.
  // Copying the whole object and deleting from it made every copy a slow dictionary object.
  const attributes: Attributes = {};
  /** The ECS fields under `ci_audit`, merged in once ci_audit's own are there. */
  let placedCiAudit: Record<string, unknown> | undefined;
  let ciAuditNested: Record<string, Record<string, unknown>> | undefined;
  let ecsFieldInvalid = false;
  let kept = 0;
  // Which kinds of key (Taken) hold a value taken above, as bits: such a key is left out. (An array of
  // six booleans was one more object a record.)
  const taken =
    (datasetTaken ? takenDataset : 0) |
    (recordId !== undefined ? takenRecordId : 0) |
    (chain !== undefined ? takenChain : 0) |
    (logFilePath !== undefined ? takenLogFilePath : 0) |
    (logOffset !== undefined ? takenLogOffset : 0);
  const steps = keyPlanOf(source);
  // The values by position, as the plan's steps are: `source[key]` with a different key at each
  // step is a megamorphic keyed load, several times the cost of reading an array.
  const values = Object.values(source);
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    if ((taken & step.taken) !== 0) continue;
    const key = step.key;
    const value = values[i];
    let target = document;
    if (step.underCiAudit) {
      if (step.group !== undefined && value !== undefined && typeof value !== 'object') {
        ((ciAuditNested ??= {})[step.group] ??= {})[step.groupKey] = typeof value === 'bigint' ? value.toString() : value;
        continue;
      }
      target = placedCiAudit ??= {};
    }
    const placement = step.placement === undefined ? undefined : placeAt(step.placement, value, target);
    if (placement === 'placed') continue;
    if (placement === 'rejected') ecsFieldInvalid = true;
    setOwn(attributes, key, value);
    kept++;
  }
  if (messageSlot && document.message === undefined) delete document.message;

  if (ecsFieldInvalid) issues.push('ecs_field_invalid');
  if (ciAuditNested !== undefined) {
    Object.assign(ciAudit, ciAuditNested);
    if (ciAuditNested.checkpoint !== undefined) ciAuditNested.checkpoint.verified = options.checkpointVerified ?? false;
  }
  if (record.timeUnixNano > maxDateNanos) ciAudit.time_unix_nano = record.timeUnixNano.toString();
  if (issues.length > 0) ciAudit.issues = [...issues];
  if (kept > 0) setIfNotEmpty(ciAudit, 'attributes', flattenAttributes(attributes));
  if (resource.attributes !== undefined) ciAudit.resource = { attributes: { ...resource.attributes } };
  const scope = scopePart(record.scope);
  if (scope !== undefined) ciAudit.scope = { ...scope };
  if (record.eventName !== '') ciAudit.event_name = record.eventName;
  if (record.flags !== 0) ciAudit.trace_flags = record.flags;
  if (record.droppedAttributesCount !== 0) ciAudit.dropped_attributes_count = record.droppedAttributesCount;
  if (placedCiAudit !== undefined) mergeInto(document, placedCiAudit);

  const mapped: MappedRecord = { dataStream: stream, document, issues };
  const checkpoint = ciAuditNested?.checkpoint;
  if (chain !== undefined && agentId !== undefined) mapped.id = boundedDocumentId(chainDocumentId(agentId, chain.seq));
  else if (agentId !== undefined && typeof checkpoint?.key === 'string' && typeof checkpoint.seq === 'number') {
    mapped.id = boundedDocumentId(checkpointDocumentId(agentId, checkpoint.type === 'key_rotation' ? 'key_rotation' : 'checkpoint', checkpoint.key, checkpoint.seq));
  } else if (recordId !== undefined) mapped.id = documentId(agentId ?? hostName ?? '', recordId);
  return mapped;
}

/**
 * The data stream and `event.dataset` of the last valid dataset seen (a request's records nearly all
 * share one): they were two strings joined per record, and the dataset's pattern tested again.
 */
let datasetNames: { dataset: string; namespace: string | undefined; stream: string; eventDataset: string } = {
  // Only a dataset that passed datasetPattern (or the default) is ever kept: mapToEcs takes a value
  // equal to it without testing the pattern again.
  dataset: defaultDataset,
  namespace: undefined,
  stream: '',
  eventDataset: '',
};

function namesOf(dataset: string, namespace: string): { stream: string; eventDataset: string } {
  if (dataset !== datasetNames.dataset || namespace !== datasetNames.namespace) {
    datasetNames = { dataset, namespace, stream: dataStreamName(dataset, namespace), eventDataset: `ci_audit.${dataset}` };
  }
  return datasetNames;
}

/** What a record's resource gives its document: the same for every record of a ResourceLogs. */
interface ResourceParts {
  hostName: string | undefined;
  agentId: string | undefined;
  serviceName: string | undefined;
  serviceVersion: string | undefined;
  /** The detectors' attributes as [path under `host`, value], in hostFromResource's order. */
  host: ReadonlyArray<readonly [readonly string[], string]>;
  /** The other resource attributes, flattened (ci_audit.resource.attributes); undefined when none. */
  attributes: Record<string, unknown> | undefined;
}

/**
 * The decoder gives every record of a ResourceLogs the same resource object, and nothing changes it
 * after decoding: its parts are worked out once per request instead of once per record.
 */
const resourcePartsOf = new WeakMap<Attributes, ResourceParts>();

function resourceParts(resource: Attributes): ResourceParts {
  let parts = resourcePartsOf.get(resource);
  if (parts !== undefined) return parts;
  const otherResource: Attributes = {};
  for (const [key, value] of Object.entries(resource)) {
    if (!consumedResource.has(key)) otherResource[key] = value;
  }
  const host: Array<readonly [readonly string[], string]> = [];
  for (const [key, path] of hostFromResource) {
    const value = scalarString(resource[key]);
    if (value !== undefined) host.push([path, ecsHostValue(key, value)]);
  }
  const attributes = flattenAttributes(otherResource);
  parts = {
    hostName: scalarString(resource[resourceAttr.hostName]),
    agentId: scalarString(resource[resourceAttr.agentId]),
    serviceName: scalarString(resource[resourceAttr.serviceName]),
    serviceVersion: scalarString(resource[resourceAttr.serviceVersion]),
    host,
    attributes: Object.keys(attributes).length > 0 ? attributes : undefined,
  };
  resourcePartsOf.set(resource, parts);
  return parts;
}

/** `ci_audit.scope` of a scope's records (undefined when the scope is empty), worked out once per scope object. */
const scopeParts = new WeakMap<InstrumentationScope, Record<string, unknown> | null>();

function scopePart(scope: InstrumentationScope): Record<string, unknown> | undefined {
  let part = scopeParts.get(scope);
  if (part === undefined) {
    const built: Record<string, unknown> = {};
    if (scope.name !== '') built.name = scope.name;
    if (scope.version !== '') built.version = scope.version;
    setIfNotEmpty(built, 'attributes', flattenAttributes(scope.attributes));
    part = Object.keys(built).length > 0 ? built : null;
    scopeParts.set(scope, part);
  }
  return part ?? undefined;
}

function isChainKey(key: string): boolean {
  return key === chainAttr.seq || key === chainAttr.hash || key === chainAttr.prevHash;
}

/** Which value mapToEcs takes itself a key holds (its bit in mapToEcs's `taken`): such a key is left out of the attributes when it was taken. */
const takenNone = 0;
const takenDataset = 1;
const takenRecordId = 2;
const takenChain = 4;
const takenLogFilePath = 8;
const takenLogOffset = 16;
type Taken = typeof takenNone | typeof takenDataset | typeof takenRecordId | typeof takenChain | typeof takenLogFilePath | typeof takenLogOffset;

/** What mapToEcs's attribute loop does with one key: everything about it that depends on the key alone. */
interface KeyStep {
  key: string;
  taken: Taken;
  /** A `ci_audit.*` key: placed under ci_audit, after ci_audit's own fields. */
  underCiAudit: boolean;
  /** `ci_audit.gap.*` and `ci_audit.checkpoint.*`: the group, and the key within it. */
  group: 'gap' | 'checkpoint' | undefined;
  groupKey: string;
  /** Where a known ECS field goes; undefined for other keys. */
  placement: Placement | undefined;
}

function keyStep(key: string): KeyStep {
  const underCiAudit = key.startsWith('ci_audit.');
  let taken: Taken = takenNone;
  if (underCiAudit) {
    if (key === recordAttr.dataset) taken = takenDataset;
    else if (key === recordAttr.recordId) taken = takenRecordId;
    else if (isChainKey(key)) taken = takenChain;
  } else if (key === recordAttr.logFilePath) taken = takenLogFilePath;
  else if (key === recordAttr.logOffset) taken = takenLogOffset;
  const group = !underCiAudit ? undefined : key.startsWith('ci_audit.gap.') ? 'gap' : key.startsWith('ci_audit.checkpoint.') ? 'checkpoint' : undefined;
  return { key, taken, underCiAudit, group, groupKey: group === undefined ? '' : key.slice(group.length + 'ci_audit..'.length), placement: placementOf(key) };
}

/** Key plans kept: a request may interleave the records of a few sources. */
const keyPlans = new RecentKeyLists<readonly KeyStep[]>(4);

/**
 * The steps for a record's attribute keys, in their order. The records of one source carry the same
 * keys in the same order, so what each key is and where it goes is decided once per key list.
 */
function keyPlanOf(attributes: Attributes): readonly KeyStep[] {
  const keys = Object.keys(attributes);
  let steps = keyPlans.get(keys);
  if (steps === undefined) {
    steps = keys.map(keyStep);
    keyPlans.set(keys, steps);
  }
  return steps;
}

/**
 * `_id` of a record without a chain position: `<agent id>:id:<record id>` (recordDocumentId),
 * hashed (`sha256:<hex>`) when longer than Elasticsearch allows.
 */
export function documentId(agentId: string, recordId: string): string {
  return boundedDocumentId(recordDocumentId(agentId, recordId));
}

/** Nanoseconds since the epoch -> RFC 3339 in UTC with nine fractional digits. */
export function nanosToRfc3339(nanos: bigint): string {
  // A Date and its toISOString per timestamp were a quarter of the mapping's cost (a record's event
  // time and observed time alternate, so a cache of the last second missed on every record): the
  // text is written from integer arithmetic instead, the date part kept per day.
  if (nanos < 0n) {
    // Only an ingest clock before 1970 gets here; written as it always was.
    const before = nanos / 1_000_000_000n;
    return `${new Date(Number(before) * 1000).toISOString().slice(0, 19)}.${String(Number(nanos - before * 1_000_000_000n)).padStart(9, '0')}Z`;
  }
  const seconds = Number(nanos / 1_000_000_000n);
  const fraction = Number(nanos % 1_000_000_000n);
  const days = Math.floor(seconds / 86_400);
  const ofDay = seconds - days * 86_400;
  const hours = Math.floor(ofDay / 3600);
  const minutes = Math.floor((ofDay % 3600) / 60);
  return `${dayText(days)}T${twoDigits[hours]}:${twoDigits[minutes]}:${twoDigits[ofDay % 60]}.${fractionText(fraction)}Z`;
}

/**
 * dateText, kept for the last two days seen: a record's event time and observed time are often on
 * different days (an SDK sets the observed time to now, the event time is the line's), and with
 * one day kept every timestamp of such records wrote its date again.
 */
function dayText(days: number): string {
  if (days === lastDay) return lastDayText;
  if (days !== otherDay) {
    otherDay = days;
    otherDayText = dateText(days);
  }
  const text = otherDayText;
  otherDay = lastDay;
  otherDayText = lastDayText;
  lastDay = days;
  lastDayText = text;
  return text;
}

/** `date.toISOString()`, kept for the last time seen: every record of a request shares its ingest time. */
function isoText(date: Date): string {
  const time = date.getTime();
  if (time !== lastIsoTime) {
    lastIsoTime = time;
    lastIsoText = date.toISOString();
  }
  return lastIsoText;
}

let lastIsoTime = Number.NaN;
let lastIsoText = '';

let lastDay = -1;
let lastDayText = '';
let otherDay = -1;
let otherDayText = '';

const twoDigits = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));

function fractionText(fraction: number): string {
  const text = String(fraction);
  return text.length === 9 ? text : '000000000'.slice(text.length) + text;
}

/** `YYYY-MM-DD` of a day counted from 1970-01-01 (days >= 0, years up to 9999). */
function dateText(days: number): string {
  const date = new Date(days * 86_400_000);
  return `${date.getUTCFullYear()}-${twoDigits[date.getUTCMonth() + 1]}-${twoDigits[date.getUTCDate()]}`;
}

/** The body as text: strings as they are, other values as JSON (bytes as base64). */
export function bodyString(body: AttributeValue): string | undefined {
  if (body === undefined) return undefined;
  if (typeof body === 'string') return body;
  const scalar = scalarJson(body);
  if (scalar !== undefined) return String(scalar);
  return JSON.stringify(toJson(body));
}

/**
 * Attributes as one level of keyword-friendly fields: nested key-value lists become dotted keys,
 * arrays of scalars stay arrays, anything else (arrays of lists) becomes a JSON string. bigints and
 * non-finite numbers become strings, bytes base64, empty values are left out, and a blank key
 * (which Elasticsearch refuses) becomes `_blank:"<key>"`.
 */
export function flattenAttributes(attributes: Attributes): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const visit = (prefix: string, value: AttributeValue): void => {
    if (value === undefined) return;
    const scalar = scalarJson(value);
    if (scalar !== undefined) {
      setOwn(out, prefix, scalar);
    } else if (Array.isArray(value)) {
      const items = value.map(scalarJson);
      setOwn(out, prefix, items.every((v) => v !== undefined) ? items : JSON.stringify(toJson(value)));
    } else if (typeof value === 'object' && !(value instanceof Uint8Array)) {
      for (const [key, inner] of Object.entries(value)) visit(prefix === '' ? key : `${prefix}.${key}`, inner);
    }
  };
  for (const [key, value] of Object.entries(attributes)) visit(key, value);
  // Elasticsearch refuses empty and whitespace-only field names; such a key gets a visible name.
  for (const key of Object.keys(out)) {
    if (key.trim() === '') {
      out[`_blank:${JSON.stringify(key)}`] = out[key];
      delete out[key];
    }
  }
  return out;
}

/** `target[key] = value`, except that a key named `__proto__` becomes a property, not a prototype change. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

function scalarJson(value: AttributeValue): string | number | boolean | undefined {
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  return undefined;
}

function toJson(value: AttributeValue): unknown {
  const scalar = scalarJson(value);
  if (scalar !== undefined || value === undefined) return scalar ?? null;
  if (Array.isArray(value)) return value.map(toJson);
  return Object.fromEntries(Object.entries(value as Attributes).map(([k, v]) => [k, toJson(v)]));
}

function scalarString(value: AttributeValue): string | undefined {
  const scalar = scalarJson(value);
  return scalar === undefined || scalar === '' ? undefined : String(scalar);
}

/** A byte offset: a non-negative integer (as a string when beyond 2^53, Elasticsearch's long takes it). */
function offsetValue(value: AttributeValue): number | string | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === 'bigint' && value >= 0n && value < 2n ** 63n) return value.toString();
  if (typeof value === 'string' && /^\d{1,18}$/.test(value)) return Number.isSafeInteger(Number(value)) ? Number(value) : value;
  return undefined;
}

/** ECS `log.level` from an OTLP SeverityNumber when the sender gave no text. */
function levelOf(severityNumber: number): string | undefined {
  if (severityNumber <= 0) return undefined;
  const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];
  return levels[Math.min(Math.floor((severityNumber - 1) / 4), levels.length - 1)];
}

function setIfNotEmpty(target: Record<string, unknown>, key: string, value: Record<string, unknown>): void {
  if (Object.keys(value).length > 0) target[key] = value;
}

/** Adds `extra` into `target` without replacing what `target` already has (the aggregator's own fields win). */
function mergeInto(target: Record<string, unknown>, extra: Record<string, unknown>): void {
  for (const key of Object.keys(extra)) {
    const value = extra[key];
    const existing = target[key];
    if (existing === undefined) target[key] = value;
    else if (isPlainObject(existing) && isPlainObject(value)) mergeInto(existing, value);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
