// The last few attribute key lists seen, each with what was worked out for it. The records of one
// source carry the same keys in the same order, and a request (or the agent's pipeline) may
// interleave the records of a few sources, so what depends on the keys alone is worked out once per
// key list: the canonical writer's member plans (integrity/member-plans.ts), the aggregator's
// decoded attribute objects (aggregator/receiver/attribute-shapes.ts) and its mapping's plan
// (aggregator/map/ecs.ts).

export class RecentKeyLists<T> {
  readonly #entries: Array<{ keys: readonly string[]; value: T }> = [];
  readonly #max: number;
  /** The entry the next new key list replaces once `max` are kept. */
  #replace = 0;

  constructor(max: number) {
    this.#max = max;
  }

  /** What was kept for the key list `keys[0..n)`, if it is one of the kept ones. */
  get(keys: readonly string[], n = keys.length): T | undefined {
    for (const entry of this.#entries) if (sameKeys(entry.keys, keys, n)) return entry.value;
    return undefined;
  }

  /** Keeps `value` for `keys` (which must not change afterwards), in place of the oldest when full. */
  set(keys: readonly string[], value: T): void {
    const entry = { keys, value };
    if (this.#entries.length < this.#max) this.#entries.push(entry);
    else {
      this.#entries[this.#replace] = entry;
      this.#replace = (this.#replace + 1) % this.#max;
    }
  }
}

function sameKeys(kept: readonly string[], keys: readonly string[], n: number): boolean {
  if (kept.length !== n) return false;
  for (let i = 0; i < n; i++) if (kept[i] !== keys[i]) return false;
  return true;
}
