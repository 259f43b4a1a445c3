// The streaming chain checker of `ci-audit verify`: fed each agent's chained documents in
// sequence order, and the agent's signed checkpoints (from the index and the anchor file) merged
// into the same order, it reports every record that is missing, altered, inserted or reordered and
// every checkpoint that no longer matches. No I/O: the reader (read.ts) feeds it, so every rule is
// tested on plain inputs (test/unit/verify).
//
// Memory: per agent the last accepted record, the candidates at the sequence number being decided
// (more than one only when a document was inserted), a window of recent hashes (to check the link
// of an unclean-stop gap record), the checkpoints waiting for their record, and bounded lists of
// open holes and out-of-place records. Nothing grows with the number of records; only the agent
// being read has state (the stream is sorted by agent).
import { chainHash, genesisHash } from '../../core/integrity/chain.ts';
import { chainDocumentId } from '../../core/integrity/document.ts';
import { parseCanonicalRecord, type ParsedCanonicalRecord } from '../../core/integrity/record.ts';
import { AgentKeys, type Attestation } from './checkpoints.ts';
import type { Finding, VerifySink } from './findings.ts';
import type { PublicKeys } from './keys.ts';
import { remapDiff, valueAt, type Source } from './remap.ts';

/** A hit of the chained-records query. */
export interface RecordHit {
  _id?: string | null;
  _index: string;
  _source?: Source;
}

/** One chained document, read and checked on its own. */
interface Entry {
  agent: string;
  /** ci_audit.chain.seq as stored: the position the document claims. */
  seq: number;
  /** The sequence number the canonical record attests (differs from `seq`: reordered). */
  attestedSeq: number;
  hash: string;
  prevHash: string;
  id: string;
  index: string;
  timestamp: string | undefined;
  /** Whether `_id` is the one the aggregator gives this agent + seq. */
  idOk: boolean;
  gap: { first: number; last: number; reason: string } | undefined;
}

interface Hole {
  first: number;
  last: number;
  /** The records on either side, to name where the hole is. */
  before: Entry | undefined;
  after: Entry;
}

interface AgentState {
  agent: string;
  keys: AgentKeys;
  head: Entry | undefined;
  pending: { seq: number; candidates: Entry[] } | undefined;
  waiting: Attestation[];
  history: Map<number, string>;
  holes: Hole[];
  reordered: Map<number, Entry>;
  /** Highest sequence number a valid signature vouches for. */
  signedSeq: number;
  records: number;
  noKeyNoticed: boolean;
}

export interface CheckerOptions {
  keys: PublicKeys;
  /** The chain is read from its start: a first record other than seq 1 means records 1.. are missing. */
  fromStart: boolean;
  /** The chain is read to its end: checkpoints beyond the last record mean its tail was deleted. */
  toEnd: boolean;
  /** How many recent hashes per agent are kept to check an unclean-stop gap record's link (default 8192). */
  historySize?: number;
}

/** Out-of-place records and open holes kept per agent before the oldest is settled. */
const maxHeldEntries = 10_000;

export interface CheckerStats {
  records: number;
  agents: number;
  checkpoints: number;
  findings: number;
  notices: number;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function int(value: unknown): number | undefined {
  const n = typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) ? n : undefined;
}

/** `.ds-logs-ci_audit.auth-prod-2026.11.26-000001` -> `logs-ci_audit.auth-prod`. */
export function dataStreamOfIndex(index: string): string | undefined {
  const m = /^\.ds-(logs-ci_audit\.[a-z0-9_]+-[a-z0-9_]+)-\d{4}\.\d{2}\.\d{2}-\d+$/.exec(index);
  return m?.[1];
}

export class ChainChecker {
  readonly #sink: VerifySink;
  readonly #options: CheckerOptions;
  readonly #historySize: number;
  #state: AgentState | undefined;
  /** Statements of one agent and seq, not yet checked (attestation()). */
  #sameSeq: Attestation[] = [];
  readonly #stats: CheckerStats = { records: 0, agents: 0, checkpoints: 0, findings: 0, notices: 0 };

  constructor(sink: VerifySink, options: CheckerOptions) {
    this.#options = options;
    this.#historySize = options.historySize ?? 8192;
    this.#sink = {
      finding: (f) => {
        this.#stats.findings++;
        sink.finding(f);
      },
      notice: (n) => {
        this.#stats.notices++;
        sink.notice(n);
      },
    };
  }

  get stats(): CheckerStats {
    return { ...this.#stats };
  }

  /** What the checker holds right now (records and checkpoints): bounded, whatever the number of records. */
  get held(): number {
    const s = this.#state;
    if (s === undefined) return this.#sameSeq.length;
    return this.#sameSeq.length + (s.head === undefined ? 0 : 1) + (s.pending?.candidates.length ?? 0) + s.waiting.length + s.holes.length + s.reordered.size + s.history.size;
  }

  /** The next chained document, in (agent.id, ci_audit.chain.seq) order. */
  record(hit: RecordHit): void {
    this.#flush();
    this.#stats.records++;
    const entry = this.#inspect(hit);
    const state = this.#agent(entry.agent);
    state.records++;
    if (state.pending !== undefined && entry.seq === state.pending.seq) {
      state.pending.candidates.push(entry);
      return;
    }
    if (entry.attestedSeq !== entry.seq) {
      // Reported by #inspect; it may still fill the position it attests (two records swapped).
      if (state.reordered.size >= maxHeldEntries) state.reordered.delete(state.reordered.keys().next().value!);
      state.reordered.set(entry.attestedSeq, entry);
      return;
    }
    this.#resolve(state, entry);
    this.#advance(state, entry);
  }

  /**
   * A signed checkpoint, merged into the record order after the records of its sequence number. The
   * statements of one seq are held until the next seq, record or agent: a key a rotation introduces
   * at seq S signs from S on, and the index (sorted by signing time, in ms) and the anchor file give
   * the statements of S in no useful order, so the rotations that hold go first.
   */
  attestation(att: Attestation): void {
    this.#stats.checkpoints++;
    const first = this.#sameSeq[0];
    if (first !== undefined && (first.statement.agent !== att.statement.agent || first.statement.seq !== att.statement.seq)) this.#flush();
    this.#sameSeq.push(att);
  }

  /** Checks the statements held for one seq: each rotation by a key valid there first, until none is left. */
  #flush(): void {
    const batch = this.#sameSeq;
    if (batch.length === 0) return;
    this.#sameSeq = [];
    const state = this.#agent(batch[0]!.statement.agent);
    const rotations = batch.filter((a) => a.statement.type === 'key_rotation');
    for (let i = rotations.findIndex((a) => state.keys.admits(a.statement)); i >= 0; i = rotations.findIndex((a) => state.keys.admits(a.statement))) {
      this.#attest(state, rotations.splice(i, 1)[0]!);
    }
    for (const att of [...rotations, ...batch.filter((a) => a.statement.type !== 'key_rotation')]) this.#attest(state, att);
  }

  #attest(state: AgentState, att: Attestation): void {
    const check = state.keys.check(att.statement);
    if (check.ok === false) {
      this.#sink.finding({ kind: 'signature_invalid', agent: state.agent, seq: att.statement.seq, ...where(att), detail: `${describe(att)}: ${check.reason}` });
      return;
    }
    if (check.ok === 'unknown') {
      if (!state.noKeyNoticed) this.#sink.notice({ kind: 'no_public_key', agent: state.agent, detail: `checkpoint signatures of agent ${state.agent} are not verified: ${check.reason}` });
      state.noKeyNoticed = true;
    } else if (att.statement.seq > state.signedSeq) {
      state.signedSeq = att.statement.seq;
    }
    const s = att.statement.seq;
    if (s === 0) {
      if (att.statement.hash !== genesisHash) this.#mismatch(state, att, undefined, genesisHash);
      return;
    }
    if (state.pending !== undefined && s >= state.pending.seq) {
      state.waiting.push(att);
      return;
    }
    if (state.head !== undefined && s === state.head.seq) {
      this.#compare(state, att, state.head);
      return;
    }
    const known = state.history.get(s);
    if (known !== undefined && known !== att.statement.hash) this.#mismatch(state, att, undefined, known);
    else if (known === undefined && state.pending === undefined && state.head === undefined) state.waiting.push(att);
  }

  /** A checkpoint document without a well-formed statement: nothing to verify a signature on. */
  malformedCheckpoint(agent: string, where: Pick<Finding, '_id' | '_index' | '@timestamp'>, detail: string): void {
    this.#flush();
    this.#stats.checkpoints++;
    this.#sink.finding({ kind: 'signature_invalid', agent, seq: 0, ...where, detail });
  }

  /** Settles the agent being read; call once after the last record and checkpoint. */
  end(): void {
    this.#flush();
    if (this.#state !== undefined) this.#finish(this.#state);
    this.#state = undefined;
  }

  #agent(agent: string): AgentState {
    if (this.#state?.agent === agent) return this.#state;
    if (this.#state !== undefined) this.#finish(this.#state);
    this.#stats.agents++;
    this.#state = {
      agent,
      keys: new AgentKeys(this.#options.keys.get(agent) ?? []),
      head: undefined,
      pending: undefined,
      waiting: [],
      history: new Map(),
      holes: [],
      reordered: new Map(),
      signedSeq: 0,
      records: 0,
      noKeyNoticed: false,
    };
    return this.#state;
  }

  /** Checks one document on its own: hash, canonical record, re-mapped fields; reports altered/reordered. */
  #inspect(hit: RecordHit): Entry {
    const source = hit._source ?? {};
    const agent = text(valueAt(source, 'agent.id')) ?? '';
    const seq = int(valueAt(source, 'ci_audit.chain.seq')) ?? 0;
    const hash = text(valueAt(source, 'ci_audit.chain.hash')) ?? '';
    const prevHash = text(valueAt(source, 'ci_audit.chain.prev_hash')) ?? '';
    const canonical = valueAt(source, 'ci_audit.chain.record');
    const timestamp = text(valueAt(source, '@timestamp'));
    const id = hit._id ?? '';
    const entry: Entry = { agent, seq, attestedSeq: seq, hash, prevHash, id, index: hit._index, timestamp, idOk: id === chainDocumentId(agent, seq), gap: undefined };
    const at = { agent, seq, ...(timestamp === undefined ? {} : { '@timestamp': timestamp }), _id: id, _index: hit._index };

    let parsed: ParsedCanonicalRecord;
    try {
      if (typeof canonical !== 'string') throw new Error('no ci_audit.chain.record');
      parsed = parseCanonicalRecord(canonical);
    } catch (err) {
      this.#sink.finding({ kind: 'altered', ...at, fields: ['ci_audit.chain.record'], detail: `the stored canonical record cannot be read: ${(err as Error).message}` });
      return entry;
    }
    // One `altered` finding per document, with every reason and field.
    const fields = new Set<string>();
    const reasons: string[] = [];
    if (chainHash(prevHash, canonical) !== hash) {
      fields.add('ci_audit.chain.record');
      reasons.push('the canonical record does not hash to ci_audit.chain.hash: the record (or its hash) was changed after the agent sent it');
    }
    if (parsed.agent !== agent) {
      fields.add('agent.id');
      reasons.push(`the canonical record belongs to agent ${JSON.stringify(parsed.agent)}`);
    }
    const gap = valueAt(source, 'ci_audit.gap');
    if (typeof gap === 'object' && gap !== null) {
      const g = gap as Record<string, unknown>;
      const first = int(g.first_seq);
      const last = int(g.last_seq);
      const reason = text(g.reason);
      // Declared by the attested record itself, not by a field someone could add to the document.
      const attested = parsed.attributes['ci_audit.gap.reason'] === reason;
      if (first !== undefined && last !== undefined && reason !== undefined && attested) entry.gap = { first, last, reason };
    }
    if (parsed.seq !== seq) {
      entry.attestedSeq = parsed.seq;
      this.#sink.finding({ kind: 'reordered', ...at, detail: `stored at seq ${seq}, but the agent attested it as seq ${parsed.seq}` });
    }
    const stream = dataStreamOfIndex(hit._index);
    const namespace = stream?.slice(stream.lastIndexOf('-') + 1) ?? text(valueAt(source, 'data_stream.namespace')) ?? '';
    const remap = remapDiff(parsed, { seq, hash, prevHash }, source, namespace);
    // A reordered record's stored seq is reported above, not again as a changed field.
    const changed = remap.fields.filter((f) => !(entry.attestedSeq !== seq && f === 'ci_audit.chain.seq') && !fields.has(f));
    if (stream !== undefined && stream !== remap.dataStream) changed.push('_index');
    if (changed.length > 0) reasons.push(`stored fields differ from the attested record: ${changed.join(', ')}`);
    for (const f of changed) fields.add(f);
    if (fields.size > 0) this.#sink.finding({ kind: 'altered', ...at, fields: [...fields], detail: reasons.join('; ') });
    return entry;
  }

  /** Decides the record at the pending sequence number, now that `next` (the record after it) is known. */
  #resolve(state: AgentState, next: Entry | undefined): void {
    const pending = state.pending;
    if (pending === undefined) return;
    state.pending = undefined;
    const p = pending.seq;
    const expected = p === 1 ? genesisHash : state.head?.seq === p - 1 ? state.head.hash : undefined;
    const links = (e: Entry): boolean => expected === undefined || e.prevHash === expected;
    const forward = (e: Entry): boolean => next !== undefined && next.seq === p + 1 && next.prevHash === e.hash;
    const score = (e: Entry): number => (links(e) ? 4 : 0) + (forward(e) ? 2 : 0) + (e.idOk ? 1 : 0);
    let accepted = pending.candidates[0]!;
    if (pending.candidates.length > 1) for (const c of pending.candidates) if (score(c) > score(accepted)) accepted = c;
    for (const c of pending.candidates) {
      if (c === accepted) continue;
      this.#sink.finding({ kind: 'inserted', ...at(c), detail: `a second document at seq ${p}; ${accepted.id} is the one that chains` });
    }
    const storedAs = idSeq(accepted);
    if (!accepted.idOk && storedAs !== undefined) {
      this.#sink.finding({ kind: 'reordered', ...at(accepted), detail: `the record of seq ${p} is stored in the document of seq ${storedAs}` });
    } else if (!accepted.idOk) {
      this.#sink.finding({ kind: 'altered', ...at(accepted), fields: ['_id'], detail: `the aggregator writes this record as _id ${chainDocumentId(accepted.agent, p)}: the document was written by someone else` });
    }
    if (!links(accepted)) this.#brokenLink(state, accepted, expected!);
    else if (accepted.gap?.reason === 'unclean_stop' && expected === undefined) this.#uncleanStop(state, accepted);
    if (accepted.gap !== undefined) this.#declare(state, accepted);
    this.#accept(state, accepted);
  }

  /** A record whose prev_hash is not the hash of the record before it. */
  #brokenLink(state: AgentState, entry: Entry, expected: string): void {
    if (entry.gap?.reason === 'unclean_stop') {
      this.#uncleanStop(state, entry);
      return;
    }
    this.#sink.finding({
      kind: 'inserted',
      ...at(entry),
      detail: `its prev_hash does not match the hash of seq ${entry.seq - 1} (${expected.slice(0, 12)}…): this record does not belong after the one before it (or that one was replaced)`,
    });
  }

  /** An unclean-stop gap record links to the hash of `first_seq - 1`, skipping the numbers handed out before the crash. */
  #uncleanStop(state: AgentState, entry: Entry): void {
    const gap = entry.gap!;
    if (gap.last !== entry.seq - 1) {
      this.#sink.finding({ kind: 'inserted', ...at(entry), detail: `an unclean-stop gap record must follow the range it declares (${gap.first}..${gap.last})` });
      return;
    }
    const anchor = gap.first === 1 ? genesisHash : state.history.get(gap.first - 1);
    if (anchor === undefined) {
      this.#sink.notice({ kind: 'link_unchecked', agent: state.agent, seq: entry.seq, detail: `the link of gap record ${entry.id} to seq ${gap.first - 1} was not checked: that record is not among the recent ones held` });
    } else if (anchor !== entry.prevHash) {
      this.#sink.finding({ kind: 'inserted', ...at(entry), detail: `an unclean-stop gap record that does not link to the hash of seq ${gap.first - 1}` });
    }
    const head = state.head;
    if (head !== undefined && head.seq >= gap.first) {
      const last = Math.min(head.seq, gap.last);
      this.#sink.notice({ kind: 'superseded', agent: state.agent, seq: gap.first, last_seq: last, detail: `records ${gap.first}..${last} were sent before an unclean stop; their lines were read again after it under new numbers` });
    }
  }

  /** A record that declares a known loss: the holes it covers become notices. */
  #declare(state: AgentState, entry: Entry): void {
    const gap = entry.gap!;
    // A rejected batch still exists on the agent's host and can be sent again: say where to look.
    const hint = gap.reason === 'rejected' ? ' (set aside on the agent\'s host: ci-audit agent rejected list)' : '';
    this.#sink.notice({ kind: 'declared_gap', agent: state.agent, seq: gap.first, last_seq: gap.last, detail: `${gap.reason}: declared by ${entry.id}${hint}` });
    const open: Hole[] = [];
    for (const hole of state.holes) {
      if (hole.last < gap.first || hole.first > gap.last) {
        open.push(hole);
        continue;
      }
      if (hole.first < gap.first) open.push({ ...hole, last: gap.first - 1 });
      if (hole.last > gap.last) open.push({ ...hole, first: gap.last + 1 });
    }
    state.holes = open;
  }

  #accept(state: AgentState, entry: Entry): void {
    state.head = entry;
    state.history.set(entry.seq, entry.hash);
    if (state.history.size > this.#historySize) state.history.delete(state.history.keys().next().value!);
    const later: Attestation[] = [];
    for (const att of state.waiting) {
      if (att.statement.seq === entry.seq) this.#compare(state, att, entry);
      else if (att.statement.seq > entry.seq) later.push(att);
    }
    state.waiting = later;
  }

  /** Moves on to `entry` (already linked-checked as far as its predecessor allows): fills or opens the hole before it. */
  #advance(state: AgentState, entry: Entry): void {
    let expected = state.head === undefined ? (this.#options.fromStart ? 1 : entry.seq) : state.head.seq + 1;
    // Records stored out of place that attest the missing positions fill them when they link.
    while (expected < entry.seq) {
      const moved = state.reordered.get(expected);
      const prev = expected === 1 ? genesisHash : state.head?.hash;
      if (moved === undefined || moved.prevHash !== prev) break;
      state.reordered.delete(expected);
      this.#accept(state, { ...moved, seq: expected });
      expected++;
    }
    if (expected < entry.seq) {
      if (state.holes.length >= maxHeldEntries) this.#reportHole(state, state.holes.shift()!);
      state.holes.push({ first: expected, last: entry.seq - 1, before: state.head, after: entry });
      // Checkpoints inside the hole cannot be compared; the hole is reported.
      state.waiting = state.waiting.filter((a) => a.statement.seq >= entry.seq);
    }
    state.pending = { seq: entry.seq, candidates: [entry] };
  }

  #compare(state: AgentState, att: Attestation, entry: Entry): void {
    if (att.statement.hash !== entry.hash) this.#mismatch(state, att, entry, entry.hash);
  }

  #mismatch(state: AgentState, att: Attestation, entry: Entry | undefined, actual: string): void {
    const s = att.statement.seq;
    this.#sink.finding({
      kind: 'checkpoint_mismatch',
      agent: state.agent,
      seq: s,
      ...(entry === undefined ? where(att) : at(entry)),
      detail: `${describe(att)} vouches for hash ${att.statement.hash.slice(0, 12)}… at seq ${s}, the chain in the index has ${actual.slice(0, 12)}…: the chain was rewritten at or before seq ${s}`,
    });
  }

  #reportHole(state: AgentState, hole: Hole): void {
    const range = hole.first === hole.last ? `seq ${hole.first} is` : `seqs ${hole.first}..${hole.last} are`;
    const before = hole.before === undefined ? 'the start of the chain' : `${hole.before.id} (${hole.before.timestamp ?? 'no time'})`;
    this.#sink.finding({
      kind: 'missing',
      ...at(hole.after),
      seq: hole.first,
      ...(hole.last === hole.first ? {} : { last_seq: hole.last }),
      detail: `${range} missing between ${before} and ${hole.after.id} (${hole.after.timestamp ?? 'no time'})`,
    });
  }

  #finish(state: AgentState): void {
    this.#resolve(state, undefined);
    for (const hole of state.holes) this.#reportHole(state, hole);
    state.holes = [];
    const last = state.head?.seq ?? 0;
    const beyond = state.waiting.filter((a) => a.statement.seq > last);
    if (beyond.length > 0 && this.#options.toEnd) {
      const top = Math.max(...beyond.map((a) => a.statement.seq));
      const head = state.head;
      this.#sink.finding({
        kind: 'tail_missing',
        agent: state.agent,
        seq: last + 1,
        ...(top === last + 1 ? {} : { last_seq: top }),
        ...(head === undefined ? {} : { '@timestamp': head.timestamp, _id: head.id, _index: head.index }),
        detail: `${beyond.map(describe).join(', ')} vouch${beyond.length === 1 ? 'es' : ''} for records up to seq ${top}, but the chain in the index ends at ${last === 0 ? 'nothing' : `seq ${last}${head === undefined ? '' : ` (${head.id})`}`}: records ${last + 1}..${top} were deleted`,
      });
    }
    if (state.head !== undefined && state.signedSeq < last) {
      this.#sink.notice({ kind: 'not_signed', agent: state.agent, seq: state.signedSeq + 1, last_seq: last, detail: `records up to seq ${last} are not yet covered by a signed checkpoint (the last signed seq is ${state.signedSeq})` });
    }
  }
}

function at(e: Entry): Pick<Finding, 'agent' | 'seq' | '@timestamp' | '_id' | '_index'> {
  return { agent: e.agent, seq: e.seq, ...(e.timestamp === undefined ? {} : { '@timestamp': e.timestamp }), _id: e.id, _index: e.index };
}

/** The sequence number in a chain `_id` of the entry's agent other than its own (a document moved to another position). */
function idSeq(e: Entry): number | undefined {
  const prefix = chainDocumentId(e.agent, 0).slice(0, -1);
  if (!e.id.startsWith(prefix)) return undefined;
  const n = int(e.id.slice(prefix.length));
  return n !== undefined && n !== e.seq ? n : undefined;
}

function where(att: Attestation): Pick<Finding, '@timestamp' | '_id' | '_index'> {
  return { ...(att['@timestamp'] === undefined ? {} : { '@timestamp': att['@timestamp'] }), ...(att._id === undefined ? {} : { _id: att._id }), ...(att._index === undefined ? {} : { _index: att._index }) };
}

function describe(att: Attestation): string {
  const what = att.statement.type === 'key_rotation' ? 'key rotation' : 'checkpoint';
  return att.origin === 'anchor' ? `the anchored ${what} (anchor line ${att.line ?? '?'})` : `the ${what} document ${att._id ?? ''}`;
}
