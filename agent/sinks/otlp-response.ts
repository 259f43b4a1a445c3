// What an OTLP/HTTP response means for the batch that was sent: a pure function of status, headers
// and body, so that each rule is tested on its own (OTLP/HTTP specification, "Failures" and
// "Retryable Response Codes").
import type { IncomingHttpHeaders } from 'node:http';
import { parseRetryAfter } from '../pipeline/backoff.ts';

/** Longest response message quoted in a log line or error. */
export const maxQuotedMessageLength = 512;

export type ExportOutcome =
  /** Accepted. `rejected` > 0 is an OTLP partial success: those records were refused for good. */
  | { kind: 'success'; rejected: number; message?: string }
  /** Try again later, not before `retryAfterMs` when the server said so. */
  | { kind: 'retryable'; status: number; reason: string; retryAfterMs?: number }
  /** The server will never accept this batch as it is. */
  | { kind: 'permanent'; status: number; reason: string };

export function classifyResponse(status: number, headers: IncomingHttpHeaders, body: Uint8Array, now: number = Date.now()): ExportOutcome {
  const contentType = headerValue(headers['content-type']);
  if (status >= 200 && status < 300) return successOutcome(contentType, body);
  const message = responseMessage(contentType, body);
  const reason = message === '' ? `HTTP ${status}` : `HTTP ${status}: ${message}`;
  // 401/403: a credential problem an operator fixes (enroll again, fix agent.id); the records wait
  // for that instead of being given up as a malformed batch would be.
  if (status === 401 || status === 403) return { kind: 'retryable', status, reason: `${reason} (fix the agent's credential: ci-audit agent enroll)` };
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(headers['retry-after'], now);
    return retryAfterMs === undefined ? { kind: 'retryable', status, reason } : { kind: 'retryable', status, reason, retryAfterMs };
  }
  if (status >= 400) return { kind: 'permanent', status, reason };
  // 1xx/3xx are not part of OTLP/HTTP (redirects are not followed): likely a proxy or a wrong URL
  // that an operator can fix, so wait and retry rather than give the records up.
  return { kind: 'retryable', status, reason: `unexpected ${reason}` };
}

function successOutcome(contentType: string, body: Uint8Array): ExportOutcome {
  if (body.length === 0 || !contentType.includes('protobuf')) return { kind: 'success', rejected: 0 };
  // ExportLogsServiceResponse: field 1 is partial_success { 1: rejected_log_records, 2: error_message }.
  // The batch was accepted (2xx); an unreadable response body does not change that.
  const partial = messageField(protobufFields(body), 1);
  const rejected = partial?.get(1);
  const message = stringField(partial, 2);
  const count = typeof rejected === 'number' ? rejected : 0;
  return message === undefined || message === '' ? { kind: 'success', rejected: count } : { kind: 'success', rejected: count, message: bound(message) };
}

/**
 * The human-readable message of an error response, at most `maxQuotedMessageLength` characters:
 * the `message` of a google.rpc.Status (protobuf, as OTLP prescribes) or of a JSON object, else
 * the body as text.
 */
export function responseMessage(contentType: string, body: Uint8Array): string {
  if (body.length === 0) return '';
  if (contentType.includes('protobuf')) {
    const message = statusMessage(body);
    if (message !== undefined) return bound(message);
  }
  const text = Buffer.from(body.buffer, body.byteOffset, Math.min(body.byteLength, maxQuotedMessageLength * 4)).toString('utf8');
  if (contentType.includes('json')) {
    try {
      const parsed = JSON.parse(text) as unknown;
      const message = (parsed as { message?: unknown } | null)?.message;
      if (typeof message === 'string') return bound(message);
    } catch {
      // Cut off or not JSON after all: quote the text.
    }
  }
  return bound(text);
}

/** Field 2 (`message`) of a google.rpc.Status message; undefined when the bytes are not one. */
function statusMessage(bytes: Uint8Array): string | undefined {
  return stringField(protobufFields(bytes), 2);
}

/** A protobuf field's value as read from the wire: a varint, or the bytes of a length-delimited field. */
type FieldValue = number | Uint8Array;

/**
 * The top-level fields of a protobuf message, the last value of each field number (as protobuf
 * reads a repeated scalar field); undefined when the bytes are not a well-formed message. The
 * responses read here are two small messages, which do not justify a protobuf library at run time.
 */
function protobufFields(bytes: Uint8Array): Map<number, FieldValue> | undefined {
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    for (let shift = 0; shift < 50; shift += 7) {
      if (pos >= bytes.length) throw new RangeError('truncated');
      const b = bytes[pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
    }
    throw new RangeError('varint too long');
  };
  try {
    const fields = new Map<number, FieldValue>();
    while (pos < bytes.length) {
      const tag = varint();
      const field = Math.floor(tag / 8);
      const wireType = tag % 8;
      if (wireType === 0) fields.set(field, varint());
      else if (wireType === 1) pos += 8;
      else if (wireType === 5) pos += 4;
      else if (wireType === 2) {
        const length = varint();
        if (pos + length > bytes.length) return undefined;
        fields.set(field, bytes.subarray(pos, pos + length));
        pos += length;
      } else return undefined;
    }
    return pos === bytes.length ? fields : undefined;
  } catch {
    return undefined;
  }
}

function messageField(fields: Map<number, FieldValue> | undefined, field: number): Map<number, FieldValue> | undefined {
  const value = fields?.get(field);
  return value instanceof Uint8Array ? protobufFields(value) : undefined;
}

function stringField(fields: Map<number, FieldValue> | undefined, field: number): string | undefined {
  const value = fields?.get(field);
  return value instanceof Uint8Array ? Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8') : undefined;
}

function bound(text: string): string {
  // One line, no control characters: the message ends up in our own log.
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return clean.length > maxQuotedMessageLength ? `${clean.slice(0, maxQuotedMessageLength)}…` : clean;
}

function headerValue(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value[0] : value)?.toLowerCase() ?? '';
}
