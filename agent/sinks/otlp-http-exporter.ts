// Sends batches of log records to the aggregator over OTLP/HTTP: protobuf
// (ExportLogsServiceRequest, otlp-protobuf-encode.ts), gzip, zstd or uncompressed
// (`output.compression`), POST <output.url>/v1/logs. One attempt
// per `export`; retrying is the processor's job. The result tells the processor what to do next:
// - success on 2xx (an OTLP partial success is logged as an error; retrying would not help),
// - failure with a CIA_ERR_SHIP_UNAVAILABLE error for network errors, timeouts, 408, 429 and 5xx
//   (retry, not before `details.retryAfterMs` when the aggregator sent Retry-After),
// - failure with a CIA_ERR_SHIP_REJECTED error for other 4xx (do not retry the same batch).
// The URL in messages has its credentials removed; the token never appears anywhere.
import type { ConnectionOptions } from 'node:tls';
import { constants, gzipSync, zstdCompressSync } from 'node:zlib';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { CiAuditError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { redactUrl } from '../../core/secrets.ts';
import { version } from '../../core/version.ts';
import { defaultCompressionCodec, defaultCompressionLevel, type CompressionCodec } from './compression.ts';
import { Agent, request } from './http-client.ts';
import { encodeLogsRequest, encodeLogsRequestTransient } from './otlp-protobuf-encode.ts';
import { classifyResponse } from './otlp-response.ts';

/** A codec and its level (ignored for `none`). */
export interface BodyCompression {
  codec: CompressionCodec;
  level: number;
}

/**
 * How a batch the aggregator rejected is set aside (a `.otlp.pb.gz` file) and sent again: gzip,
 * whatever `output.compression` is, so that `ci-audit agent rejected resend` can label it.
 */
export const setAsideCompression: BodyCompression = { codec: 'gzip', level: defaultCompressionLevel };

/** Output chunks of the compressor: a batch's body (about 47 KB gzipped, 34 KB with zstd, for 512 auth lines) in one. */
const outputChunkBytes = 128 * 1024;

/**
 * The body of a request for `records`: an ExportLogsServiceRequest, compressed as `compression`
 * says. Compressed on the agent's own thread, straight from the encoder's reused buffer: handed to
 * zlib's thread pool, every batch needed a copy of its whole request (about 700 KB for 512 auth
 * lines) that lived until the compression ended, and that garbage was most of the agent's array
 * buffers while shipping; the pool's callbacks and output chunks cost more CPU than the compression
 * saved the main thread (2 ms for such a batch at level 1). Uncompressed, the request needs a
 * buffer of its own: it is still being sent while the next batch is encoded.
 */
export function requestBody(records: readonly ReadableLogRecord[], compression: BodyCompression = setAsideCompression): Buffer {
  switch (compression.codec) {
    case 'gzip':
      return gzipSync(encodeLogsRequestTransient(records), { level: compression.level, chunkSize: outputChunkBytes });
    case 'zstd':
      // Given the whole input in one call, zstd writes its size into the frame header, which the
      // aggregator sizes its output buffer by.
      return zstdCompressSync(encodeLogsRequestTransient(records), {
        chunkSize: outputChunkBytes,
        params: { [constants.ZSTD_c_compressionLevel]: compression.level },
      });
    case 'none':
      return encodeLogsRequest(records);
  }
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
  /** Codec of request bodies (`output.compression`); default gzip. */
  compression?: CompressionCodec | undefined;
  /** Its level (`output.compression_level`: gzip 1 to 9, zstd 1 to 19); default `defaultCompressionLevel`. */
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
  /** Headers of requests whose bodies this exporter compressed. */
  #headers: Record<string, string>;
  /** Headers of a set-aside batch sent again: gzip, whatever `compression` is. */
  #gzipHeaders: Record<string, string>;
  #timeoutMs: number;
  #compression: BodyCompression;
  #logger: Logger;
  #dispatcher: Agent;
  #inFlight = new Set<AbortController>();
  #shutdown: Promise<void> | undefined;

  constructor(options: OtlpHttpExporterOptions) {
    this.endpoint = logsEndpoint(options.url);
    this.redactedEndpoint = redactUrl(this.endpoint);
    this.#timeoutMs = options.timeoutMs;
    this.#compression = { codec: options.compression ?? defaultCompressionCodec, level: options.compressionLevel ?? defaultCompressionLevel };
    this.#logger = options.logger;
    const common: Record<string, string> = { 'content-type': 'application/x-protobuf', 'user-agent': `ci-audit-agent/${version}` };
    if (options.token !== undefined) common.authorization = `Bearer ${options.token}`;
    this.#gzipHeaders = { ...common, 'content-encoding': 'gzip' };
    this.#headers = this.#compression.codec === 'none' ? common : { ...common, 'content-encoding': this.#compression.codec };
    this.#dispatcher = new Agent({ connect: { ...options.tls, timeout: options.timeoutMs } });
  }

  export(logs: ReadableLogRecord[], resultCallback: (result: ExportResult) => void): void {
    void this.send(logs).then(resultCallback);
  }

  /** One attempt to deliver `logs`. Never rejects: failures are results with a coded error. */
  async send(logs: readonly ReadableLogRecord[]): Promise<ExportResult> {
    if (this.#shutdown !== undefined) return this.#unavailable('exporter is shut down');
    if (logs.length === 0) return { code: ExportResultCode.SUCCESS };
    return this.#post(requestBody(logs, this.#compression), this.#headers, logs.length);
  }

  /**
   * One attempt to deliver an ExportLogsServiceRequest already encoded and gzipped (`count`
   * records): a batch set aside after a rejection (`setAsideCompression`), sent
   * again unchanged. Never rejects.
   */
  async sendEncoded(body: Uint8Array, count: number): Promise<ExportResult> {
    if (this.#shutdown !== undefined) return this.#unavailable('exporter is shut down');
    return this.#post(body, this.#gzipHeaders, count);
  }

  async #post(body: Uint8Array, headers: Record<string, string>, count: number): Promise<ExportResult> {
    const controller = new AbortController();
    this.#inFlight.add(controller);
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(this.#timeoutMs)]);
    try {
      const response = await request(this.#dispatcher, this.endpoint, {
        method: 'POST',
        headers,
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
