// What the canonical writer (record.ts) keeps per attribute key list: the members in canonical
// order, each with its written key and the written bytes of the value it held last. The records of
// one source carry the same keys in the same order, and most of their values repeat from record to
// record (host, program, user, dataset, file path, parse status...): a member whose value is the
// one of the record before is copied as bytes instead of written again, and a key is never sorted,
// encoded or compared with the chain's prefix more than once per key list.
//
// Only values that cannot change unseen are kept: strings, numbers, bigints and booleans, compared
// with `===` (equal means the same text: 0 and -0 both write 0, NaN is never equal), and arrays of
// strings, compared item by item against a copy of the items. Objects, byte arrays and anything
// nested are written again every time.
import { RecentKeyLists } from '../recent-key-lists.ts';
import { chainAttrPrefix } from '../wire.ts';

/** Longest string (UTF-16 units), and most items of an array, whose written bytes are kept. */
const maxKeptValueLength = 64;
const maxKeptItems = 4;
/** Key lists longer than this, or with a key longer than maxKeyLength, get no plan (written as they come). */
const maxPlanKeys = 128;
const maxKeyLength = 256;
/** Key lists kept: those of the few sources whose records a writer sees interleaved. */
const maxPlans = 8;

/** One member of a key list, in canonical order. */
export interface MemberPlan {
  readonly key: string;
  /** The key's position in Object.keys order (where Object.values has its value). */
  readonly index: number;
  /** `,"key":` in UTF-8. */
  readonly head: Uint8Array;
  /** One of the chain's own attributes (`ci_audit.chain.*`), left out with skipChain. */
  readonly chain: boolean;
  /** The value last written, when one that is kept (see keepLast); undefined otherwise. */
  last: unknown;
  /** Or the strings of the array last written (`items` holds them); -1 when none. */
  count: number;
  readonly items: string[];
  /** `,"key":value` of that value, once it was written twice in a row. */
  bytes: Uint8Array | undefined;
}

export interface KeyPlan {
  /** The key list as Object.keys gave it (not to be changed). */
  readonly keys: readonly string[];
  readonly members: readonly MemberPlan[];
}

/**
 * The plans of the last few key lists. `head(key)` is a key's `,"key":` as the writer writes it;
 * `order(keys)` the canonical order of a key list.
 */
export class KeyPlans {
  readonly #plans = new RecentKeyLists<KeyPlan>(maxPlans);
  readonly #head: (key: string) => Uint8Array;
  readonly #order: (keys: readonly string[]) => readonly string[];

  constructor(head: (key: string) => Uint8Array, order: (keys: readonly string[]) => readonly string[]) {
    this.#head = head;
    this.#order = order;
  }

  /** The plan of `keys` (Object.keys of the attributes); undefined for a key list too large to keep. */
  get(keys: readonly string[]): KeyPlan | undefined {
    return this.#plans.get(keys) ?? this.#learn(keys);
  }

  #learn(keys: readonly string[]): KeyPlan | undefined {
    if (keys.length > maxPlanKeys) return undefined;
    for (const key of keys) if (key.length > maxKeyLength) return undefined;
    const index = new Map<string, number>();
    for (let i = 0; i < keys.length; i++) index.set(keys[i]!, i);
    const members = this.#order(keys).map(
      (key): MemberPlan => ({ key, index: index.get(key)!, head: this.#head(key), chain: key.startsWith(chainAttrPrefix), last: undefined, count: -1, items: [], bytes: undefined }),
    );
    const plan: KeyPlan = { keys, members };
    this.#plans.set(keys, plan);
    return plan;
  }
}

/** `value` is the member's last value (by `===`; an array item by item). */
export function isLast(member: MemberPlan, value: unknown): boolean {
  if (!Array.isArray(value)) return value === member.last && member.last !== undefined;
  if (value.length !== member.count) return false;
  const items = member.items;
  for (let i = 0; i < value.length; i++) if (value[i] !== items[i]) return false;
  return true;
}

/** Remembers `value` as the member's last, when it is one that is kept. */
export function keepLast(member: MemberPlan, value: unknown): void {
  member.last = undefined;
  member.count = -1;
  switch (typeof value) {
    case 'string':
      if (value.length <= maxKeptValueLength) member.last = value;
      return;
    case 'number':
    case 'bigint':
    case 'boolean':
      member.last = value;
      return;
    default:
  }
  if (!Array.isArray(value) || value.length > maxKeptItems) return;
  const items = member.items;
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (typeof item !== 'string' || item.length > maxKeptValueLength) return;
    items[i] = item;
  }
  member.count = value.length;
}
