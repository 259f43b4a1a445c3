// Writes mapped records into Elasticsearch data streams with one bulk request of `create` actions,
// and tracks whether Elasticsearch is ready (reachable, templates installed).
//
// - Readiness: start() installs the index templates in the background, retrying with exponential
//   backoff (capped at 30 s) while Elasticsearch is unreachable; it never throws, and logs the first
//   failure (URL redacted) at warn and later ones at debug unless their code changes.
// - write(): the records of concurrent writes share bulk requests (bulk-batcher.ts), bounded by count,
//   bytes and time (`maxBulkDelayMs`), at most `maxConcurrentBulks` in flight across all callers;
//   each write still gets the exact outcome of each of its records. Items Elasticsearch may accept later (429, 5xx,
//   ...) are retried with exponential backoff within the call; if some still fail, write() throws
//   CIA_ERR_ES_UNAVAILABLE and the receiver answers 503 (or the spool takes them), so nothing is
//   acknowledged that is not stored. 409 on create is a duplicate: success (for a chained record,
//   once the stored document proved to hold its hash; else a chain_fork event). Items refused for good
//   (mapping, parsing) go to the dead-letter data stream `logs-ci_audit.deadletter-<namespace>` with
//   the original document and the error; only if that also fails are they returned as rejected.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@elastic/elasticsearch';
import { createClient } from './client.ts';
import type { BulkResponse } from '@elastic/elasticsearch/lib/api/types';
import type { AggregatorConfig } from '../../config/schema.ts';
import { CiAuditError, hasErrorCode } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { redactUrl } from '../../core/secrets.ts';
import type { MappedRecord } from '../map/ecs.ts';
import { classifyItem } from './bulk-result.ts';
import type { DocumentWriter, WriteResult, WriterState } from './document-writer.ts';
import { isConnectionFailure, statusOf, toEsError } from './es-errors.ts';
import type { ChainConflict } from '../verify/stage.ts';
import { ensureTemplates } from './setup.ts';
import { buildTemplatePlan, deadLetterDataset } from './templates.ts';
import type { TemplatePlan } from './templates.ts';
import { dataStreamName } from '../../core/wire.ts';
import type { FailedItem } from './bulk-result.ts';
import { BulkBatcher } from './bulk-batcher.ts';
import type { BatchLine, ItemResult } from './bulk-batcher.ts';
import { bulkLine, createAction } from './bulk-line.ts';

export interface ElasticsearchWriterOptions {
  /** Where and as whom; the bulk limits are the options below (run.ts passes `elasticsearch.bulk`). */
  elasticsearch: Pick<AggregatorConfig['elasticsearch'], 'url' | 'username' | 'password' | 'api_key' | 'namespace' | 'request_timeout_ms'>;
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
  /** Most bulk requests in flight at once, over all write() calls. Default: 2. */
  maxConcurrentBulks?: number;
  /** Longest a record waits for records of other writes to share its bulk request, in ms. Default: 20. */
  maxBulkDelayMs?: number;
  /** Install the templates when starting (true), or only check that Elasticsearch answers (false: `ci-audit setup` ran, least privilege). Default: true. */
  installTemplates?: boolean;
  /** The templates to install. Default: buildTemplatePlan(). */
  templatePlan?: TemplatePlan;
  /** Clock for dead letters' `@timestamp`. */
  now?: () => Date;
  /**
   * Called with the chained records Elasticsearch already held under another hash (forks), before
   * write() resolves; write() fails when it throws. Absent: 409s are not compared.
   */
  onChainConflicts?: ((conflicts: ChainConflict[]) => Promise<void>) | undefined;
}

export class ElasticsearchWriter implements DocumentWriter {
  readonly #client: Client;
  readonly #url: string;
  readonly #logger: Logger;
  readonly #maxAttempts: number;
  readonly #retryDelayMs: number;
  readonly #probeInitialDelayMs: number;
  readonly #probeMaxDelayMs: number;
  readonly #batcher: BulkBatcher;
  readonly #installTemplates: boolean;
  readonly #templatePlan: TemplatePlan;
  readonly #deadLetterStream: string;
  readonly #now: () => Date;
  readonly #abort = new AbortController();
  readonly #onChainConflicts: ((conflicts: ChainConflict[]) => Promise<void>) | undefined;
  #warnedUnreadable = false;
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
    this.#batcher = new BulkBatcher({
      maxItems: options.maxBulkItems ?? 5000,
      maxBytes: options.maxBulkBytes ?? 8 * 1024 * 1024,
      maxDelayMs: options.maxBulkDelayMs ?? 20,
      concurrency: options.maxConcurrentBulks ?? 2,
      send: (lines) => this.#sendBulk(lines),
    });
    this.#installTemplates = options.installTemplates ?? true;
    this.#templatePlan = options.templatePlan ?? buildTemplatePlan();
    this.#deadLetterStream = dataStreamName(deadLetterDataset, es.namespace);
    this.#now = options.now ?? (() => new Date());
    this.#onChainConflicts = options.onChainConflicts;
    const { client, url } = createClient(es);
    this.#client = client;
    this.#url = url;
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
    const result: WriteResult = { created: 0, duplicates: 0, rejected: [], deadLettered: [] };
    if (records.length === 0) return result;
    if (this.#state !== 'ready') {
      throw new CiAuditError('CIA_ERR_ES_UNAVAILABLE', `Elasticsearch at ${this.url} is not ready (${this.#state}); retry later`);
    }
    const lines = records.map(bulkLine);
    const outcomes = await this.#batcher.submit(lines);
    const chained: Array<{ record: MappedRecord; index: string | undefined }> = [];
    for (const [index, outcome] of outcomes.entries()) {
      if (outcome.kind === 'created') result.created++;
      else if (outcome.kind === 'duplicate') {
        result.duplicates++;
        const record = records[index]!;
        if (this.#onChainConflicts !== undefined && record.id !== undefined && chainOf(record) !== undefined) chained.push({ record, index: outcome.index });
      } else result.rejected.push({ index, status: outcome.status, error: outcome.error });
    }
    if (chained.length > 0) await this.#compareChained(chained);
    if (result.rejected.length > 0) await this.#deadLetter(records, result);
    return result;
  }

  /**
   * A 409 on a chained record's `<agent>:seq:<n>` is a re-send when Elasticsearch holds the same
   * hash there, and a conflict otherwise: the stored document is read back (real-time get) and
   * handed to `onChainConflicts` before write() resolves when it holds another hash (a fork), no
   * chain hash (another document took the `_id`) or nothing. Only a re-send is a quiet duplicate.
   * Without `read` (403) the comparison is skipped with one warning; unavailability, or a document
   * that cannot be read back for another reason, fails the write like the bulk would.
   */
  async #compareChained(chained: ReadonlyArray<{ record: MappedRecord; index: string | undefined }>): Promise<void> {
    const docs = chained.map(({ record, index }) => ({ _index: index ?? record.dataStream, _id: record.id! }));
    let response;
    try {
      response = await this.#client.mget<{ ci_audit?: { chain?: { hash?: unknown } } }>({ docs, _source_includes: ['ci_audit.chain.hash'] });
    } catch (err) {
      if (statusOf(err) === 403) {
        this.#warnUnreadable();
        return;
      }
      throw toEsError(err, 'reading back chained records after a conflict', this.#url, 'CIA_ERR_ES_UNAVAILABLE');
    }
    const conflicts: ChainConflict[] = [];
    for (const [i, doc] of response.docs.entries()) {
      const { record } = chained[i]!;
      const chain = chainOf(record)!;
      if ('error' in doc) {
        // One document not readable: per item, Elasticsearch answers a missing privilege this way.
        if (doc.error.type === 'security_exception') {
          this.#warnUnreadable();
          continue;
        }
        throw new CiAuditError('CIA_ERR_ES_UNAVAILABLE', `Elasticsearch at ${this.url} refused chained record ${record.id!} as already held (409) but could not read it back (${doc.error.type}: ${doc.error.reason ?? ''}); retry later`);
      }
      const found = doc.found;
      const storedHash = found ? doc._source?.ci_audit?.chain?.hash : undefined;
      if (storedHash === chain.hash) continue;
      const conflict: ChainConflict = { agentId: chain.agentId, seq: chain.seq, docId: record.id!, receivedHash: chain.hash, receivedRecord: chain.record };
      // Another hash is a fork; no hash at all, a document that never chained (or none) holds the `_id`.
      if (typeof storedHash === 'string') conflict.storedHash = storedHash;
      else conflict.stored = found ? 'not_chained' : 'not_found';
      conflicts.push(conflict);
    }
    if (conflicts.length > 0) await this.#onChainConflicts!(conflicts);
  }

  #warnUnreadable(): void {
    if (!this.#warnedUnreadable) this.#logger.warn({ url: this.url }, 'the Elasticsearch key may not read logs-ci_audit.*: a re-sent chained record is not compared with the stored one, so forks go unreported (grant read, docs/storage.md)');
    this.#warnedUnreadable = true;
  }

  /**
   * Moves refused items into the dead-letter stream: the original document as JSON, where it came
   * from and why it was refused. A dead letter's `_id` is the record's, so a re-sent record is a
   * duplicate there too. Throws like write() when Elasticsearch does not take them.
   */
  async #deadLetter(records: readonly MappedRecord[], result: WriteResult): Promise<void> {
    const refused = result.rejected;
    const at = this.#now().toISOString();
    const lines = refused.map((item) => {
      const record = records[item.index]!;
      const document = deadLetterDocument(record, item, at, this.#deadLetterStream);
      return {
        action: createAction(this.#deadLetterStream, record.id),
        document: JSON.stringify(document),
      };
    });
    // Dead letters share bulk requests (and the concurrency limit) with everything else.
    const outcomes = await this.#batcher.submit(lines);
    result.rejected = [];
    for (const [i, item] of refused.entries()) {
      const why = outcomes[i]!;
      if (why.kind === 'rejected') {
        result.rejected.push({ ...item, error: `${item.error}; the dead letter was refused too: HTTP ${why.status} ${why.error}` });
      } else {
        result.deadLettered.push(item);
      }
    }
  }

  /** One bulk request of `lines`, retrying the items Elasticsearch may accept later; one result per line. */
  async #sendBulk(lines: readonly BatchLine[]): Promise<ItemResult[]> {
    const results: ItemResult[] = new Array<ItemResult>(lines.length);
    let pending = lines.map((_, i) => i);
    for (let attempt = 1; ; attempt++) {
      let response: BulkResponse;
      try {
        response = await this.#client.transport.request<BulkResponse>({ method: 'POST', path: '/_bulk', querystring: bulkQuery, bulkBody: bulkBody(lines, pending) });
      } catch (err) {
        const error = toEsError(err, 'bulk request', this.#url, 'CIA_ERR_ES_INDEX');
        if (error.code === 'CIA_ERR_ES_AUTH' || (error.code === 'CIA_ERR_ES_UNAVAILABLE' && isConnectionFailure(err))) {
          this.#becameUnavailable(error);
        }
        throw error;
      }
      const retry: Array<{ line: number; status: number; error: string }> = [];
      for (const [k, line] of pending.entries()) {
        // Each item is `{ <action>: {...} }`; we only send `create`, but read whichever action it is.
        const wrapper = response.items?.[k];
        const item = wrapper === undefined ? undefined : Object.values(wrapper)[0];
        const outcome = classifyItem(item);
        if (outcome.kind === 'retry') retry.push({ line, status: outcome.status, error: outcome.error });
        else if (outcome.kind === 'duplicate' && typeof item?._index === 'string') results[line] = { kind: 'duplicate', index: item._index };
        else results[line] = outcome;
      }
      if (retry.length === 0) return results;
      const first = retry[0]!;
      if (attempt >= this.#maxAttempts || this.#closed()) {
        throw new CiAuditError(
          'CIA_ERR_ES_UNAVAILABLE',
          `Elasticsearch did not accept ${retry.length} of ${lines.length} documents after ${attempt} attempts ` +
            `(first: HTTP ${first.status} ${first.error}); retry later`,
          { details: { status: first.status, pending: retry.length } },
        );
      }
      this.#logger.debug({ attempt, pending: retry.length, status: first.status, error: first.error }, 'retrying bulk items');
      pending = retry.map((item) => item.line);
      await this.#sleep(this.#retryDelayMs * 2 ** (attempt - 1));
    }
  }

  /** Stops the readiness loop and closes the client. Safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#state = 'closed';
      this.#abort.abort();
      await this.#probe;
      // Whatever is queued is sent once (no more retries: the writer is closed).
      await this.#batcher.close();
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
        const results = this.#installTemplates ? await ensureTemplates(this.#client, this.#url, this.#templatePlan, { keepSameVersion: true }) : await this.#checkReachable();
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

  /**
   * Readiness without installing templates (a create-only key may not read them): any answer of
   * `_security/_authenticate` but 401 means Elasticsearch is up and knows us.
   */
  async #checkReachable(): Promise<[]> {
    try {
      await this.#client.security.authenticate();
    } catch (err) {
      const error = toEsError(err, 'authenticating', this.#url, 'CIA_ERR_ES_SETUP');
      if (error.code === 'CIA_ERR_ES_AUTH' || error.code === 'CIA_ERR_ES_UNAVAILABLE') throw error;
      // Security disabled on the cluster: the call fails, but Elasticsearch answered.
    }
    return [];
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

/** What a bulk answer needs to say: whether anything failed, and each item's status, error and index. */
const bulkQuery = { filter_path: 'errors,items.*.status,items.*.error,items.*._index' };

/**
 * The NDJSON body of the lines at `positions`, as bytes. Handed to the client as a string array, the
 * body was joined, measured and then encoded to UTF-8 again on the socket; joined here and then
 * encoded, it was still copied twice. Each line is now encoded straight into a buffer sized for
 * ASCII, its usual content (one byte per UTF-16 unit); a line with other characters grows it.
 */
export function bulkBody(lines: readonly BatchLine[], positions: readonly number[]): Buffer {
  let units = 0;
  for (const i of positions) units += lines[i]!.action.length + lines[i]!.document.length + 2;
  const body = { bytes: Buffer.allocUnsafe(units), at: 0, unitsLeft: units };
  for (const i of positions) {
    const line = lines[i]!;
    writeLine(body, line.action);
    writeLine(body, line.document);
  }
  return body.bytes.subarray(0, body.at);
}

/** `text` and a newline at `body.at`, growing the buffer when what is left might not hold them. */
function writeLine(body: { bytes: Buffer; at: number; unitsLeft: number }, text: string): void {
  const room = body.bytes.length - body.at;
  // UTF-8 takes at most 3 bytes per UTF-16 unit: with that much room the text surely fits, and
  // only the last lines of a body need measuring.
  if (room < 3 * text.length + 1) {
    const needed = Buffer.byteLength(text) + 1;
    const rest = body.unitsLeft - text.length - 1;
    if (needed + rest > room) {
      const grown = Buffer.allocUnsafe(body.at + needed + 3 * rest);
      body.bytes.copy(grown, 0, 0, body.at);
      body.bytes = grown;
    }
  }
  body.at += body.bytes.write(text, body.at, 'utf8');
  body.bytes[body.at++] = 0x0a; // \n
  body.unitsLeft -= text.length + 1;
}

/** The dead letter of a refused record: where it was going, the error, and the document as it was. */
export function deadLetterDocument(record: MappedRecord, item: FailedItem, at: string, deadLetterStream: string): Record<string, unknown> {
  const namespace = deadLetterStream.slice(deadLetterStream.lastIndexOf('-') + 1);
  const type = /^([a-z_]+):/.exec(item.error)?.[1] ?? 'error';
  return {
    '@timestamp': at,
    message: `Elasticsearch refused a record for ${record.dataStream}: HTTP ${item.status} ${item.error}`,
    event: { kind: 'pipeline_error', dataset: `ci_audit.${deadLetterDataset}`, ...(record.id === undefined ? {} : { id: record.id }) },
    data_stream: { type: 'logs', dataset: `ci_audit.${deadLetterDataset}`, namespace },
    ci_audit: {
      deadletter: {
        data_stream: record.dataStream,
        ...(record.id === undefined ? {} : { id: record.id }),
        document: JSON.stringify(record.document),
        error: { status: item.status, type, reason: item.error },
      },
    },
  };
}

/** The chain position a mapped document carries (ci_audit.chain, agent.id), when it has one. */
function chainOf(record: MappedRecord): { agentId: string; seq: number; hash: string; record: string | undefined } | undefined {
  const document = record.document as { agent?: { id?: unknown }; ci_audit?: { chain?: { seq?: unknown; hash?: unknown; record?: unknown } } };
  const chain = document.ci_audit?.chain;
  const agentId = document.agent?.id;
  if (typeof agentId !== 'string' || typeof chain?.seq !== 'number' || typeof chain.hash !== 'string') return undefined;
  return { agentId, seq: chain.seq, hash: chain.hash, record: typeof chain.record === 'string' ? chain.record : undefined };
}
