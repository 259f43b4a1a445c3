// Turns what the @elastic/elasticsearch client throws into ci-audit errors with a code. Duck-typed
// on `name` and `meta.statusCode` (no instanceof across packages), and the message never carries
// the URL's credentials nor the client's error object (whose `meta` holds the request headers).
import { CiAuditError, hasErrorCode } from '../../core/errors.ts';
import type { ErrorCode } from '../../core/errors.ts';
import { redactUrl } from '../../core/secrets.ts';

interface ClientErrorLike {
  name?: string;
  message?: string;
  meta?: { statusCode?: number; body?: unknown };
}

/** HTTP status of an Elasticsearch response error, or undefined for connection-level failures. */
export function statusOf(err: unknown): number | undefined {
  const status = (err as ClientErrorLike | null)?.meta?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** `type: reason` of an Elasticsearch error body, or the error's message. */
export function reasonOf(err: unknown): string {
  const body = (err as ClientErrorLike | null)?.meta?.body as { error?: { type?: string; reason?: string } | string } | undefined;
  const error = body?.error;
  if (typeof error === 'object' && error !== null) return `${error.type ?? 'error'}: ${error.reason ?? ''}`.trim();
  if (typeof error === 'string') return error;
  return (err as ClientErrorLike | null)?.message ?? String(err);
}

/** Client errors that mean no HTTP response came back (refused, reset, timeout, DNS, no node left). */
const connectionErrorNames = new Set(['ConnectionError', 'TimeoutError', 'NoLivingConnectionsError']);

/** Whether no HTTP response came back at all, as opposed to an error answer or a bug of ours. */
export function isConnectionFailure(err: unknown): boolean {
  const name = (err as ClientErrorLike | null)?.name;
  return typeof name === 'string' && connectionErrorNames.has(name);
}

/** Whether the failure is Elasticsearch being unreachable or overloaded (worth retrying as is). */
export function isUnavailable(err: unknown): boolean {
  if (hasErrorCode(err)) return err.code === 'CIA_ERR_ES_UNAVAILABLE';
  if (isConnectionFailure(err)) return true;
  const status = statusOf(err) ?? 0;
  return status === 408 || status === 429 || status >= 500;
}

/**
 * A CiAuditError for a failed Elasticsearch call: CIA_ERR_ES_UNAVAILABLE when it could not be
 * reached or was overloaded, CIA_ERR_ES_AUTH for 401/403, `otherwise` for anything else.
 */
export function toEsError(err: unknown, what: string, url: string, otherwise: ErrorCode): CiAuditError {
  if (hasErrorCode(err)) return err;
  const status = statusOf(err);
  const where = redactUrl(url);
  let code: ErrorCode = otherwise;
  if (status === 401 || status === 403) code = 'CIA_ERR_ES_AUTH';
  else if (isUnavailable(err)) code = 'CIA_ERR_ES_UNAVAILABLE';
  const reason = redactCredentials(reasonOf(err));
  const statusText = status === undefined || status === 0 ? '' : ` (HTTP ${status})`;
  // No `cause`: the client's error objects carry the request headers (Authorization) in `meta`,
  // and a logged cause would print them.
  return new CiAuditError(code, `${what} failed at ${where}${statusText}: ${reason}`, {
    details: { url: where, status },
  });
}

/** Removes `user:password@` from any URL inside a free-text message. */
export function redactCredentials(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, '$1***@');
}
