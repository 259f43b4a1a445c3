// Where the chain lives in an indexed document: the fields `verify` reads back and sorts by, and
// the `_id` that makes indexing append-only (a second `create` of the same agent + sequence number
// is a 409 conflict, never an overwrite). One place for these names: the aggregator's mapping, its
// index template and `verify` all use them.
import { chainAttr, checkpointAttr } from '../wire.ts';

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

/** `_id` of a checkpoint document: `<agent id>:checkpoint:<key id>:<seq>`. */
export function checkpointDocumentId(agentId: string, key: string, seq: number): string {
  return `${agentId}:checkpoint:${key}:${seq}`;
}
