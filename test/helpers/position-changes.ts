// Attribute sets for the caches that keep a key list's bytes by position (the agent's OTLP encoder,
// the canonical writer): one key changed at every position of the list, or two neighbours, to each
// kind of value and back; an array the sets share changed in place; after every third change a set
// of another key list (some of the keys, in reverse order); what else comes in between is the
// caller's. A cache that keeps a byte too long writes one of these differently from a writer
// without memory.

export interface PositionChanges<V> {
  keys: readonly string[];
  /** A fresh set of the unchanged values, holding `shared` under some keys. */
  base: () => Record<string, V>;
  /** Each turns a key's value into another of another length, kind or emptiness. */
  changes: readonly ((value: V) => V)[];
  /** The array `base` holds: its items are changed in place after each position. */
  shared: string[];
  /** The value of every key of the set with another key list. */
  otherValue: V;
  /** Called after the sets of change `c` at a position, for what comes in between. */
  between: (c: number) => void;
}

/** Hands `visit` the sets in order. */
export function visitPositionChanges<V>(spec: PositionChanges<V>, visit: (attributes: Record<string, V>) => void): void {
  const { keys, base, changes, shared } = spec;
  for (let p = 0; p < keys.length; p++) {
    const key = keys[p]!;
    for (const [c, change] of changes.entries()) {
      visit(base());
      visit(base());
      const one = base();
      one[key] = change(one[key]!);
      visit(one);
      visit(base());
      if (p + 1 < keys.length) {
        const two = base();
        const next = keys[p + 1]!;
        two[key] = change(two[key]!);
        two[next] = changes[(c + 1) % changes.length]!(two[next]!);
        visit(two);
      }
      if (c % 3 === 0) visit(Object.fromEntries(keys.slice(2, 9).reverse().map((k) => [k, spec.otherValue])));
      spec.between(c);
      visit(base());
    }
    shared[p % 2] = `user${p}`;
    visit(base());
  }
}
