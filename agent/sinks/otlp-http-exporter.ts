// Sends batches of log records to the aggregator over OTLP/HTTP: protobuf
// (ExportLogsServiceRequest, otlp-protobuf-encode.ts), gzip, POST <output.url>/v1/logs. One attempt
// per `export`; retrying is the processor's job. The result tells the processor what to do next:
// - success on 2xx (an OTLP partial success is logged as an error; retrying would not help),
// - failure with a CIA_ERR_SHIP_UNAVAILABLE error for network errors, timeouts, 408, 429 and 5xx
//   (retry, not before `details.retryAfterMs` when the aggregator sent Retry-After),
// - failure with a CIA_ERR_SHIP_REJECTED error for other 4xx (do not retry the same batch).
// The URL in messages has its credentials removed; the token never appears anywhere.
import type { ConnectionOptions } from 'node:tls';
import { gzipSync } from 'node:zlib';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { CiAuditError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { redactUrl } from '../../core/secrets.ts';
import { version } from '../../core/version.ts';
import { Agent, request } from './http-client.ts';
import { encodeLogsRequestTransient } from './otlp-protobuf-encode.ts';
import { classifyResponse } from './otlp-response.ts';

/**
 * gzip level of request bodies (`output.compression_level`). Level 1 costs the agent about 3 µs of
 * CPU per auth line against 7 to 8 µs at zlib's default 6, for about 7% more bytes on the wire: on a
 * build runner the CPU is the scarcer of the two.
 */
export const defaultCompressionLevel = 1;

/** Output chunks of the compressor: a batch's body (about 100 KB at level 1) in one or two. */
const gzipChunkBytes = 128 * 1024;

/**
 * The body of a request for `records`: an ExportLogsServiceRequest, gzipped at `level`. Compressed
 * on the agent's own thread, straight from the encoder's reused buffer: handed to zlib's thread
 * pool, every batch needed a copy of its whole request (about 700 KB for 512 auth lines) that lived
 * until the compression ended, and that garbage was most of the agent's array buffers while
 * shipping; the pool's callbacks and output chunks cost more CPU than the compression saved the
 * main thread (2 ms for such a batch at level 1).
 */
export function requestBody(records: readonly ReadableLogRecord[], level: number = defaultCompressionLevel): Buffer {
  return gzipSync(encodeLogsRequestTransient(records), { level, chunkSize: gzipChunkBytes });
}

/** Most bytes of a response body read; the rest is discarded. */
const maxResponseBytes = 64 * 1024;

export interface OtlpHttpExporterOptions {
  /** Base URL of the aggregator's OTLP/HTTP receiver (`output.url`); `/v1/logs` is appended. */
  url: string;
  /** Bearer token (`output.token`), sent as `Authorization: Bearer <token>`. */
  token?: string | undefined;
  /** Timeout of one request, from connecting to the last byte of the response, in ms (`output.timeout_ms`). */
  timeoutMs: number;
  logger: Logger;
  /** TLS options for an https URL (CA, pin check, client certificate): `agentConnectOptions(output.tls)`. */
  tls?: ConnectionOptions | undefined;
  /** gzip level of request bodies, 1 to 9 (`output.compression_level`); default `defaultCompressionLevel`. */
  compressionLevel?: number | undefined;
}

/** The endpoint for a base URL: `<url>/v1/logs`, with exactly one slash in between. */
export function logsEndpoint(base: string): URL {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/logs`;
  return url;
}

export class OtlpHttpLogExporter implements LogRecordExporter {
  readonly endpoint: URL;
  /** The endpoint without credentials, for messages. */
  readonly redactedEndpoint: string;
  #headers: Record<string, string>;
  #timeoutMs: number;
  #compressionLevel: number;
  #logger: Logger;
  #dispatcher: Agent;
  #inFlight = new Set<AbortController>();
  #shutdown: Promise<void> | undefined;

  constructor(options: OtlpHttpExporterOptions) {
    this.endpoint = logsEndpoint(options.url);
    this.redactedEndpoint = redactUrl(this.endpoint);
    this.#timeoutMs = options.timeoutMs;
    this.#compressionLevel = options.compressionLevel ?? defaultCompressionLevel;
    this.#logger = options.logger;
    this.#headers = {
      'content-type': 'application/x-protobuf',
      'content-encoding': 'gzip',
      'user-agent': `ci-audit-agent/${version}`,
    };
    if (options.token !== undefined) this.#headers.authorization = `Bearer ${options.token}`;
    this.#dispatcher = new Agent({ connect: { ...options.tls, timeout: options.timeoutMs } });
  }

  export(logs: ReadableLogRecord[], resultCallback: (result: ExportResult) => void): void {
    void this.send(logs).then(resultCallback);
  }

  /** One attempt to deliver `logs`. Never rejects: failures are results with a coded error. */
  async send(logs: readonly ReadableLogRecord[]): Promise<ExportResult> {
    if (this.#shutdown !== undefined) return this.#unavailable('exporter is shut down');
    if (logs.length === 0) return { code: ExportResultCode.SUCCESS };
    return this.sendEncoded(requestBody(logs, this.#compressionLevel), logs.length);
  }

  /**
   * One attempt to deliver an ExportLogsServiceRequest already encoded and gzipped (`count`
   * records): a batch set aside after a rejection, sent again unchanged. Never rejects.
   */
  async sendEncoded(body: Uint8Array, count: number): Promise<ExportResult> {
    if (this.#shutdown !== undefined) return this.#unavailable('exporter is shut down');
    const controller = new AbortController();
    this.#inFlight.add(controller);
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(this.#timeoutMs)]);
    try {
      const response = await request(this.#dispatcher, this.endpoint, {
        method: 'POST',
        headers: this.#headers,
        body,
        signal,
      });
      const responseBody = await readBounded(response.body, maxResponseBytes);
      const outcome = classifyResponse(response.statusCode, response.headers, responseBody);
      switch (outcome.kind) {
        case 'success':
          if (outcome.rejected > 0) {
            this.#logger.error(
              { code: 'CIA_ERR_SHIP_REJECTED', url: this.redactedEndpoint, rejected: outcome.rejected, sent: count, message: outcome.message },
              'aggregator accepted the batch but rejected some of its records (OTLP partial success)',
            );
          }
          return { code: ExportResultCode.SUCCESS };
        case 'retryable':
          return this.#unavailable(outcome.reason, outcome.status, outcome.retryAfterMs);
        case 'permanent':
          return this.#rejected(outcome.status, outcome.reason, count);
      }
    } catch (err) {
      if (controller.signal.aborted) return this.#unavailable('request aborted: exporter shutting down');
      if (signal.aborted) return this.#unavailable(`no response within ${this.#timeoutMs} ms`);
      return this.#unavailable(networkReason(err));
    } finally {
      this.#inFlight.delete(controller);
    }
  }

  /** Nothing is buffered here: the processor holds the batches. */
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  /** Aborts requests in flight and closes connections. Safe to call twice. */
  shutdown(): Promise<void> {
    this.#shutdown ??= (async () => {
      for (const controller of this.#inFlight) controller.abort();
      await this.#dispatcher.close();
    })();
    return this.#shutdown;
  }

  #unavailable(reason: string, status?: number, retryAfterMs?: number): ExportResult {
    const details: Record<string, unknown> = { url: this.redactedEndpoint };
    if (status !== undefined) details.status = status;
    if (retryAfterMs !== undefined) details.retryAfterMs = retryAfterMs;
    return {
      code: ExportResultCode.FAILED,
      error: new CiAuditError('CIA_ERR_SHIP_UNAVAILABLE', `aggregator at ${this.redactedEndpoint} unavailable: ${reason}`, { details }),
    };
  }

  #rejected(status: number, reason: string, count: number): ExportResult {
    return {
      code: ExportResultCode.FAILED,
      error: new CiAuditError('CIA_ERR_SHIP_REJECTED', `aggregator at ${this.redactedEndpoint} rejected ${count} records: ${reason}`, {
        details: { url: this.redactedEndpoint, status, count },
      }),
    };
  }
}

async function readBounded(body: AsyncIterable<Buffer> & { destroy(): unknown }, limit: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    length += chunk.length;
    if (length >= limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, limit);
}

/** A short reason for a network error: its code (ECONNREFUSED, UND_ERR_SOCKET, ...) and message. */
function networkReason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
  const code = typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : undefined;
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(err);
  return code === undefined || message.includes(code) ? message : `${code}: ${message}`;
}
