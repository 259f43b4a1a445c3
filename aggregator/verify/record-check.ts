// The first check of the verify stage, a pure function: does a chained record hash to what it
// claims? The canonical text is recomputed from the record as the aggregator decoded it, with the
// agent id the credential proved (the receiver refused a request whose records claim another id),
// so a record re-labelled as another agent's, or changed on the way, no longer matches its hash.
import { chainHashAndText } from '../../core/integrity/chain.ts';
import { canonicalAttributes } from '../../core/integrity/record.ts';
import type { DecodedLogRecord } from '../log-record.ts';
import { chainPosition } from '../map/ecs.ts';
import type { ChainPosition } from '../map/ecs.ts';

export type RecordCheck =
  /** The record carries no (well-formed) chain position: not chained, nothing to check. */
  | { kind: 'unchained' }
  /** `canonical` is the text the aggregator hashed; `hashOk` whether chainHash(prev, canonical) is the claimed hash. */
  | { kind: 'chained'; position: ChainPosition; canonical: string; hashOk: boolean; computedHash: string };

/**
 * The canonical text of each decoded resource. The decoder gives every record of a ResourceLogs the
 * same resource object, and nothing changes it after decoding: its text (a third of the record's)
 * is written once per request instead of once per record.
 */
const resourceTexts = new WeakMap<object, string>();

function resourceText(resource: DecodedLogRecord['resource']): string {
  let text = resourceTexts.get(resource);
  if (text === undefined) {
    text = canonicalAttributes(resource);
    resourceTexts.set(resource, text);
  }
  return text;
}

/** Checks one record against its claimed chain hash, as agent `agentId`. */
export function checkRecord(record: DecodedLogRecord, agentId: string): RecordCheck {
  const position = chainPosition(record.attributes);
  if (position === undefined) return { kind: 'unchained' };
  // Never throws: canonicalValue writes non-finite numbers as their names, so every decoded value has a form.
  const { hash: computedHash, canonical } = chainHashAndText(position.prevHash, {
    agent: agentId,
    seq: position.seq,
    timeUnixNano: record.timeUnixNano,
    observedTimeUnixNano: record.observedTimeUnixNano,
    severityNumber: record.severityNumber,
    body: record.body,
    attributes: record.attributes,
    resource: record.resource,
  }, resourceText(record.resource));
  return { kind: 'chained', position, canonical, hashOk: computedHash === position.hash, computedHash };
}
