// The bound on work in the aggregator: requests being received or waiting for Elasticsearch, and the
// decoded records and bytes they hold. Beyond it the receiver answers 429 with Retry-After instead of
// queueing, so memory stays bounded however fast senders push.

export interface InFlightLimits {
  maxRequests: number;
  maxRecords: number;
  /** Decoded (decompressed) body bytes held by requests in flight. */
  maxBytes: number;
}

export type Admission = { ok: true; release: () => void } | { ok: false; message: string };

export class InFlightGate {
  readonly #limits: InFlightLimits;
  #requests = 0;
  #records = 0;
  #bytes = 0;

  constructor(limits: InFlightLimits) {
    this.#limits = limits;
  }

  get usage(): { requests: number; records: number; bytes: number } {
    return { requests: this.#requests, records: this.#records, bytes: this.#bytes };
  }

  /** A request arrives (before its body is read). */
  admitRequest(): Admission {
    if (this.#requests >= this.#limits.maxRequests) {
      return { ok: false, message: `aggregator busy: ${this.#requests} requests in flight (limits.max_in_flight_requests ${this.#limits.maxRequests}); retry later` };
    }
    this.#requests++;
    return { ok: true, release: once(() => this.#requests--) };
  }

  /**
   * A decoded body's records and bytes. A single request larger than the whole bound is admitted when
   * nothing else is in flight, so that it is slowed, never refused for good. Its records never exceed
   * `maxRecords` here (the receiver refuses such a request with 413 while decoding it, since it could
   * never be admitted alongside others); its bytes may, when max_in_flight_bytes is set below
   * max_decompressed_bytes, which caps them.
   */
  admitRecords(records: number, bytes: number): Admission {
    const idle = this.#records === 0 && this.#bytes === 0;
    if (!idle && this.#records + records > this.#limits.maxRecords) {
      return { ok: false, message: `aggregator busy: ${this.#records} records waiting for Elasticsearch (limits.max_in_flight_records ${this.#limits.maxRecords}); retry later` };
    }
    if (!idle && this.#bytes + bytes > this.#limits.maxBytes) {
      return { ok: false, message: `aggregator busy: ${this.#bytes} bytes of requests in flight (limits.max_in_flight_bytes ${this.#limits.maxBytes}); retry later` };
    }
    this.#records += records;
    this.#bytes += bytes;
    return {
      ok: true,
      release: once(() => {
        this.#records -= records;
        this.#bytes -= bytes;
      }),
    };
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
