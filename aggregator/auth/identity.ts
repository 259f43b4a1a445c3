// The credential, not the payload, says which agent sent a record. A record that names another agent
// makes the whole request refused (403): a partial accept would index part of a forged batch. A record
// that names none (a plain OpenTelemetry SDK behind a token) is stamped with the credential's agent.
import { resourceAttr } from '../../core/wire.ts';
import type { DecodedLogRecord } from '../log-record.ts';

export type ClaimCheck = { ok: true } | { ok: false; claimed: string; index: number };

/** Checks every record's `ci_audit.agent.id` against `agentId`, and sets it where it is missing. */
export function enforceAgentIdentity(records: DecodedLogRecord[], agentId: string): ClaimCheck {
  for (const [index, record] of records.entries()) {
    const claimed = record.resource[resourceAttr.agentId];
    if (claimed !== undefined && claimed !== agentId) {
      // A non-string claim is quoted by its type only: it cannot name an agent anyway.
      return { ok: false, claimed: typeof claimed === 'string' ? claimed : `(a ${typeof claimed})`, index };
    }
  }
  // Resources are shared between the records of one ResourceLogs: set the id once per object.
  for (const record of records) {
    if (record.resource[resourceAttr.agentId] === undefined) record.resource[resourceAttr.agentId] = agentId;
  }
  return { ok: true };
}
