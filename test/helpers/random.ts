// A seeded pseudo-random generator for generated test inputs: the same seed gives the same
// sequence, so a failing input can be replayed from the seed its test names.

/** Numbers in [0, 1) from a 32-bit xorshift-multiply mix of a counter (mulberry32). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * Integers and picks from a linear congruential generator (the C library's constants): the
 * sequence the canonical form's generated tests were written and checked against (each was shown
 * to fail with the writer broken), so it stays as it was.
 */
export function seededPicks(seed: number): { int: (n: number) => number; pick: <T>(xs: readonly T[]) => T } {
  let state = seed;
  const int = (n: number): number => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state % n;
  };
  return { int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]! };
}
