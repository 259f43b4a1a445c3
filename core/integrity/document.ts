// Where the chain lives in an indexed document: the fields `verify` reads back and sorts by, and
// the `_id` that makes indexing append-only (a second `create` of the same agent + sequence number
// is a 409 conflict, never an overwrite). One place for these names: the aggregator's mapping, its
// index template and `verify` all use them.

/** Document fields (dotted paths) of a chained record. */
export const chainField = {
  seq: 'ci_audit.chain.seq',
  hash: 'ci_audit.chain.hash',
  prevHash: 'ci_audit.chain.prev_hash',
  /** The canonical record text (core/integrity/record.ts), stored verbatim and not indexed. */
  record: 'ci_audit.chain.record',
  agentId: 'agent.id',
} as const;

/** Document fields of a checkpoint document (dataset `integrity`). */
export const checkpointField = {
  type: 'ci_audit.checkpoint.type',
  seq: 'ci_audit.checkpoint.seq',
  hash: 'ci_audit.checkpoint.hash',
  time: 'ci_audit.checkpoint.time',
  key: 'ci_audit.checkpoint.key',
  signature: 'ci_audit.checkpoint.signature',
  nextKey: 'ci_audit.checkpoint.next_key',
  nextPublicKey: 'ci_audit.checkpoint.next_public_key',
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
