// Per-sender rate limits: requests/s and records/s, one pair of token buckets per key (the
// authenticated agent id, or the remote address when auth is off). Keys whose buckets are full again
// are forgotten, and the number of keys is capped, so that many senders cannot grow memory without end.
import { TokenBucket } from './token-bucket.ts';

export interface RateLimits {
  /** Requests per second per sender; 0 turns the request limit off. */
  requestsPerSecond: number;
  /** Log records per second per sender; 0 turns the record limit off. */
  recordsPerSecond: number;
  /** Bucket size in seconds of rate: how long a sender may burst above the rate. */
  burstSeconds: number;
}

export type RateDecision = { ok: true } | { ok: false; limit: 'requests' | 'records'; retryAfterSeconds: number; message: string };

interface Buckets {
  requests?: TokenBucket;
  records?: TokenBucket;
}

/** Senders tracked at once; beyond it, senders with full buckets are dropped first, then the oldest. */
const maxKeys = 10_000;

export class AgentRateLimiter {
  readonly #limits: RateLimits;
  readonly #now: () => number;
  readonly #keys = new Map<string, Buckets>();

  constructor(limits: RateLimits, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
  }

  get trackedKeys(): number {
    return this.#keys.size;
  }

  /** One request from `key`, before its body is read. */
  takeRequest(key: string): RateDecision {
    const rate = this.#limits.requestsPerSecond;
    if (rate <= 0) return { ok: true };
    const now = this.#now();
    const buckets = this.#bucketsOf(key, now);
    buckets.requests ??= new TokenBucket(rate, rate * this.#limits.burstSeconds, now);
    const taken = buckets.requests.take(1, now);
    if (taken.ok) return taken;
    return { ok: false, limit: 'requests', retryAfterSeconds: taken.retryAfterSeconds, message: `sender ${key} exceeds limits.rate.requests_per_second (${rate}); retry after ${taken.retryAfterSeconds} s` };
  }

  /** `count` records from `key`, once the body is decoded. */
  takeRecords(key: string, count: number): RateDecision {
    const rate = this.#limits.recordsPerSecond;
    if (rate <= 0 || count === 0) return { ok: true };
    const now = this.#now();
    const buckets = this.#bucketsOf(key, now);
    buckets.records ??= new TokenBucket(rate, rate * this.#limits.burstSeconds, now);
    const taken = buckets.records.take(count, now);
    if (taken.ok) return taken;
    return { ok: false, limit: 'records', retryAfterSeconds: taken.retryAfterSeconds, message: `sender ${key} exceeds limits.rate.records_per_second (${rate}); retry after ${taken.retryAfterSeconds} s` };
  }

  #bucketsOf(key: string, now: number): Buckets {
    const known = this.#keys.get(key);
    if (known !== undefined) return known;
    if (this.#keys.size >= maxKeys) this.#evict(now);
    const fresh: Buckets = {};
    this.#keys.set(key, fresh);
    return fresh;
  }

  #evict(now: number): void {
    for (const [key, b] of this.#keys) {
      if ((b.requests?.isFullAt(now) ?? true) && (b.records?.isFullAt(now) ?? true)) this.#keys.delete(key);
    }
    // Everyone is active: forget the oldest key (a Map iterates in insertion order).
    if (this.#keys.size >= maxKeys) {
      const oldest = this.#keys.keys().next().value;
      if (oldest !== undefined) this.#keys.delete(oldest);
    }
  }
}
