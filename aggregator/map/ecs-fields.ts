// Places the agent's ECS and OpenTelemetry CI/CD + VCS attributes (names in core/wire.ts) at their
// paths in the ECS document, with the types the index template gives them. A value of the wrong
// type (an `ip` that is no IP, a port that is no number) is left among ci_audit.attributes and
// flagged, so that one bad field never fails the whole document. Pure.
import { isIP } from 'node:net';
import { cicdAttr, ecsAttr, parseAttr } from '../../core/wire.ts';
import type { AttributeValue, Attributes } from '../log-record.ts';

type Kind = 'keyword' | 'keywords' | 'ip' | 'ips' | 'long';

const kinds = new Map<string, Kind>();
for (const key of Object.values(ecsAttr)) kinds.set(key, 'keyword');
for (const key of Object.values(cicdAttr)) kinds.set(key, 'keyword');
for (const key of [ecsAttr.eventCategory, ecsAttr.eventType, ecsAttr.relatedUser, ecsAttr.relatedHash, ecsAttr.relatedHosts, parseAttr.redactedBy]) kinds.set(key, 'keywords');
kinds.set(ecsAttr.sourceIp, 'ip');
kinds.set(ecsAttr.sshDroppedIp, 'ip');
kinds.set(ecsAttr.relatedIp, 'ips');
kinds.set(ecsAttr.sourcePort, 'long');
kinds.set(ecsAttr.processPid, 'long');
kinds.set(ecsAttr.processExitCode, 'long');
kinds.set(parseAttr.parser, 'keyword');
kinds.set(parseAttr.status, 'keyword');

/** Fields the aggregator itself sets: an attribute may not overwrite them. */
const reserved = new Set(['event.original', 'event.dataset', 'event.ingested', 'event.id', 'event.created', 'event.severity']);

/** Keys under these prefixes are placed as keywords too (ECS `labels.*`, the Filebeat-compatible `system.auth.*`). */
const keywordPrefixes = ['labels.', 'system.auth.', 'cicd.', 'vcs.'];

function kindOf(key: string): Kind | undefined {
  const kind = kinds.get(key);
  if (kind !== undefined) return kind;
  return keywordPrefixes.some((p) => key.startsWith(p)) ? 'keyword' : undefined;
}

/** Where a known key goes: its type and its path, split once (keys repeat on every record). */
export interface Placement {
  kind: Kind;
  /** The dotted key split; undefined when a segment could reach a prototype, and the key stays a flat attribute. */
  parts: string[] | undefined;
}

const placements = new Map<string, Placement | null>();
const maxPlacements = 4096;

/** Where `key` goes when it is a known field; undefined for other keys. */
export function placementOf(key: string): Placement | undefined {
  let placement = placements.get(key);
  if (placement === undefined) {
    const kind = kindOf(key);
    if (kind === undefined || reserved.has(key)) {
      placement = null;
    } else {
      const parts = key.split('.');
      // A sender's key such as `labels.__proto__.x` would otherwise walk onto Object.prototype and
      // pollute every object of the process; such a key stays a flat attribute instead.
      placement = { kind, parts: parts.some((part) => unsafeSegments.has(part)) ? undefined : parts };
    }
    if (placements.size >= maxPlacements) placements.clear();
    placements.set(key, placement);
  }
  return placement ?? undefined;
}

/**
 * Moves every known attribute from `attributes` into `document` (dotted key -> nested objects).
 * Returns the keys left behind because their value did not fit the field's type.
 */
export function placeEcsFields(attributes: Attributes, document: Record<string, unknown>): string[] {
  const rejected: string[] = [];
  for (const key of Object.keys(attributes)) {
    const placed = placeEcsField(key, attributes[key], document);
    if (placed === 'placed') delete attributes[key];
    else if (placed === 'rejected') rejected.push(key);
  }
  return rejected;
}

/**
 * Places one attribute in `document` when its key is a known field: 'placed', or 'rejected' when
 * its value does not fit the field's type (or a scalar is in the way); undefined for other keys.
 */
export function placeEcsField(key: string, value: AttributeValue, document: Record<string, unknown>): 'placed' | 'rejected' | undefined {
  const placement = placementOf(key);
  return placement === undefined ? undefined : placeAt(placement, value, document);
}

/** placeEcsField with the key's placement already looked up. */
export function placeAt(placement: Placement, value: AttributeValue, document: Record<string, unknown>): 'placed' | 'rejected' {
  const converted = convert(value, placement.kind);
  if (converted === undefined || placement.parts === undefined) return 'rejected';
  return setPath(document, placement.parts, converted) ? 'placed' : 'rejected';
}

function convert(value: AttributeValue, kind: Kind): unknown {
  switch (kind) {
    case 'keyword':
      return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
    case 'keywords':
      if (typeof value === 'string') return [value];
      return Array.isArray(value) && value.every(isString) ? value : undefined;
    case 'ip':
      return typeof value === 'string' && isIP(value) !== 0 ? value : undefined;
    case 'ips':
      if (typeof value === 'string') return isIP(value) !== 0 ? [value] : undefined;
      return Array.isArray(value) && value.every(isIpString) ? value : undefined;
    case 'long':
      if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
      if (typeof value === 'bigint') return value.toString();
      if (typeof value === 'string' && /^-?\d{1,18}$/.test(value)) return Number(value);
      return undefined;
  }
}

function isString(value: AttributeValue): boolean {
  return typeof value === 'string';
}

function isIpString(value: AttributeValue): boolean {
  return typeof value === 'string' && isIP(value) !== 0;
}

const unsafeSegments = new Set(['__proto__', 'constructor', 'prototype']);

/** Sets `a.b.c` (given as its parts) in nested objects; false when a scalar is in the way (e.g. `user` is a string). */
function setPath(target: Record<string, unknown>, parts: readonly string[], value: unknown): boolean {
  let node = target;
  const last = parts.length - 1;
  for (let i = 0; i < last; i++) {
    const part = parts[i]!;
    const next = node[part];
    if (next === undefined) {
      const created: Record<string, unknown> = {};
      node[part] = created;
      node = created;
    } else if (typeof next === 'object' && next !== null && !Array.isArray(next)) {
      node = next as Record<string, unknown>;
    } else {
      return false;
    }
  }
  const key = parts[last]!;
  const existing = node[key];
  if (existing !== undefined && typeof existing === 'object') return false;
  node[key] = value;
  return true;
}
