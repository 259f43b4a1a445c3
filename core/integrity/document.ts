// Where the chain lives in an indexed document: the fields `verify` reads back and sorts by, and
// the `_id`s that make indexing append-only (a second `create` of the same agent + sequence number
// is a 409 conflict, never an overwrite). One place for these names and id shapes: the aggregator's
// mapping, its index template, its integrity events and `verify` all use them.
//
// Every `_id` the aggregator writes for an agent is `<agent id>:<kind>:...`, the kind a fixed word:
// `seq` (chained record), `checkpoint` or `key_rotation` (signed statements, each type its own kind:
// a rotation and a checkpoint of one key at one seq are two documents), `integrity` (integrity event)
// or `id` (any other record, by its `ci_audit.record.id`). An enrolled agent's id has no `:` (agentIdPattern in
// aggregator/auth/registry.ts), so the kind is always the second part: a record id, whatever it
// holds, stays inside `id` and can never take the `_id` of a chained record, a checkpoint or an
// event. (Were it to, the writer reports the chained record's 409 as a chain_fork, docs/integrity.md.)
import { createHash } from 'node:crypto';
import { chainAttr, checkpointAttr } from '../wire.ts';
import type { CheckpointType } from './checkpoint.ts';

/**
 * Document fields (dotted paths) of a chained record. The chain and checkpoint attributes keep
 * their wire names (core/wire.ts) as paths in the document.
 */
export const chainField = {
  ...chainAttr,
  /** The canonical record text (core/integrity/record.ts), stored verbatim and not indexed. */
  record: 'ci_audit.chain.record',
  agentId: 'agent.id',
} as const;

/** Document fields of a checkpoint document (dataset `integrity`). */
export const checkpointField = {
  ...checkpointAttr,
  /** Set by the aggregator: whether the signature verified against the agent's registered key. */
  verified: 'ci_audit.checkpoint.verified',
} as const;

/** `_id` of a chained record: `<agent id>:seq:<n>`. */
export function chainDocumentId(agentId: string, seq: number): string {
  return `${agentId}:seq:${seq}`;
}

/**
 * Record id (`ci_audit.record.id`) of a signed statement: `<type>:<key id>:<seq>`, so
 * `checkpoint:<key id>:<seq>` or `key_rotation:<key id>:<seq>`. The type is part of it: the agent
 * signs a checkpoint and a rotation of the same key at the same seq whenever it rotates while its
 * chain stands still (rotate-key while stopped or idle), and both must be stored.
 */
export function checkpointRecordId(type: CheckpointType, key: string, seq: number): string {
  return `${type}:${key}:${seq}`;
}

/**
 * `_id` of a signed statement's document: `<agent id>:checkpoint:<key id>:<seq>` for a checkpoint,
 * `<agent id>:key_rotation:<key id>:<seq>` for a key rotation (`<agent id>:` + its record id).
 */
export function checkpointDocumentId(agentId: string, type: CheckpointType, key: string, seq: number): string {
  return `${agentId}:${checkpointRecordId(type, key, seq)}`;
}

/**
 * `_id` of a record without a chain position (another OpenTelemetry sender's, say):
 * `<agent id>:id:<record id>`; the aggregator puts the host name in the agent id's place when the
 * record names no agent. Not bounded here: see boundedDocumentId.
 */
export function recordDocumentId(agentId: string, recordId: string): string {
  return `${agentId}:id:${recordId}`;
}

/** `_id` of an integrity event: `<agent id>:integrity:<action>:<key>` (aggregator/verify/events.ts). */
export function integrityEventDocumentId(agentId: string, action: string, key: string): string {
  return `${agentId}:integrity:${action}:${key}`;
}

/** Elasticsearch refuses an `_id` longer than this, in UTF-8 bytes. */
const maxIdBytes = 512;

/** An `_id` as it is when Elasticsearch takes it, else `sha256:<hex>` of it. */
export function boundedDocumentId(id: string): string {
  // UTF-8 takes at most 3 bytes a UTF-16 unit: an id that short fits without being measured.
  if (id.length * 3 <= maxIdBytes || Buffer.byteLength(id) <= maxIdBytes) return id;
  return `sha256:${createHash('sha256').update(id).digest('hex')}`;
}
