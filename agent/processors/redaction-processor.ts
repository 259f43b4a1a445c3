// LogRecordProcessor that redacts secrets from the body and from every string attribute (strings
// in arrays too), and records which rules fired. It runs last among the agent's processors, so
// nothing an earlier processor added escapes it.
//
// A private key arrives line by line from a file: after a BEGIN line, every line of the same file
// up to the END line is redacted whole, and so is every attribute holding a piece of its key text
// (message, the fields cut from it), whatever header the line had.
import type { AnyValue } from '@opentelemetry/api';
import type { LogRecordProcessor, ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import { ecsAttr, parseAttr, recordAttr } from '../../core/wire.ts';
import { linePieceIndex, type LinePieces } from './line-pieces.ts';
import { marker, type Redactor } from './redaction/redact.ts';

const beginKey = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----/;
const endKey = /-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----/;

/**
 * Attributes whose values cannot hold free text: constants the parsers choose (event.*), values
 * they validated (IP addresses, numbers) and the agent's own bookkeeping. Everything else is
 * redacted, strings in arrays and maps too.
 */
const structuralKeys = new Set<string>([
  ecsAttr.eventKind, ecsAttr.eventCategory, ecsAttr.eventType, ecsAttr.eventAction, ecsAttr.eventOutcome, ecsAttr.eventTimezone,
  ecsAttr.sourceIp, ecsAttr.relatedIp, ecsAttr.sourcePort, ecsAttr.processPid, ecsAttr.sshDroppedIp,
  parseAttr.status, parseAttr.parser, recordAttr.dataset, recordAttr.recordId, recordAttr.logOffset,
]);

/** What RedactionProcessor knows about one attribute key. */
interface KeyState {
  /** The key is one of structuralKeys. */
  readonly structural: boolean;
  /** Its index in LinePieces' values, or -1: the parse processor never cuts it from the line. */
  readonly piece: number;
  /** The last short value found clean under the key (alone, or as the one element of an array). */
  lastClean: string | undefined;
}

function keyState(key: string): KeyState {
  return { structural: structuralKeys.has(key), piece: linePieceIndex.get(key) ?? -1, lastClean: undefined };
}

type RedactionAttributes = { [K in (typeof parseAttr)['redactedBy']]?: string[] };

/** Short attribute values repeat (host names, programs, users, paths): their results are cached. */
const cacheableLength = 256;
/** Longest value remembered per key as clean (`#known`): longer ones rarely repeat. */
const lastCleanLength = 64;
const cacheSize = 4096;
/** Inside a private key block, an attribute sharing this many characters with the key text holds key material. */
const keyWindow = 8;

export class RedactionProcessor implements LogRecordProcessor {
  #redactor: Redactor;
  #cache = new Map<string, { text: string; rules: string[] }>();
  /**
   * Per attribute key seen: one lookup settles what is known of it.
   * Most keys repeat their value from line to line (program, host, method, file path, labels):
   * `lastClean` and one comparison settle them. Cleanliness is a property of the text alone (the
   * rules are fixed), so the key only says where to look.
   * An object without prototype, not a Map: in a profile of bench/parse.ts, Map#get with the keys
   * for...in gives took 40% of the processor's own time, the keyed load takes 7%. Any string is
   * a safe key on it, `__proto__` too.
   */
  #known: Record<string, KeyState | undefined> = Object.create(null) as Record<string, KeyState | undefined>;
  #knownCount = 0;
  /** Files (log.file.path) inside a private key block. */
  #inKey = new Set<string>();
  /** What the parse processor of the same chain learnt of the record (line-pieces.ts). */
  #pieces: LinePieces | undefined;

  constructor(redactor: Redactor, pieces?: LinePieces) {
    this.#redactor = redactor;
    this.#pieces = pieces;
  }

  onEmit(record: ReadWriteLogRecord): void {
    const fired: string[] = [];
    const path = record.attributes[recordAttr.logFilePath];
    const file = typeof path === 'string' ? path : undefined;
    if (typeof record.body === 'string') {
      const body = record.body;
      if (file !== undefined && this.#inKey.has(file)) {
        if (endKey.test(body)) this.#inKey.delete(file);
        record.setBody(marker('private_key'));
        fired.push('private_key');
        this.#redactKeyLine(record, body);
        // The rules still run on the attributes below: a field may hold a secret of another kind.
      } else {
        // Most lines: one prefilter scan says no rule can match, and nothing is allocated.
        const result = this.#redactor.mayHoldSecret(body) ? this.#redactor.redact(body) : undefined;
        if (result !== undefined && result.rules.length > 0) {
          fired.push(...result.rules);
          record.setBody(result.text);
        }
        // The prefilter stops at `-----` too: a line it rejected opens no key block.
        if (file !== undefined && this.#redactor.mayHoldSecret(body) && beginKey.test(body) && !endKey.test(body)) this.#inKey.add(file);
      }
    } else if (record.body !== undefined) {
      record.setBody(this.#redactAny(record.body, fired));
    }
    // Order matters: the parsers ran on the original line, so the fields they cut out of it are
    // redacted here too. A `message` that is the tail of a clean body (the syslog message after
    // its header, starting after a non-word character) is clean as well: no rule can match a
    // suffix that starts at a word boundary and did not match in the whole line.
    const cleanBody = fired.length === 0 && typeof record.body === 'string' && this.#redactor.suffixSafe ? record.body : undefined;
    // Most fields are pieces the parsers cut out of the line: when the line cannot hold a secret
    // (the prefilter missed it), none of its substrings can, and one `includes` settles each.
    const secretFreeBody = cleanBody !== undefined && !this.#redactor.mayHoldSecret(cleanBody) ? cleanBody : undefined;
    const attributes = record.attributes;
    // The fields the parser cut from this very line, when it cannot hold a secret: nothing to check.
    const parsed = this.#pieces;
    const pieces = secretFreeBody !== undefined && parsed !== undefined && parsed.attributes === attributes && parsed.body === secretFreeBody ? parsed.values : undefined;
    for (const key in attributes) {
      const value = attributes[key];
      if (value === undefined || value === null || typeof value === 'number' || typeof value === 'boolean') continue;
      let state = this.#known[key];
      if (state === undefined) state = this.#learn(key);
      if (state.structural) continue;
      if (pieces !== undefined && state.piece >= 0) {
        const piece = pieces[state.piece];
        if (piece !== undefined && (value === piece || (Array.isArray(value) && value.length === 1 && value[0] === piece))) continue;
      }
      const known = state.lastClean;
      let redacted: AnyValue;
      if (typeof value === 'string') {
        if (known === value) continue;
        // The tail test first: it is the cheaper for the longest values (message, key signatures).
        if (cleanBody !== undefined && isCleanTail(cleanBody, value)) continue;
        const piece = secretFreeBody !== undefined && secretFreeBody.includes(value);
        if (piece && value.length > lastCleanLength) continue;
        redacted = piece ? value : this.#redactShort(value, fired);
        if (redacted === value) {
          remember(state, value);
          continue;
        }
      } else if (Array.isArray(value) && value.length === 1 && value[0] === known) {
        continue; // related.hosts and the like: the one name the key held last time
      } else if (secretFreeBody !== undefined && Array.isArray(value) && allPiecesOf(secretFreeBody, value)) {
        // related.user and the like: names taken from the line
        if (value.length === 1) remember(state, value[0] as string);
        continue;
      } else {
        redacted = this.#redactAny(value, fired);
      }
      if (redacted !== value) record.setAttribute(key, redacted);
    }
    // A literal key, as in writeAuthEvent (auth/fields.ts): it keeps the attributes in fast mode.
    if (fired.length > 0) (record.attributes as RedactionAttributes)['ci_audit.redacted.rules'] = [...new Set(fired)];
  }

  /**
   * A line inside a private key block: every attribute that holds any of its key text becomes the
   * marker. The key text is the `message` when that is the line's tail (the line without a syslog
   * header or a runner's `WRITE LINE:` prefix), else the whole line: `message` itself, the fields
   * a parser cut from it, and copies of the line (`journald.MESSAGE`) hold it. "Holds" is: contains
   * it, or shares 8 characters in a row with it; header fields (host, program) and the sources' and
   * enrichment's own attributes (labels, job context) do not, and stay. Rare lines: no caching.
   */
  #redactKeyLine(record: ReadWriteLogRecord, body: string): void {
    const message = record.attributes[ecsAttr.message];
    const keyText = typeof message === 'string' && message !== '' && body.endsWith(message) ? message : body;
    const windows = new Set<string>();
    for (let i = 0; i + keyWindow <= keyText.length; i++) windows.add(keyText.slice(i, i + keyWindow));
    const holdsKey = (value: string): boolean => {
      if (value.includes(keyText)) return true;
      for (let i = 0; i + keyWindow <= value.length; i++) if (windows.has(value.slice(i, i + keyWindow))) return true;
      return false;
    };
    const scrub = (value: AnyValue): AnyValue => {
      if (typeof value === 'string') return holdsKey(value) ? marker('private_key') : value;
      if (Array.isArray(value)) {
        const out = value.map(scrub);
        return out.some((v, i) => v !== value[i]) ? out : value;
      }
      if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
        let changed = false;
        const out: Record<string, AnyValue> = {};
        for (const [k, v] of Object.entries(value)) {
          out[k] = scrub(v);
          if (out[k] !== v) changed = true;
        }
        return changed ? out : value;
      }
      return value;
    };
    const attributes = record.attributes;
    for (const key in attributes) {
      if (structuralKeys.has(key) || key === recordAttr.logFilePath) continue;
      const value = attributes[key];
      if (value === undefined || value === null || typeof value === 'number' || typeof value === 'boolean') continue;
      const scrubbed = scrub(value);
      if (scrubbed !== value) record.setAttribute(key, scrubbed);
    }
  }

  #redactShort(value: string, fired: string[]): string {
    if (value.length > cacheableLength) return this.#redactAny(value, fired) as string;
    let result = this.#cache.get(value);
    if (result === undefined) {
      result = this.#redactor.redact(value);
      if (this.#cache.size >= cacheSize) this.#cache.clear();
      this.#cache.set(value, result);
    }
    if (result.rules.length === 0) return value;
    fired.push(...result.rules);
    return result.text;
  }

  #learn(key: string): KeyState {
    // Keys are few (the parsers' and the sources'); a journal with many fields of its own is bounded here.
    if (this.#knownCount >= cacheSize) {
      this.#known = Object.create(null) as Record<string, KeyState | undefined>;
      this.#knownCount = 0;
    }
    const state = keyState(key);
    this.#known[key] = state;
    this.#knownCount++;
    return state;
  }

  /** Returns the same object when nothing changed, so unchanged attributes are not rewritten. */
  #redactAny(value: AnyValue, fired: string[]): AnyValue {
    if (typeof value === 'string') {
      const result = this.#redactor.redact(value);
      if (result.rules.length === 0) return value;
      fired.push(...result.rules);
      return result.text;
    }
    if (Array.isArray(value)) {
      let changed = false;
      const out = value.map((v) => {
        const r = this.#redactAny(v, fired);
        if (r !== v) changed = true;
        return r;
      });
      return changed ? out : value;
    }
    if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
      let changed = false;
      const out: Record<string, AnyValue> = {};
      for (const [k, v] of Object.entries(value)) {
        out[k] = this.#redactAny(v, fired);
        if (out[k] !== v) changed = true;
      }
      return changed ? out : value;
    }
    return value;
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** `value` (alone, or the one element of an array) was found clean under the key of `state`. */
function remember(state: KeyState, value: string): void {
  if (value.length <= lastCleanLength) state.lastClean = value;
}

/** Every element is a string found in `body`. */
function allPiecesOf(body: string, values: readonly unknown[]): boolean {
  for (const v of values) if (typeof v !== 'string' || !body.includes(v)) return false;
  return true;
}

/** `tail` ends `body` and starts after a non-word character (or is all of it). */
function isCleanTail(body: string, tail: string): boolean {
  if (tail.length > body.length) return false;
  const at = body.length - tail.length;
  // The last characters first: most values are not the tail. A slice and `===` compare faster
  // than endsWith.
  if (tail.length > 0 && (body.charCodeAt(body.length - 1) !== tail.charCodeAt(tail.length - 1) || body.slice(at) !== tail)) return false;
  if (at === 0) return true;
  const before = body.charCodeAt(at - 1);
  // After a word character, `\b` at the suffix's start would hold where it does not in the line.
  return !isWord(before);
}

function isWord(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
}
