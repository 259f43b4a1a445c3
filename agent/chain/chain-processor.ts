// The agent's hash chain (docs/integrity.md): the last processor before the batch processor or the
// disk buffer gives each record the next sequence number and hash_seq = SHA-256(hash_{seq-1} ||
// canonical record), and sets them on the record (`ci_audit.chain.*`). Checkpoint records
// (`ci_audit.checkpoint.type` set) are not chained.
//
// Commits: the batch processor tells the chain when a run of records is committed (acknowledged by
// the aggregator: `takeChained`, then `commitRange` per batch), or the record's ack, wrapped by
// `wrapAck`, does (durable in the disk buffer). `committed` is the highest seq with every seq up to
// it committed; it is saved to chain.json in the background. Until then a record's hash waits as
// 64 bytes of text in one buffer (`#hashes`), where each record's hash string, and the closure that
// held it, outlived V8's young generation while its batch waited for the aggregator's answer.
//
// Start: after a clean stop (every handed-out seq committed) the chain goes on at committed + 1.
// Otherwise the numbers committed+1..reserved may or may not have reached the aggregator, and their
// lines are read again by the sources: the first record is then a gap record `unclean_stop` with
// seq reserved + 1, linked to the committed head, declaring committed+1..reserved.
import type { Attributes } from '@opentelemetry/api';
import type { LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import type { Logger } from '../../core/logger.ts';
import { chainHashOfRecord, type ChainHead } from '../../core/integrity/chain.ts';
import { canonicalAttributes, type AttestedInput } from '../../core/integrity/record.ts';
import { chainGapAttr, checkpointAttr, recordAttr, type chainAttr } from '../../core/wire.ts';
import type { AckFn } from '../sources/source.ts';
import { chainStatePath, ChainStateWriter, readChainState, type ChainStateData } from './chain-state.ts';

/** The chain's attributes under their literal keys; a key that differs from core/wire.ts fails the type check. */
type ChainAttributes = { [K in (typeof chainAttr)['seq']]: number } & { [K in (typeof chainAttr)['hash' | 'prevHash']]: string };

export interface ChainProcessorOptions {
  agentId: string;
  /** The saved state (readChainState) and its writer. */
  state: ChainStateData;
  writer: ChainStateWriter;
  /** Id of the signing key, recorded in the state. */
  keyId: string;
  /** Sequence numbers reserved at a time (`integrity.reserve_block`). */
  reserveBlock: number;
  logger: Logger;
  /** After this many chained records `due` turns true (the checkpointer's trigger). */
  everyRecords?: number;
}

/** What the chain declares lost when it resumes after an unclean stop. */
export interface ResumeGap {
  firstSeq: number;
  lastSeq: number;
  /** The committed head the resume record links to. */
  committed: ChainHead;
}

/** Dataset of the records the agent itself writes about its chain (resume gap). */
export const chainGapDataset = 'agent';


/**
 * Commits are saved at most this often (reservations at once): a write per acknowledged batch
 * would fsync hundreds of times a second. A crash loses at most this much of `committed`; the
 * records in between are then declared by the resume record although they arrived.
 */
const commitSaveMs = 100;

/** A chain hash: SHA-256 as lowercase hex. */
const hashBytes = 64;

export class ChainProcessor implements LogRecordProcessor {
  #o: ChainProcessorOptions;
  /** The last record chained (seq 0: none yet). */
  #head: ChainHead;
  #committed: ChainHead;
  /** Runs of commits (first seq -> last seq) that arrived before a lower seq was committed. */
  #early = new Map<number, number>();
  /** Hashes of the records chained from seq `#hashBase` on, as hex text, `hashBytes` each. */
  #hashes = Buffer.allocUnsafe(1024 * hashBytes);
  #hashBase: number;
  #hashCount = 0;
  /** The numbers an unclean stop left behind (declared by the resume record; never committed). */
  #lostFirst = 0;
  #lostLast = -1;
  #resume: ResumeGap | undefined;
  /** Highest seq that may be handed out now / is being reserved. */
  #reservedTarget: number;
  /** The record just chained, for `wrapAck`. */
  #pendingSeq = 0;
  #sinceEvery = 0;
  /**
   * `everyRecords` records were chained since the last checkpoint. The Pipeline signs one right
   * after it handed the record on: a checkpoint cannot be emitted from inside another record's emit.
   */
  due = false;
  #keyId: string;
  /** `"agent":<id>` in canonical form, and the canonical resource of the last resource seen. */
  #resourceOf: unknown;
  #resourceText = '';
  #commitsSaved = true;
  #commitTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #closing: Promise<{ clean: boolean }> | undefined;

  constructor(o: ChainProcessorOptions) {
    this.#o = o;
    const s = o.state;
    this.#committed = { ...s.committed };
    this.#keyId = o.keyId;
    if (s.clean && s.committed.seq === s.reserved) {
      this.#head = { ...s.committed };
    } else {
      this.#resume = { firstSeq: s.committed.seq + 1, lastSeq: s.reserved, committed: { ...s.committed } };
      this.#lostFirst = s.committed.seq + 1;
      this.#lostLast = s.reserved;
      // The next record (the resume record) gets reserved + 1 and links to the committed hash.
      this.#head = { seq: s.reserved, hash: s.committed.hash };
    }
    this.#hashBase = this.#head.seq + 1;
    this.#reservedTarget = this.#head.seq + o.reserveBlock;
    // From here on the state says "not clean": a crash must be detected at the next start.
    o.writer.writeSync(this.#snapshot());
  }

  /** The last record chained. */
  get head(): ChainHead {
    return this.#head;
  }

  get committed(): ChainHead {
    return this.#committed;
  }

  get keyId(): string {
    return this.#keyId;
  }

  set keyId(id: string) {
    this.#keyId = id;
    this.#saveSoon();
  }

  /** Set when the agent did not stop cleanly: the gap the first record must declare. Cleared by `resumeRecord`. */
  get resume(): ResumeGap | undefined {
    return this.#resume;
  }

  /** Body and attributes of the resume record (an unclean_stop gap); undefined when the chain continues cleanly. */
  resumeRecord(): { body: string; attributes: Attributes } | undefined {
    const r = this.#resume;
    if (r === undefined) return undefined;
    this.#resume = undefined;
    const empty = r.lastSeq < r.firstSeq;
    return {
      body: empty
        ? `chain resumed after an unclean stop at seq ${r.committed.seq}; no sequence numbers were lost`
        : `chain resumed after an unclean stop: sequence numbers ${r.firstSeq} to ${r.lastSeq} were handed out or reserved but not committed; their lines are read again and sent under new numbers`,
      attributes: {
        [recordAttr.dataset]: chainGapDataset,
        [recordAttr.recordId]: `chain:resume:${r.lastSeq + 1}`,
        [recordAttr.gap]: true,
        [chainGapAttr.firstSeq]: r.firstSeq,
        [chainGapAttr.lastSeq]: r.lastSeq,
        [chainGapAttr.reason]: 'unclean_stop',
      },
    };
  }

  onEmit(logRecord: ReadWriteLogRecord): void {
    this.#pendingSeq = 0;
    if (this.#closed) return;
    if (logRecord.attributes[checkpointAttr.type] !== undefined) return;
    this.chain(logRecord);
  }

  /** Chains one record (also those that bypass the SDK: gap records of the disk buffer). */
  chain(record: ReadableLogRecord): void {
    const seq = this.#head.seq + 1;
    this.#reserveFor(seq);
    const attributes = record.attributes;
    if (record.resource !== this.#resourceOf) {
      // The agent's resource is one object for every record: its canonical text is written once.
      this.#resourceOf = record.resource;
      this.#resourceText = canonicalAttributes(record.resource.attributes as Record<string, AttestedInput>);
    }
    const prev = this.#head.hash;
    const hash = chainHashOfRecord(
      prev,
      {
        agent: this.#o.agentId,
        seq,
        timeUnixNano: record.hrTime,
        observedTimeUnixNano: record.hrTimeObserved,
        severityNumber: record.severityNumber ?? 0,
        body: record.body as AttestedInput,
        attributes: attributes as Record<string, AttestedInput>,
        resource: {},
      },
      this.#resourceText,
    );
    // Literal keys (checked against core/wire.ts by ChainAttributes), as in writeAuthEvent
    // (agent/processors/auth/fields.ts): a property added under a computed key turns an object with
    // more than about 16 into a hash table, which every record's 30-odd attributes then were, for
    // the exporter, the canonical form and the GC alike.
    const chained = attributes as ChainAttributes;
    chained['ci_audit.chain.seq'] = seq;
    chained['ci_audit.chain.hash'] = hash;
    chained['ci_audit.chain.prev_hash'] = prev;
    this.#head = { seq, hash };
    this.#keepHash(seq, hash);
    this.#pendingSeq = seq;
    const every = this.#o.everyRecords;
    if (every !== undefined && ++this.#sinceEvery >= every) {
      this.#sinceEvery = 0;
      this.due = true;
    }
  }

  /**
   * The ack to hand downstream for the record just chained: commits it, then runs the source's
   * ack. Any other record (unchained, or not taken) gets `ack` back unchanged.
   */
  wrapAck(ack: AckFn | undefined): AckFn | undefined {
    const seq = this.takeChained();
    if (seq === 0) return ack;
    if (ack === undefined) return () => this.commitRange(seq, seq);
    return () => {
      this.commitRange(seq, seq);
      ack();
    };
  }

  /**
   * The seq of the record just chained, for its holder to pass to `commitRange` once it is
   * committed; 0 for any other record (unchained, or not taken). As `wrapAck`, once per record.
   */
  takeChained(): number {
    const seq = this.#pendingSeq;
    this.#pendingSeq = 0;
    return seq;
  }

  /** Records `first` to `last` (seqs `takeChained` gave) are committed. */
  commitRange(first: number, last: number): void {
    // Committed already (a second call): only what is above the head counts.
    if (first <= this.#committed.seq) first = this.#committed.seq + 1;
    // Never handed out (an unclean stop left them behind): the run starts after them.
    if (first >= this.#lostFirst && first <= this.#lostLast) first = this.#lostLast + 1;
    if (last < first) return;
    let committed = this.#committed.seq;
    let next = committed + 1;
    if (next === this.#lostFirst) next = this.#lostLast + 1;
    if (first === next && this.#early.size === 0) {
      committed = last;
    } else {
      this.#early.set(first, Math.max(last, this.#early.get(first) ?? last));
      for (;;) {
        next = committed + 1;
        if (next === this.#lostFirst) next = this.#lostLast + 1;
        const to = this.#early.get(next);
        if (to === undefined) break;
        this.#early.delete(next);
        committed = to;
      }
    }
    if (committed !== this.#committed.seq) {
      this.#committed = { seq: committed, hash: this.#hashOf(committed) };
      this.#dropHashesTo(committed);
    }
    if (this.#commitTimer === undefined && !this.#closed) {
      this.#commitTimer = setTimeout(() => {
        this.#commitTimer = undefined;
        this.#saveSoon();
      }, commitSaveMs);
      this.#commitTimer.unref();
    }
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  /** Nothing: the provider shuts processors down together, but the chain's state is saved after the batch processor's last acks (`close`). */
  shutdown(): Promise<void> {
    return Promise.resolve();
  }

  /** Stops chaining and saves the final state: clean when every handed-out seq is committed. Safe to call twice. */
  close(): Promise<{ clean: boolean }> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<{ clean: boolean }> {
    this.#closed = true;
    clearTimeout(this.#commitTimer);
    await this.#o.writer.idle();
    const clean = this.#committed.seq === this.#head.seq;
    const state = clean ? { ...this.#snapshot(), reserved: this.#committed.seq, clean: true } : this.#snapshot();
    this.#o.writer.writeSync(state);
    return { clean };
  }

  /** Keeps the hash of `seq`, the record just chained (seqs come in order: head + 1). */
  #keepHash(seq: number, hash: string): void {
    const at = seq - this.#hashBase;
    if ((at + 1) * hashBytes > this.#hashes.length) {
      const grown = Buffer.allocUnsafe(2 * this.#hashes.length);
      this.#hashes.copy(grown, 0, 0, at * hashBytes);
      this.#hashes = grown;
    }
    this.#hashes.write(hash, at * hashBytes, hashBytes, 'latin1');
    this.#hashCount = at + 1;
  }

  #hashOf(seq: number): string {
    const at = seq - this.#hashBase;
    return this.#hashes.toString('latin1', at * hashBytes, (at + 1) * hashBytes);
  }

  /** Lets go of the hashes up to `seq` (committed: no longer needed), moving the rest down now and then. */
  #dropHashesTo(seq: number): void {
    const drop = Math.min(seq - this.#hashBase + 1, this.#hashCount);
    if (drop < 1024 || drop * 2 < this.#hashCount) return;
    this.#hashes.copy(this.#hashes, 0, drop * hashBytes, this.#hashCount * hashBytes);
    this.#hashBase += drop;
    this.#hashCount -= drop;
  }

  #reserveFor(seq: number): void {
    const durable = this.#o.writer.durable.reserved;
    if (seq > durable) {
      // Records outran the reservation written ahead: reserve now, before the number is used.
      this.#reservedTarget = Math.max(this.#reservedTarget, seq - 1 + this.#o.reserveBlock);
      this.#o.writer.writeSync(this.#snapshot());
      return;
    }
    // Less than a block left and no larger reservation on its way to disk: reserve the next
    // block in the background, so that the synchronous write above stays a fallback.
    if (this.#reservedTarget <= durable && seq > durable - this.#o.reserveBlock) {
      this.#reservedTarget = durable + this.#o.reserveBlock;
      this.#saveSoon();
    }
  }

  #saveSoon(): void {
    if (!this.#commitsSaved || this.#closed) return;
    this.#commitsSaved = false;
    // One write per turn of the event loop at most; the writer coalesces further calls.
    queueMicrotask(() => {
      this.#commitsSaved = true;
      if (this.#closed) return;
      this.#o.writer.schedule(
        () => this.#snapshot(),
        (err) => {
          // A failed reservation is retried by the next record (synchronously once it is needed).
          this.#reservedTarget = Math.min(this.#reservedTarget, this.#o.writer.durable.reserved);
          this.#o.logger.error({ code: 'CIA_ERR_INTEGRITY_STATE', err: err.message }, 'cannot save the chain state; retrying with the next commit');
        },
      );
    });
  }

  #snapshot(): ChainStateData {
    return {
      version: 1,
      agent: this.#o.agentId,
      committed: this.#committed,
      reserved: Math.max(this.#reservedTarget, this.#head.seq),
      clean: false,
      key: this.#keyId,
    };
  }
}


/**
 * The chain of the agent whose state lives in `stateDir` (chain.json), signed with key `keyId`:
 * where it stood, and its writer. A key other than the saved one is logged (CIA_ERR_INTEGRITY_KEY);
 * the agent, and the benchmarks that measure what it runs, open it this way.
 */
export async function openChain(o: { stateDir: string; agentId: string; keyId: string; reserveBlock: number; everyRecords: number; logger: Logger }): Promise<ChainProcessor> {
  const statePath = chainStatePath(o.stateDir);
  const saved = await readChainState(statePath, o.agentId, o.keyId);
  if (saved.key !== o.keyId) {
    o.logger.warn({ code: 'CIA_ERR_INTEGRITY_KEY', key: o.keyId, previousKey: saved.key }, 'the signing key changed without a rotation (ci-audit agent rotate-key); the aggregator reports its checkpoints as signed by an unknown key until it is registered');
  }
  return new ChainProcessor({
    agentId: o.agentId,
    state: saved,
    writer: new ChainStateWriter(statePath, saved),
    keyId: o.keyId,
    reserveBlock: o.reserveBlock,
    logger: o.logger,
    everyRecords: o.everyRecords,
  });
}
