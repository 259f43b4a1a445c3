// Retry timing, as pure functions: exponential backoff with full jitter, and Retry-After parsing.

export interface BackoffOptions {
  /** Upper bound of the first delay, in ms. Default: 250. */
  initialMs?: number;
  /** Largest delay, in ms. Default: 30000. */
  maxMs?: number;
}

/**
 * Delay before retry number `attempt` (0 for the first retry): a uniformly random value in
 * [0, min(maxMs, initialMs * 2^attempt)) ("full jitter"), so that many agents coming back after an
 * aggregator outage spread out instead of arriving together.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = options.initialMs ?? 250;
  const max = options.maxMs ?? 30_000;
  const ceiling = Math.min(max, initial * 2 ** Math.min(attempt, 32));
  return Math.floor(random() * ceiling);
}

/**
 * Milliseconds to wait per an HTTP `Retry-After` value: delta-seconds or an HTTP date. Undefined
 * when absent or unparseable; 0 for a date in the past.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const raw = (Array.isArray(value) ? value[0] : value)?.trim();
  if (raw === undefined || raw === '') return undefined;
  if (/^\d+$/.test(raw)) return Number(raw) * 1000;
  const date = Date.parse(raw);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * Delay before retry number `attempt` after an answer that said `retryAfterMs` (undefined: it said
 * nothing): the server's wait, up to `maxRetryAfterMs`, or else the backoff. A Retry-After of 0, or
 * a date already past (the two clocks disagree), paces nothing, so the backoff applies: taken at
 * its word, every batch would be sent again at once for as long as the answer stays the same.
 */
export function retryDelay(attempt: number, retryAfterMs: number | undefined, maxRetryAfterMs: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  return retryAfterMs === undefined || retryAfterMs <= 0 ? backoffDelay(attempt, options, random) : Math.min(retryAfterMs, maxRetryAfterMs);
}
