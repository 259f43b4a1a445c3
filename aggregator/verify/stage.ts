// The verify stage, between the receiver and the mapping (receiver -> verify -> map -> index):
//   - each chained record's hash is recomputed from the record as received, as the agent the
//     credential proved (record-check.ts); a mismatch is a `chain_hash_mismatch` event and the
//     document is stored with ci_audit.verified false, never dropped;
//   - each agent's chain is followed (continuity.ts): broken links and declared gaps are events at
//     once; a hole is reported as `chain_gap` only when still open after `gapGraceMs` and not
//     indexed by another aggregator (sweep());
//   - each checkpoint's signature is checked with the agent's registered keys, each valid for its
//     range of seqs (checkpoint-check.ts, core/integrity/key-ring.ts); a valid one is appended to the
//     anchor file before the request is acknowledged, a valid key rotation registers the next key;
//   - forks (a seq Elasticsearch already holds with another hash) are found by the index stage on
//     the 409 of `create`, and turned into events here (forkEvent()).
// An agent's chain state is read from Elasticsearch the first time this process sees the agent,
// so that a restart neither reports the records before it as a gap nor misses a broken link.
import type { SignedCheckpoint } from '../../core/integrity/checkpoint.ts';
import { chainDocumentId, checkpointDocumentId } from '../../core/integrity/document.ts';
import { emptyChainHead } from '../../core/integrity/chain.ts';
import type { Logger } from '../../core/logger.ts';
import { chainGapAttr, checkpointAttr, recordAttr, resourceAttr } from '../../core/wire.ts';
import type { LearnedKey } from '../auth/registry.ts';
import type { Attributes, DecodedLogRecord } from '../log-record.ts';
import type { ChainPosition } from '../map/ecs.ts';
import type { AnchorFile } from './anchor.ts';
import { unreadable } from './chain-store.ts';
import type { ChainStore } from './chain-store.ts';
import type { KeyRing } from '../../core/integrity/key-ring.ts';
import { checkCheckpoint, keysById, type RegisteredKey } from './checkpoint-check.ts';
import { AgentChain } from './continuity.ts';
import type { ContinuityFinding, DeclaredGap, SeqRange } from './continuity.ts';
import { seqRangeText } from './events.ts';
import type { IntegrityEvent } from './events.ts';
import { checkRecord } from './record-check.ts';

/** Where the stage finds an agent's public keys, and keeps the ones it learns (the agent registry). */
export interface KeySource {
  /** The agent's keys; a learned one with the rotation that introduced it (AgentRegistry#trustedKeys). */
  trustedKeys(agentId: string): Promise<RegisteredKey[]>;
  addSigningKey(agentId: string, key: Omit<LearnedKey, 'added_at'>): Promise<boolean>;
}

export interface VerifyStageOptions {
  logger: Logger;
  /** How long a hole may stay open before it is reported, in ms. */
  gapGraceMs: number;
  /** The agents' keys; absent (auth off): checkpoints are stored unverified. */
  keys?: KeySource | undefined;
  /** Elasticsearch, for chain heads after a start and holes filled elsewhere; absent: neither. */
  store?: ChainStore | undefined;
  anchor?: AnchorFile | undefined;
  /** Clock in ms. Default: Date.now. */
  now?: () => number;
}

/** What the map stage needs of one record. */
export interface RecordVerdict {
  /** For a chained record: its canonical text and whether its hash (and link, when known) held. */
  chain?: { canonical: string; verified: boolean; position: ChainPosition } | undefined;
  /** For a checkpoint record: whether its signature verified with a registered key. */
  checkpointVerified?: boolean | undefined;
}

export interface VerifyResult {
  verdicts: RecordVerdict[];
  events: IntegrityEvent[];
}

/**
 * A chained record whose `create` got 409 while Elasticsearch holds no record with its hash at its
 * `_id`: another hash (a fork), or no chained record at all (`stored`).
 */
export interface ChainConflict {
  agentId: string;
  seq: number;
  docId: string;
  receivedHash: string;
  /** The hash of the chained record stored at `docId`; undefined when `stored` is set. */
  storedHash?: string | undefined;
  /**
   * Set when no chained record is stored at `docId`: `not_chained`, the document there has no
   * `ci_audit.chain.hash` (another document took the record's `_id`); `not_found`, reading it back
   * found no document.
   */
  stored?: 'not_chained' | 'not_found' | undefined;
  /** The received record's canonical text: not stored as a record, so kept in the event. */
  receivedRecord?: string | undefined;
}

export class VerifyStage {
  readonly #logger: Logger;
  readonly #graceMs: number;
  readonly #keys: KeySource | undefined;
  readonly #store: ChainStore | undefined;
  readonly #anchor: AnchorFile | undefined;
  readonly #now: () => number;
  readonly #chains = new Map<string, AgentChain>();
  readonly #loading = new Map<string, Promise<AgentChain | undefined>>();
  /** Events whose write failed (or found outside a request), written by the next sweep. */
  #pending: IntegrityEvent[] = [];
  #warned = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<void> | undefined;
  #sweepFailing = false;
  #emit: ((events: IntegrityEvent[]) => Promise<void>) | undefined;

  constructor(options: VerifyStageOptions) {
    this.#logger = options.logger;
    this.#graceMs = options.gapGraceMs;
    this.#keys = options.keys;
    this.#store = options.store;
    this.#anchor = options.anchor;
    this.#now = options.now ?? Date.now;
  }

  /** Checks a request's records in order. Throws CIA_ERR_ES_UNAVAILABLE (chain state unreadable now) or CIA_ERR_INTEGRITY_ANCHOR. */
  async verify(records: readonly DecodedLogRecord[]): Promise<VerifyResult> {
    const verdicts: RecordVerdict[] = [];
    const events: IntegrityEvent[] = [];
    const anchored: SignedCheckpoint[] = [];
    const keyCache = new Map<string, KeyRing>();
    const now = this.#now();
    for (const record of records) {
      const agentId = agentOf(record);
      const verdict: RecordVerdict = {};
      verdicts.push(verdict);
      if (agentId === undefined) continue;
      const check = checkRecord(record, agentId);
      if (check.kind === 'chained') {
        const { seq, hash, prevHash } = check.position;
        const docId = chainDocumentId(agentId, seq);
        if (!check.hashOk) {
          events.push({
            action: 'chain_hash_mismatch',
            agentId,
            idKey: `${seq}:${hash}`,
            firstSeq: seq,
            lastSeq: seq,
            docId,
            message:
              `Record ${seq} of agent ${agentId} does not hash to the hash it carries: it was changed after the agent hashed it ` +
              `(on the way, or by something posing as the agent). It is stored with ci_audit.verified false as ${docId}; ` +
              `compare it with the agent host's own log.`,
            details: { claimed_hash: hash, computed_hash: check.computedHash, prev_hash: prevHash },
          });
        }
        const chain = this.#chains.get(agentId) ?? (await this.#chainOf(agentId)) ?? this.#followFrom(agentId, seq - 1);
        const declared = declaredGap(record.attributes);
        const findings = chain.observe({ seq, hash, prevHash, docId, declared }, now);
        for (const finding of findings) events.push(continuityEvent(agentId, finding));
        if (record.attributes[recordAttr.gap] === true && declared === undefined) events.push(sourceGapEvent(agentId, seq, docId, record));
        const linkBroken = findings.some((f) => f.kind === 'link_broken' && f.seq === seq);
        verdict.chain = { canonical: check.canonical, verified: check.hashOk && !linkBroken, position: check.position };
        continue;
      }
      if (record.attributes[checkpointAttr.type] === undefined) continue;
      const outcome = checkCheckpoint(record.attributes, agentId, await this.#keysOf(agentId, keyCache));
      if (outcome.kind === 'none') continue;
      verdict.checkpointVerified = false;
      if (outcome.kind === 'malformed') {
        events.push({
          action: 'checkpoint_malformed',
          agentId,
          idKey: `${String(record.timeUnixNano)}`,
          message: `Agent ${agentId} sent a checkpoint record that is not a statement (${outcome.reason}); it is stored unverified. A genuine agent never does: check what sends as this agent.`,
        });
        continue;
      }
      const cp = outcome.checkpoint;
      const docId = checkpointDocumentId(agentId, cp.type, cp.key, cp.seq);
      if (this.#keys === undefined) {
        this.#warnOnce('no-keys', { agent: agentId }, 'checkpoints are stored unverified: without auth (auth.mode none) the aggregator holds no agent keys');
        continue;
      }
      // The finding about this statement, one per key and seq.
      const finding = (action: IntegrityEvent['action'], message: string, details: Record<string, unknown>): IntegrityEvent => ({
        action,
        agentId,
        idKey: `${cp.key}:${cp.seq}`,
        firstSeq: cp.seq,
        lastSeq: cp.seq,
        docId,
        message,
        details: { key: cp.key, checkpoint_type: cp.type, checkpoint_hash: cp.hash, ...details },
      });
      if (outcome.kind === 'key_unknown') {
        events.push(
          finding(
            'checkpoint_key_unknown',
            `Agent ${agentId} signed checkpoint ${cp.seq} with key ${cp.key}, which is neither its enrolled key nor one it rotated to ` +
              `with a valid key_rotation. Either the agent's key was replaced without a rotation (re-enroll it with its public key) or someone else signs as it.`,
            {},
          ),
        );
        continue;
      }
      if (outcome.kind === 'key_out_of_range') {
        const range = outcome.until === Infinity ? `from seq ${outcome.from} on` : `for seqs ${outcome.from} to ${outcome.until}`;
        events.push(
          finding(
            'checkpoint_signature_invalid',
            `${cp.type === 'key_rotation' ? 'Key rotation' : 'Checkpoint'} ${cp.seq} of agent ${agentId} is signed by key ${cp.key}, which is valid only ${range}: ` +
              (cp.seq > outcome.until
                ? `a key rotation retired it. Whoever still holds the old key signed this (the agent no longer has it). Stored unverified as ${docId}.`
                : `a key rotation introduced it at seq ${outcome.from}, and the agent never signs below that with it. Stored unverified as ${docId}.`),
            { reason: 'key_out_of_range', key_valid_from: outcome.from, key_valid_until: outcome.until === Infinity ? undefined : outcome.until },
          ),
        );
        continue;
      }
      if (outcome.kind === 'signature_invalid' || outcome.kind === 'next_key_mismatch') {
        events.push(
          finding(
            'checkpoint_signature_invalid',
            outcome.kind === 'signature_invalid'
              ? `Checkpoint ${cp.seq} of agent ${agentId} does not carry a valid signature of its key ${cp.key}: the statement (seq, hash, time) was altered or forged. Stored unverified as ${docId}.`
              : `Key rotation ${cp.seq} of agent ${agentId} names next key ${cp.nextKey ?? ''} but carries a public key with another id; the next key is not registered. Stored unverified as ${docId}.`,
            {},
          ),
        );
        continue;
      }
      verdict.checkpointVerified = true;
      anchored.push(cp);
      if (cp.type === 'key_rotation' && cp.nextKey !== undefined && cp.nextPublicKey !== undefined) {
        await this.#keys.addSigningKey(agentId, { id: cp.nextKey, public_key: cp.nextPublicKey, rotated_from: cp.key, rotated_at_seq: cp.seq });
        keyCache.get(agentId)?.learn({ key: cp.key, seq: cp.seq, nextKey: cp.nextKey, nextPublicKey: cp.nextPublicKey });
        this.#logger.info({ agent: agentId, key: cp.key, next_key: cp.nextKey, seq: cp.seq }, 'agent rotated its signing key; the next key is registered');
      }
    }
    if (anchored.length > 0 && this.#anchor !== undefined) await this.#anchor.append(anchored);
    return { verdicts, events };
  }

  /** The event of a fork found by the index stage, or of a chained record's `_id` held by something else. */
  forkEvent(conflict: ChainConflict): IntegrityEvent {
    const received = `Agent ${conflict.agentId} sent record ${conflict.seq} with hash ${conflict.receivedHash}`;
    const kept = 'The received record is in ci_audit.integrity.received_record.';
    let message: string;
    if (conflict.stored === 'not_chained') {
      message =
        `${received}, but Elasticsearch already holds a document at its _id ${conflict.docId} that is not a chained record (it has no ci_audit.chain.hash): ` +
        `the record was not stored as a document, and that document was kept. ${kept} Find out who wrote ${conflict.docId}: ` +
        `a record id of another sender that named this _id (before unchained ids had their own ':id:' part, docs/storage.md), or a planted document.`;
    } else if (conflict.stored === 'not_found') {
      message =
        `${received}; Elasticsearch refused it as already held at ${conflict.docId} (409), but reading that document back found nothing: ` +
        `the record was not stored as a document. ${kept} Check whether ${conflict.docId} was deleted, and by whom.`;
    } else {
      message =
        `${received}, but Elasticsearch already holds record ${conflict.seq} (${conflict.docId}) with hash ${conflict.storedHash ?? ''}: ` +
        `two different histories claim the same position. The stored document was kept; the received record is in ci_audit.integrity.received_record. ` +
        `Find out which one the agent's host really logged.`;
    }
    return {
      action: 'chain_fork',
      agentId: conflict.agentId,
      idKey: `${conflict.seq}:${conflict.receivedHash}`,
      firstSeq: conflict.seq,
      lastSeq: conflict.seq,
      docId: conflict.docId,
      message,
      details: { received_hash: conflict.receivedHash, stored_hash: conflict.storedHash, reason: conflict.stored, received_record: conflict.receivedRecord },
    };
  }

  /** Keeps events whose write failed; the next sweep writes them (their `_id`s make a second write harmless). */
  requeue(events: readonly IntegrityEvent[]): void {
    this.#pending.push(...events);
  }

  /** Starts reporting holes past the grace, every `intervalMs`, through `emit`. */
  start(emit: (events: IntegrityEvent[]) => Promise<void>, intervalMs = Math.min(1000, Math.max(50, Math.floor(this.#graceMs / 4)))): void {
    this.#emit = emit;
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      this.sweep().then(
        () => {
          this.#sweepFailing = false;
        },
        (err: unknown) => {
          // While Elasticsearch is away this fails every interval: one warning, then debug.
          this.#logger[this.#sweepFailing ? 'debug' : 'warn']({ error: (err as Error).message }, 'integrity sweep failed (open holes and pending events wait); retrying');
          this.#sweepFailing = true;
        },
      );
    }, intervalMs);
    this.#timer.unref();
  }

  /** Holes open for the grace period: asks Elasticsearch which of their seqs are held, reports the rest as chain_gap. */
  sweep(): Promise<void> {
    this.#sweeping ??= this.#sweep().finally(() => {
      this.#sweeping = undefined;
    });
    return this.#sweeping;
  }

  async #sweep(): Promise<void> {
    const emit = this.#emit;
    if (emit === undefined) return;
    if (this.#pending.length > 0) {
      const pending = this.#pending;
      this.#pending = [];
      try {
        await emit(pending);
      } catch (err) {
        this.#pending.unshift(...pending);
        throw err;
      }
    }
    for (const [agentId, chain] of this.#chains) {
      for (const range of chain.due(this.#now(), this.#graceMs)) {
        const present = this.#store === undefined ? [] : await this.#store.present(agentId, range);
        if (present === unreadable) this.#warnOnce('unreadable', {}, 'the Elasticsearch key may not read logs-ci_audit.*: holes filled by another aggregator instance are reported as gaps (grant read, docs/storage.md)');
        const held = present === unreadable ? [] : present;
        const events = missingRanges(range, held).map((missing) => gapEvent(agentId, missing, range));
        if (events.length > 0) await emit(events);
        chain.settle(range, this.#now());
      }
    }
  }

  /** Stops the sweeps. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#sweeping?.catch(() => undefined);
  }

  /** Agents followed, and what is open for each (for tests and status). */
  chainOf(agentId: string): AgentChain | undefined {
    return this.#chains.get(agentId);
  }

  /** A chain whose head Elasticsearch could not tell: followed from the record before the first one seen. */
  #followFrom(agentId: string, seq: number): AgentChain {
    const chain = new AgentChain({ seq, hash: undefined });
    this.#chains.set(agentId, chain);
    return chain;
  }

  /** The agent's chain; undefined when its head cannot be read (no read privilege). */
  #chainOf(agentId: string): AgentChain | undefined | Promise<AgentChain | undefined> {
    const known = this.#chains.get(agentId);
    if (known !== undefined) return known;
    let loading = this.#loading.get(agentId);
    if (loading === undefined) {
      loading = this.#load(agentId).finally(() => this.#loading.delete(agentId));
      this.#loading.set(agentId, loading);
    }
    return loading;
  }

  async #load(agentId: string): Promise<AgentChain | undefined> {
    const head = this.#store === undefined ? undefined : await this.#store.head(agentId);
    if (head === unreadable) {
      this.#warnOnce('unreadable', {}, 'the Elasticsearch key may not read logs-ci_audit.*: after a restart, each agent\'s chain is followed from the first record seen (grant read, docs/storage.md)');
      return this.#chains.get(agentId);
    }
    const chain = new AgentChain(head ?? { seq: emptyChainHead.seq, hash: emptyChainHead.hash });
    // Another request of the same agent may have loaded it meanwhile.
    const existing = this.#chains.get(agentId);
    if (existing !== undefined) return existing;
    this.#chains.set(agentId, chain);
    return chain;
  }

  async #keysOf(agentId: string, cache: Map<string, KeyRing>): Promise<KeyRing> {
    let keys = cache.get(agentId);
    if (keys === undefined) {
      const { keys: ring, invalid } = keysById(this.#keys === undefined ? [] : await this.#keys.trustedKeys(agentId));
      if (invalid.length > 0) this.#warnOnce(`invalid-key:${agentId}`, { agent: agentId }, 'a registered public key of the agent is not an Ed25519 key; it is ignored');
      if (ring.ignored.length > 0) {
        this.#warnOnce(`ignored-key:${agentId}:${ring.ignored.join(',')}`, { agent: agentId, keys: ring.ignored }, 'a key learned from a key rotation is not trusted: in seq order, the key that signed the rotation was already retired by an earlier rotation (run ci-audit verify for the agent)');
      }
      keys = ring;
      cache.set(agentId, keys);
    }
    return keys;
  }

  #warnOnce(key: string, fields: Record<string, unknown>, message: string): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#logger.warn(fields, message);
  }
}

function agentOf(record: DecodedLogRecord): string | undefined {
  const id = record.resource[resourceAttr.agentId];
  return typeof id === 'string' && id !== '' ? id : undefined;
}

function intOf(value: Attributes[string]): number | undefined {
  const n = typeof value === 'bigint' ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1 ? n : undefined;
}

/** The gap a record declares, when its attributes hold a well-formed one. */
export function declaredGap(attributes: Attributes): DeclaredGap | undefined {
  const first = intOf(attributes[chainGapAttr.firstSeq]);
  const last = intOf(attributes[chainGapAttr.lastSeq]);
  const reason = attributes[chainGapAttr.reason];
  if (first === undefined || last === undefined || last < first || typeof reason !== 'string') return undefined;
  return { first, last, reason };
}

/**
 * The parts of `range` that `held` does not cover: `held` gives seqs, or runs of seqs, in any order.
 * Worked out from the held seqs alone (sorted, then the spaces between them), never seq by seq
 * through the range: a hole may reach from the agent's head up to 2^53 - 1.
 */
export function missingRanges(range: SeqRange, held: Iterable<number | SeqRange>): SeqRange[] {
  const runs: SeqRange[] = [];
  for (const item of held) {
    const run = typeof item === 'number' ? { first: item, last: item } : item;
    const first = Math.max(run.first, range.first);
    const last = Math.min(run.last, range.last);
    if (first <= last) runs.push({ first, last });
  }
  runs.sort((a, b) => a.first - b.first);
  const out: SeqRange[] = [];
  let next = range.first;
  for (const run of runs) {
    if (run.first > next) out.push({ first: next, last: run.first - 1 });
    next = Math.max(next, run.last + 1);
  }
  if (next <= range.last) out.push({ first: next, last: range.last });
  return out;
}

function continuityEvent(agentId: string, finding: ContinuityFinding): IntegrityEvent {
  if (finding.kind === 'seq_jump') {
    const hole = { first: finding.headSeq + 1, last: finding.seq - 1 };
    return {
      action: 'chain_seq_jump',
      agentId,
      idKey: String(finding.seq),
      firstSeq: finding.seq,
      lastSeq: finding.seq,
      docId: finding.docId,
      message:
        `Record ${finding.seq} of agent ${agentId} (${finding.docId}) is ${finding.seq - finding.headSeq} seqs beyond the highest one known for the agent ` +
        `(${finding.headSeq}): an agent numbers its records one by one and gets nowhere near that. Something that holds the agent's credential sent it, ` +
        `or the agent's chain state was damaged. Seqs ${seqRangeText(hole.first, hole.last)} become one gap (chain_gap after the grace, unless declared); ` +
        `records of the agent below ${finding.seq} that arrive after that are stored but no longer followed on ingest. Run ci-audit verify for agent ${agentId}.`,
      details: { hole_first_seq: hole.first, hole_last_seq: hole.last },
    };
  }
  if (finding.kind === 'link_broken') {
    return {
      action: 'chain_link_broken',
      agentId,
      idKey: `${finding.seq}:${finding.prevHash}`,
      firstSeq: finding.seq,
      lastSeq: finding.seq,
      docId: finding.docId,
      message:
        `Record ${finding.seq} of agent ${agentId} links to hash ${finding.prevHash}, but record ${finding.linkSeq} (${finding.linkDocId}) ` +
        `has hash ${finding.expected}: a record was changed, removed or inserted between them. Run ci-audit verify for agent ${agentId}.`,
      details: { prev_hash: finding.prevHash, expected_hash: finding.expected, link_seq: finding.linkSeq, link_doc_id: finding.linkDocId },
    };
  }
  const gap = finding.gap;
  return {
    action: 'chain_gap_declared',
    agentId,
    idKey: `${gap.reason}:${gap.first}-${gap.last}`,
    firstSeq: gap.first,
    lastSeq: gap.last,
    docId: finding.docId,
    message: `Agent ${agentId} declares seqs ${seqRangeText(gap.first, gap.last)} will not arrive (${gapReasonText(gap.reason)}); record ${finding.seq} (${finding.docId}) says so.`,
    details: { reason: gap.reason, declared_by_seq: finding.seq },
  };
}

/**
 * A loss the agent found at a source (a file pruned while it was stopped, a journal vacuumed past
 * its cursor): the record says why; the event puts it among the integrity events.
 */
function sourceGapEvent(agentId: string, seq: number, docId: string, record: DecodedLogRecord): IntegrityEvent {
  const body = typeof record.body === 'string' ? record.body : 'records may be missing at a source';
  const path = record.attributes[recordAttr.logFilePath];
  return {
    action: 'source_gap',
    agentId,
    idKey: String(seq),
    firstSeq: seq,
    lastSeq: seq,
    docId,
    message: `Agent ${agentId} reports lines lost at a source before it could read them: ${body}`,
    details: { reason: 'source', log_file_path: typeof path === 'string' ? path : undefined },
  };
}

function gapReasonText(reason: string): string {
  switch (reason) {
    case 'unclean_stop':
      return 'unclean_stop: numbers handed out before a crash and never acknowledged; their lines are sent again under new numbers';
    case 'buffer_dropped':
      return 'buffer_dropped: the disk buffer was full and dropped its oldest records, a real loss';
    case 'buffer_damaged':
      return 'buffer_damaged: records were unreadable in the disk buffer, a real loss';
    case 'rejected':
      return 'rejected: the aggregator refused the batch as malformed; the agent set it aside on its host (ci-audit agent rejected list), from where it can be sent again';
    default:
      return reason;
  }
}

function gapEvent(agentId: string, missing: SeqRange, hole: SeqRange): IntegrityEvent {
  const count = missing.last - missing.first + 1;
  return {
    action: 'chain_gap',
    agentId,
    idKey: `${missing.first}-${missing.last}`,
    firstSeq: missing.first,
    lastSeq: missing.last,
    docId: chainDocumentId(agentId, missing.first),
    message:
      `Records ${seqRangeText(missing.first, missing.last)} of agent ${agentId} (${count}) never arrived, although later ones did, and the agent ` +
      `declared no gap: they were lost or removed on the way. Check the agent's log and disk buffer, then run ci-audit verify for agent ${agentId}.`,
    details: { missing_count: count, hole_first_seq: hole.first, hole_last_seq: hole.last },
  };
}
