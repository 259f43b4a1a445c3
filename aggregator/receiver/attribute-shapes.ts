// A log record's attributes object, built in the shape of the records before it. Assigned key by key,
// an object of more than about 16 attributes becomes a dictionary (V8 stops giving keyed stores fast
// properties there) and every further key is a hash-table insert: a fifth of decoding an agent's
// parsed record (29 attributes). The records of one source carry the same keys in the same order, so
// the keys and values are collected first; when the keys are those of a recent record, the object is
// a copy of that record's (fast properties, one hidden class) with the values stored in place.
// The object is the same either way: the same own keys, in the same order, with the same values.
import type { AttributeValue, Attributes } from '../log-record.ts';
import { RecentKeyLists } from '../../core/recent-key-lists.ts';

/** Shapes kept: a request may interleave the records of a few sources. */
const maxShapes = 4;
/** Fewer keys stay fast properties anyway. */
const minShapedKeys = 12;

export class AttributeCollector {
  readonly #keys: string[] = [];
  readonly #values: AttributeValue[] = [];
  #count = 0;
  /** Per key list, an object with those keys, in order, as fast properties; its values are never read. */
  readonly #templates = new RecentKeyLists<Attributes>(maxShapes);

  /** Starts a record's attributes. */
  start(): void {
    this.#count = 0;
  }

  /** One attribute, in the order received; a repeated key is handled as `into[key] = value` would. */
  add(key: string, value: AttributeValue): void {
    this.#keys[this.#count] = key;
    this.#values[this.#count] = value;
    this.#count++;
  }

  /** The attributes object, as assigning the attributes one by one to `{}` (assignAttribute) builds it. */
  build(): Attributes {
    const n = this.#count;
    const keys = this.#keys;
    const values = this.#values;
    const template = n >= minShapedKeys ? this.#templates.get(keys, n) : undefined;
    if (template !== undefined) {
      const attributes: Attributes = { ...template };
      for (let i = 0; i < n; i++) attributes[keys[i]!] = values[i];
      this.#release(n);
      return attributes;
    }
    const attributes: Attributes = {};
    for (let i = 0; i < n; i++) assignAttribute(attributes, keys[i]!, values[i]);
    if (n >= minShapedKeys && plainDistinct(keys, n)) this.#remember(keys.slice(0, n), attributes);
    this.#release(n);
    return attributes;
  }

  #remember(keys: readonly string[], attributes: Attributes): void {
    // A spread copy has fast properties even of a dictionary; its values are cleared so that the
    // template holds on to none of a record's data.
    const template: Attributes = { ...attributes };
    for (const key of keys) template[key] = undefined;
    this.#templates.set(keys, template);
  }

  /** Lets go of the record's values (the keys are kept: they are the shapes' and the string cache's). */
  #release(n: number): void {
    this.#values.fill(undefined, 0, n);
  }
}

/**
 * `into[key] = value`, except that a key "__proto__" becomes an attribute like any other: a plain
 * assignment would replace the object's prototype with the sender's value and drop the attribute.
 */
export function assignAttribute(into: Attributes, key: string, value: AttributeValue): void {
  if (key === '__proto__') Object.defineProperty(into, key, { value, enumerable: true, writable: true, configurable: true });
  else into[key] = value;
}

/**
 * Keys a copy of the template can take in place: no repeats (the first position and the last value
 * need the assignments in order) and, to be safe rather than clever, no `__proto__` (a copy has it as
 * an own property, but a plain store is what assignAttribute exists to avoid).
 */
function plainDistinct(keys: readonly string[], n: number): boolean {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const key = keys[i]!;
    if (key === '__proto__' || seen.has(key)) return false;
    seen.add(key);
  }
  return true;
}
