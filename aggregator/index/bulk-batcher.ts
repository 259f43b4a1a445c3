// Combines the records of concurrent writes (one per receiver request) into shared bulk requests,
// so that many small requests cost few round trips. A batch leaves when it reaches `maxItems`
// documents or `maxBytes` bytes, or when its oldest item has waited `maxDelayMs`, whichever comes
// first, and at most `concurrency` batches are in flight: while every slot is busy, items keep
// queueing and the next batch is fuller (backpressure, not unbounded parallelism).
//
// Each submit() gets its own answer: the outcome of each of its items, in its order, even when its
// items travelled in several batches together with other submissions' items. If a batch carrying
// one of its items fails (Elasticsearch unavailable after the retries), the submission fails as a
// whole and the caller must not acknowledge it; items that did reach Elasticsearch come back as
// duplicates (409 on create) when the sender retries.

/** One bulk action line and its document line, already serialized. */
export interface BatchLine {
  action: string;
  document: string;
}

export type ItemResult =
  | { kind: 'created' }
  /** `index`: the backing index that holds the document already, when Elasticsearch said. */
  | { kind: 'duplicate'; index?: string }
  | { kind: 'rejected'; status: number; error: string };

/**
 * Sends one bulk request of `lines` (retrying what Elasticsearch may accept later) and returns one
 * result per line, in order. Throws when some lines are not stored.
 */
export type SendBatch = (lines: readonly BatchLine[]) => Promise<ItemResult[]>;

export interface BatchLimits {
  /** Most documents in one bulk request. */
  maxItems: number;
  /** Largest bulk request body in bytes; one bigger item travels alone. */
  maxBytes: number;
  /** Longest an item waits for companions before its batch leaves anyway, in ms; 0: no waiting. */
  maxDelayMs: number;
}

export type FlushReason = 'items' | 'bytes' | 'delay' | 'closing';

/** Why the queued items should leave now, or undefined to keep waiting. A pure function. */
export function flushReason(queued: { items: number; bytes: number; oldestAgeMs: number }, limits: BatchLimits, closing = false): FlushReason | undefined {
  if (queued.items === 0) return undefined;
  if (queued.items >= limits.maxItems) return 'items';
  if (queued.bytes >= limits.maxBytes) return 'bytes';
  if (closing) return 'closing';
  if (queued.oldestAgeMs >= limits.maxDelayMs) return 'delay';
  return undefined;
}

/** How many of the queued items (their sizes, in order) the next batch takes: at least one. A pure function. */
export function batchSize(sizes: readonly number[], limits: Pick<BatchLimits, 'maxItems' | 'maxBytes'>): number {
  let bytes = 0;
  let count = 0;
  for (const size of sizes) {
    if (count > 0 && (count >= limits.maxItems || bytes + size > limits.maxBytes)) break;
    bytes += size;
    count++;
  }
  return count;
}

/** Bytes a line pair takes in the NDJSON body. */
export function lineBytes(line: BatchLine): number {
  return Buffer.byteLength(line.action) + Buffer.byteLength(line.document) + 2;
}

interface Submission {
  results: Array<ItemResult | undefined>;
  remaining: number;
  error: unknown;
  failed: boolean;
  resolve: (results: ItemResult[]) => void;
  reject: (error: unknown) => void;
}

interface Queued {
  submission: Submission;
  position: number;
  line: BatchLine;
  bytes: number;
  enqueuedAt: number;
}

export interface BulkBatcherOptions extends BatchLimits {
  /** Most batches in flight at once. */
  concurrency: number;
  send: SendBatch;
  /** Clock in ms. Default: performance.now. */
  now?: () => number;
}

export class BulkBatcher {
  readonly #limits: BatchLimits;
  readonly #concurrency: number;
  readonly #send: SendBatch;
  readonly #now: () => number;
  readonly #queue: Queued[] = [];
  #queuedBytes = 0;
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;
  #closing = false;
  readonly #idleWaiters: Array<() => void> = [];

  constructor(options: BulkBatcherOptions) {
    this.#limits = { maxItems: Math.max(1, options.maxItems), maxBytes: Math.max(1, options.maxBytes), maxDelayMs: Math.max(0, options.maxDelayMs) };
    this.#concurrency = Math.max(1, options.concurrency);
    this.#send = options.send;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Batches in flight now (for tests and metrics). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Items waiting for a batch. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Resolves with one result per line, in order, once every line is stored or refused for good. */
  submit(lines: readonly BatchLine[]): Promise<ItemResult[]> {
    if (lines.length === 0) return Promise.resolve([]);
    return new Promise<ItemResult[]>((resolve, reject) => {
      const submission: Submission = { results: new Array<ItemResult | undefined>(lines.length), remaining: lines.length, error: undefined, failed: false, resolve, reject };
      const at = this.#now();
      for (const [position, line] of lines.entries()) {
        const bytes = lineBytes(line);
        this.#queue.push({ submission, position, line, bytes, enqueuedAt: at });
        this.#queuedBytes += bytes;
      }
      this.#pump();
    });
  }

  /** Sends what is queued without waiting for the delay, and resolves once nothing is queued or in flight. Safe to call twice. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#pump();
    while (this.#queue.length > 0 || this.#inFlight > 0) {
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
  }

  #pump(): void {
    while (this.#inFlight < this.#concurrency) {
      const oldest = this.#queue[0];
      const reason = flushReason(
        { items: this.#queue.length, bytes: this.#queuedBytes, oldestAgeMs: oldest === undefined ? 0 : this.#now() - oldest.enqueuedAt },
        this.#limits,
        this.#closing,
      );
      if (reason === undefined) break;
      const count = batchSize(this.#queue.map((q) => q.bytes), this.#limits);
      const batch = this.#queue.splice(0, count);
      for (const q of batch) this.#queuedBytes -= q.bytes;
      this.#inFlight++;
      void this.#run(batch);
    }
    this.#armTimer();
    if (this.#queue.length === 0 && this.#inFlight === 0) {
      for (const wake of this.#idleWaiters.splice(0)) wake();
    }
  }

  /** A timer for the oldest queued item's deadline, when a slot is free to act on it. */
  #armTimer(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const oldest = this.#queue[0];
    if (oldest === undefined || this.#inFlight >= this.#concurrency) return; // a finishing batch pumps again
    const wait = Math.max(0, this.#limits.maxDelayMs - (this.#now() - oldest.enqueuedAt));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, Math.ceil(wait));
  }

  async #run(batch: Queued[]): Promise<void> {
    try {
      const results = await this.#send(batch.map((q) => q.line));
      for (const [i, q] of batch.entries()) {
        const result = results[i] ?? { kind: 'rejected' as const, status: 0, error: 'no result for this item' };
        settle(q, result, undefined);
      }
    } catch (error) {
      for (const q of batch) settle(q, undefined, error);
    } finally {
      this.#inFlight--;
      this.#pump();
    }
  }
}

function settle(q: Queued, result: ItemResult | undefined, error: unknown): void {
  const s = q.submission;
  if (result === undefined) {
    if (!s.failed) {
      s.failed = true;
      s.error = error;
    }
  } else {
    s.results[q.position] = result;
  }
  s.remaining--;
  if (s.remaining > 0) return;
  if (s.failed) s.reject(s.error);
  else s.resolve(s.results as ItemResult[]);
}
