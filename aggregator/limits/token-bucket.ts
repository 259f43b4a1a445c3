// A token bucket: `rate` tokens per second, holding at most `capacity`. Pure: the caller passes the clock.

export type TakeResult = { ok: true } | { ok: false; retryAfterSeconds: number };

export class TokenBucket {
  readonly rate: number;
  readonly capacity: number;
  #tokens: number;
  #updatedMs: number;

  constructor(rate: number, capacity: number, nowMs: number) {
    if (!(rate > 0) || !(capacity > 0)) throw new RangeError(`token bucket needs a positive rate and capacity, got ${rate} and ${capacity}`);
    this.rate = rate;
    this.capacity = capacity;
    this.#tokens = capacity;
    this.#updatedMs = nowMs;
  }

  /** Tokens available at `nowMs` (may be negative after a request larger than the bucket). */
  tokensAt(nowMs: number): number {
    this.#refill(nowMs);
    return this.#tokens;
  }

  /** Whether the bucket is full at `nowMs`: an idle key whose state can be forgotten. */
  isFullAt(nowMs: number): boolean {
    return this.tokensAt(nowMs) >= this.capacity;
  }

  /**
   * Takes `n` tokens. A request larger than the whole bucket is let through when the bucket is full
   * and leaves it in debt, so one big batch is slowed down, never refused forever.
   */
  take(n: number, nowMs: number): TakeResult {
    this.#refill(nowMs);
    const needed = Math.min(n, this.capacity);
    if (this.#tokens >= needed) {
      this.#tokens -= n;
      return { ok: true };
    }
    const waitSeconds = (needed - this.#tokens) / this.rate;
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(waitSeconds)) };
  }

  #refill(nowMs: number): void {
    const elapsed = Math.max(0, nowMs - this.#updatedMs) / 1000;
    this.#tokens = Math.min(this.capacity, this.#tokens + elapsed * this.rate);
    this.#updatedMs = Math.max(this.#updatedMs, nowMs);
  }
}
