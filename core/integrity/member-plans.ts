// What the canonical writer (record.ts) keeps per attribute key list: the members in canonical
// order, each with its written key and the written bytes of the value it held last. The records of
// one source carry the same keys in the same order, and most of their values repeat from record to
// record (host, program, user, dataset, file path, parse status...): a member whose value is the
// one of the record before is copied as bytes instead of written again, and a key is never sorted,
// encoded or compared with the chain's prefix more than once per key list.
//
// Which values are kept, and how they are compared: core/last-value.ts.
import type { LastValue } from '../last-value.ts';
import { RecentKeyLists } from '../recent-key-lists.ts';
import { chainAttrPrefix } from '../wire.ts';

/** Key lists longer than this, or with a key longer than maxKeyLength, get no plan (written as they come). */
const maxPlanKeys = 128;
const maxKeyLength = 256;
/** Key lists kept: those of the few sources whose records a writer sees interleaved. */
const maxPlans = 8;

/** One member of a key list, in canonical order. */
export interface MemberPlan extends LastValue {
  readonly key: string;
  /** The key's position in Object.keys order (where Object.values has its value). */
  readonly index: number;
  /** `,"key":` in UTF-8. */
  readonly head: Uint8Array;
  /** One of the chain's own attributes (`ci_audit.chain.*`), left out with skipChain. */
  readonly chain: boolean;
  /** `,"key":value` of the last value, once it was written twice in a row. */
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
