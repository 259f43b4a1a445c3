// Integrity events: what the verify stage (and the index stage, for forks) found, as documents of
// `logs-ci_audit.integrity-<namespace>`. A pure builder. Each event has a deterministic `_id` made
// of the agent, the finding and what it is about, so a re-sent request or a second aggregator
// that finds the same thing creates no second event (409 on create).
import { dataStreamName, integrityDataset } from '../../core/wire.ts';
import { boundedDocumentId, integrityEventDocumentId } from '../../core/integrity/document.ts';
import type { MappedRecord } from '../map/ecs.ts';

/** The findings, as `event.action`. */
export type IntegrityAction =
  | 'chain_hash_mismatch'
  | 'chain_link_broken'
  | 'chain_fork'
  | 'chain_gap'
  | 'chain_gap_declared'
  | 'chain_seq_jump'
  | 'source_gap'
  | 'checkpoint_signature_invalid'
  | 'checkpoint_key_unknown'
  | 'checkpoint_malformed';

/** Findings that mean something may have been tampered with or lost unannounced: `event.kind: alert`. */
const alerts: ReadonlySet<IntegrityAction> = new Set([
  'chain_hash_mismatch',
  'chain_link_broken',
  'chain_fork',
  'chain_gap',
  'chain_seq_jump',
  'checkpoint_signature_invalid',
  'checkpoint_key_unknown',
  'checkpoint_malformed',
]);

export interface IntegrityEvent {
  action: IntegrityAction;
  agentId: string;
  /** Makes the `_id` unique per finding: e.g. the seq range, or seq + received hash. */
  idKey: string;
  /** What happened and what to do, for a human. */
  message: string;
  firstSeq?: number | undefined;
  lastSeq?: number | undefined;
  /** `_id` of the document concerned (the record, or the checkpoint). */
  docId?: string | undefined;
  /** Further facts under `ci_audit.integrity`: hashes, key ids, the gap's reason, a received record that was not stored. */
  details?: Record<string, string | number | boolean | undefined>;
}

export function integrityEventId(event: Pick<IntegrityEvent, 'agentId' | 'action' | 'idKey'>): string {
  return boundedDocumentId(integrityEventDocumentId(event.agentId, event.action, event.idKey));
}

/** The event as a document for the index stage. `at`: when it was found. */
export function integrityEventRecord(event: IntegrityEvent, options: { namespace: string; at: Date }): MappedRecord {
  const dataset = `ci_audit.${integrityDataset}`;
  const integrity: Record<string, unknown> = {};
  if (event.firstSeq !== undefined) integrity.first_seq = event.firstSeq;
  if (event.lastSeq !== undefined) integrity.last_seq = event.lastSeq;
  if (event.docId !== undefined) integrity.doc_id = event.docId;
  for (const [key, value] of Object.entries(event.details ?? {})) if (value !== undefined) integrity[key] = value;
  const at = options.at.toISOString();
  const document: Record<string, unknown> = {
    '@timestamp': at,
    message: event.message,
    event: { kind: alerts.has(event.action) ? 'alert' : 'event', action: event.action, dataset, ingested: at },
    agent: { id: event.agentId },
    data_stream: { type: 'logs', dataset, namespace: options.namespace },
    ci_audit: { verified: false, from_agent: false, integrity },
  };
  return { dataStream: dataStreamName(integrityDataset, options.namespace), id: integrityEventId(event), document, issues: [] };
}

/** `first`, or `first-last` when the range has more than one seq. */
export function seqRangeText(first: number, last: number): string {
  return first === last ? String(first) : `${first}-${last}`;
}
