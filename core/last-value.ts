// A key's last value, kept to learn whether the next record holds the same one: the agent's OTLP
// encoder and the canonical writer then copy the bytes they wrote for it instead of writing them
// again (the records of one source repeat most of their values: host, program, user, dataset...).
//
// Only values that cannot change unseen are kept: strings, numbers, bigints and booleans, compared
// with `===` (equal means the same bytes: 0 and -0 both write 0, NaN is never equal), and arrays of
// strings, compared item by item against a copy of the items. Objects, byte arrays and anything
// nested are written again every time. Short ones only: what is kept stays alive.

/** Longest string (UTF-16 units), and most items of an array, that is kept. */
const maxKeptValueLength = 64;
const maxKeptItems = 4;

export interface LastValue {
  /** The value last written, when one that is kept (see keepLast); undefined otherwise. */
  last: unknown;
  /** Or the strings of the array last written (`items` holds them); -1 when none. */
  count: number;
  readonly items: string[];
}

/** `value` is the last value kept (by `===`; an array item by item). */
export function isLast(kept: LastValue, value: unknown): boolean {
  if (!Array.isArray(value)) return value === kept.last && kept.last !== undefined;
  if (value.length !== kept.count) return false;
  const items = kept.items;
  for (let i = 0; i < value.length; i++) if (value[i] !== items[i]) return false;
  return true;
}

/** Nothing is the last value. */
export function forgetLast(kept: LastValue): void {
  kept.last = undefined;
  kept.count = -1;
}

/** Remembers `value` as the last, when it is one that is kept; forgets the one before otherwise. */
export function keepLast(kept: LastValue, value: unknown): void {
  forgetLast(kept);
  switch (typeof value) {
    case 'string':
      if (value.length <= maxKeptValueLength) kept.last = value;
      return;
    case 'number':
    case 'bigint':
    case 'boolean':
      kept.last = value;
      return;
    default:
  }
  if (!Array.isArray(value) || value.length > maxKeptItems) return;
  const items = kept.items;
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (typeof item !== 'string' || item.length > maxKeptValueLength) return;
    items[i] = item;
  }
  kept.count = value.length;
}
