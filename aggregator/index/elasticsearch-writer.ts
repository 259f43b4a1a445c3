// Writes mapped records into Elasticsearch data streams with one bulk request of `create` actions,
// and tracks whether Elasticsearch is ready (reachable, templates installed).
//
// - Readiness: start() installs the index templates in the background, retrying with exponential
//   backoff (capped at 30 s) while Elasticsearch is unreachable; it never throws, and logs the first
//   failure (URL redacted) at warn and later ones at debug unless their code changes.
// - write(): one bulk request per 8 MiB of documents; items Elasticsearch may accept later (429, 5xx, ...) are retried a few times within the
//   call; if some still fail, write() throws CIA_ERR_ES_UNAVAILABLE and the receiver answers 503, so
//   the agent re-sends. 409 on create is a duplicate: success. Rejected items are returned.
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@elastic/elasticsearch';
import type { BulkResponse } from '@elastic/elasticsearch/lib/api/types';
import type { AggregatorConfig } from '../../config/schema.ts';
import { CiAuditError, hasErrorCode } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { redactUrl } from '../../core/secrets.ts';
import type { MappedRecord } from '../map/ecs.ts';
import { classifyBulkResponse } from './bulk-result.ts';
import type { DocumentWriter, WriteResult, WriterState } from './document-writer.ts';
import { isConnectionFailure, toEsError } from './es-errors.ts';
import { ensureTemplates } from './templates.ts';

export interface ElasticsearchWriterOptions {
  elasticsearch: AggregatorConfig['elasticsearch'];
  logger: Logger;
  /** Attempts per write for items Elasticsearch may accept later. Default: 3. */
  maxAttempts?: number;
  /** Wait before the second attempt, doubled for each further one, in ms. Default: 200. */
  retryDelayMs?: number;
  /** First wait between readiness probes, in ms. Default: 500. */
  probeInitialDelayMs?: number;
  /** Longest wait between readiness probes, in ms. Default: 30 000. */
  probeMaxDelayMs?: number;
  /** Largest bulk request body, in bytes; bigger writes are split. Default: 8 MiB (Elasticsearch takes up to 100 MB). */
  maxBulkBytes?: number;
  /** Most documents in one bulk request. Default: 5000. */
  maxBulkItems?: number;
}

export class ElasticsearchWriter implements DocumentWriter {
  readonly #client: Client;
  readonly #url: string;
  readonly #logger: Logger;
  readonly #maxAttempts: number;
  readonly #retryDelayMs: number;
  readonly #probeInitialDelayMs: number;
  readonly #probeMaxDelayMs: number;
  readonly #maxBulkBytes: number;
  readonly #maxBulkItems: number;
  readonly #abort = new AbortController();
  #state: WriterState = 'starting';
  #probe: Promise<void> | undefined;
  #nextProbeAt = 0;
  #closing: Promise<void> | undefined;

  constructor(options: ElasticsearchWriterOptions) {
    const es = options.elasticsearch;
    this.#logger = options.logger;
    this.#maxAttempts = options.maxAttempts ?? 3;
    this.#retryDelayMs = options.retryDelayMs ?? 200;
    this.#probeInitialDelayMs = options.probeInitialDelayMs ?? 500;
    this.#probeMaxDelayMs = options.probeMaxDelayMs ?? 30_000;
    this.#maxBulkBytes = options.maxBulkBytes ?? 8 * 1024 * 1024;
    this.#maxBulkItems = options.maxBulkItems ?? 5000;
    // Credentials leave the URL: the client gets them as `auth`, so no URL it reports carries them.
    const url = new URL(es.url);
    const urlUser = decodeURIComponent(url.username);
    const urlPassword = decodeURIComponent(url.password);
    url.username = '';
    url.password = '';
    this.#url = url.toString();
    let auth: { apiKey: string } | { username: string; password: string } | undefined;
    if (es.api_key !== undefined) auth = { apiKey: es.api_key };
    else if (es.username !== undefined) auth = { username: es.username, password: es.password ?? '' };
    else if (urlUser !== '') auth = { username: urlUser, password: urlPassword };
    this.#client = new Client({
      node: this.#url,
      ...(auth === undefined ? {} : { auth }),
      requestTimeout: es.request_timeout_ms,
      // Retries are ours (per item, and the readiness loop); the client's would hide failures.
      maxRetries: 0,
    });
  }

  get ready(): boolean {
    return this.#state === 'ready';
  }

  get state(): WriterState {
    return this.#state;
  }

  /** The URL without credentials, for messages. */
  get url(): string {
    return redactUrl(this.#url);
  }

  /** The underlying client, for admin tasks and tests. */
  get client(): Client {
    return this.#client;
  }

  retryAfterSeconds(): number {
    const untilProbe = Math.ceil((this.#nextProbeAt - Date.now()) / 1000);
    return Math.min(Math.max(untilProbe, 1), 30);
  }

  /** Starts the readiness loop in the background. Never throws; safe to call again. */
  start(): void {
    if (this.#state === 'closed' || this.#probe !== undefined) return;
    this.#probe = this.#probeUntilReady().finally(() => {
      this.#probe = undefined;
    });
  }

  /** Resolves once ready (or closed). */
  async whenReady(): Promise<void> {
    while (this.#state !== 'ready' && this.#state !== 'closed') {
      this.start();
      await this.#probe;
    }
  }

  async write(records: readonly MappedRecord[]): Promise<WriteResult> {
    const result: WriteResult = { created: 0, duplicates: 0, rejected: [] };
    if (records.length === 0) return result;
    if (this.#state !== 'ready') {
      throw new CiAuditError('CIA_ERR_ES_UNAVAILABLE', `Elasticsearch at ${this.url} is not ready (${this.#state}); retry later`);
    }
    // Serialized once; the client passes strings through as NDJSON lines.
    const lines = records.map((record) => ({
      action: JSON.stringify({ create: record.id === undefined ? { _index: record.dataStream } : { _index: record.dataStream, _id: record.id } }),
      document: JSON.stringify(record.document),
    }));
    for (const chunk of chunks(lines, this.#maxBulkBytes, this.#maxBulkItems)) {
      await this.#writeChunk(chunk, lines, records.length, result);
    }
    return result;
  }

  /** One bulk request for the items at `positions`, retrying those Elasticsearch may accept later. */
  async #writeChunk(positions: number[], lines: ReadonlyArray<{ action: string; document: string }>, total: number, result: WriteResult): Promise<void> {
    let pending = positions;
    for (let attempt = 1; ; attempt++) {
      const operations: string[] = [];
      for (const i of pending) operations.push(lines[i]!.action, lines[i]!.document);
      let response: BulkResponse;
      try {
        response = await this.#client.bulk({ operations, filter_path: ['errors', 'items.*.status', 'items.*.error'] });
      } catch (err) {
        const error = toEsError(err, 'bulk request', this.#url, 'CIA_ERR_ES_INDEX');
        if (error.code === 'CIA_ERR_ES_AUTH' || (error.code === 'CIA_ERR_ES_UNAVAILABLE' && isConnectionFailure(err))) {
          this.#becameUnavailable(error);
        }
        throw error;
      }
      const outcome = classifyBulkResponse(response, pending.length);
      result.created += outcome.created;
      result.duplicates += outcome.duplicates;
      for (const item of outcome.rejected) result.rejected.push({ ...item, index: pending[item.index]! });
      if (outcome.retry.length === 0) return;
      const first = outcome.retry[0]!;
      if (attempt >= this.#maxAttempts || this.#closed()) {
        throw new CiAuditError(
          'CIA_ERR_ES_UNAVAILABLE',
          `Elasticsearch did not accept ${outcome.retry.length} of ${total} documents after ${attempt} attempts ` +
            `(first: HTTP ${first.status} ${first.error}); retry later`,
          { details: { status: first.status, pending: outcome.retry.length } },
        );
      }
      this.#logger.debug({ attempt, pending: outcome.retry.length, status: first.status, error: first.error }, 'retrying bulk items');
      pending = outcome.retry.map((item) => pending[item.index]!);
      await this.#sleep(this.#retryDelayMs * 2 ** (attempt - 1));
    }
  }

  /** Stops the readiness loop and closes the client. Safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#state = 'closed';
      this.#abort.abort();
      await this.#probe;
      await this.#client.close();
    })();
    return this.#closing;
  }

  #becameUnavailable(error: CiAuditError): void {
    if (this.#state !== 'ready') return;
    this.#state = 'unavailable';
    this.#logger.warn({ url: this.url, code: error.code, error: error.message }, 'elasticsearch became unavailable; answering 503 until it is back');
    this.start();
  }

  async #probeUntilReady(): Promise<void> {
    let delay = this.#probeInitialDelayMs;
    let loggedCode: string | undefined;
    while (!this.#closed()) {
      try {
        const results = await ensureTemplates(this.#client, this.#url);
        if (this.#closed()) return;
        for (const r of results) {
          const level = r.action === 'unchanged' ? 'debug' : 'info';
          this.#logger[level]({ template: r.name, action: r.action, version: r.version }, 'index template');
        }
        this.#state = 'ready';
        this.#nextProbeAt = 0;
        this.#logger.info({ url: this.url }, 'elasticsearch ready');
        return;
      } catch (err) {
        if (this.#closed()) return;
        const error = hasErrorCode(err) ? err : toEsError(err, 'readiness check', this.#url, 'CIA_ERR_ES_SETUP');
        if (this.#state === 'starting') this.#state = 'unavailable';
        const fields = { url: this.url, code: error.code, error: error.message, retry_in_ms: delay };
        if (loggedCode === undefined) {
          this.#logger.warn(fields, 'elasticsearch not ready; retrying in the background, answering 503 meanwhile');
        } else if (loggedCode !== error.code) {
          this.#logger.error(fields, 'elasticsearch still not ready');
        } else {
          this.#logger.debug(fields, 'elasticsearch still not ready');
        }
        loggedCode = error.code;
        this.#nextProbeAt = Date.now() + delay;
        await this.#sleep(delay);
        delay = Math.min(delay * 2, this.#probeMaxDelayMs);
      }
    }
  }

  /** A method, not a field read: TypeScript would keep the narrowing from before an await. */
  #closed(): boolean {
    return this.#state === 'closed';
  }

  /** Waits, or returns early when the writer is closed. */
  async #sleep(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.#abort.signal });
    } catch {
      // aborted by close()
    }
  }
}

/** Positions of `lines`, grouped into bulk requests of at most `maxBytes` (one oversized item goes alone) and `maxItems`. */
export function chunks(lines: ReadonlyArray<{ action: string; document: string }>, maxBytes: number, maxItems: number): number[][] {
  const out: number[][] = [];
  let current: number[] = [];
  let bytes = 0;
  for (const [i, line] of lines.entries()) {
    const size = Buffer.byteLength(line.action) + Buffer.byteLength(line.document) + 2;
    if (current.length > 0 && (bytes + size > maxBytes || current.length >= maxItems)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(i);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}
