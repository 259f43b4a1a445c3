// The contract between an exporter and the AuditBatchProcessor about failed exports. An exporter
// reports a failure as `{ code: FAILED, error }`; the error's `code` decides what happens:
// - CIA_ERR_SHIP_REJECTED: permanent, the same batch would fail again; it is not retried but set
//   aside (set-aside.ts), with `error.details.status` the HTTP status.
// - anything else (CIA_ERR_SHIP_UNAVAILABLE, or an uncoded error): transient, retried with backoff,
//   not before `error.details.retryAfterMs` when set (the aggregator's Retry-After).
import { hasErrorCode } from '../../core/errors.ts';

export function isPermanentExportFailure(error: unknown): boolean {
  return hasErrorCode(error, 'CIA_ERR_SHIP_REJECTED');
}

/** The wait the receiver asked for before the next attempt, in ms, if it asked. */
export function retryAfterOf(error: unknown): number | undefined {
  const value = (error as { details?: { retryAfterMs?: unknown } } | undefined)?.details?.retryAfterMs;
  return typeof value === 'number' && value >= 0 ? value : undefined;
}
