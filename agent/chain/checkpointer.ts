// Signed checkpoints (docs/integrity.md): every `everyRecords` chained records, every `intervalMs`
// while the chain grows, and at stop, the agent signs where its chain stands (the last record
// chained) with its Ed25519 key and sends the statement as an unchained record of the `integrity`
// dataset. A key waiting at `<signing_key>.next` (ci-audit agent rotate-key) is announced by a
// key_rotation statement signed with the current key, and every later statement is signed with the
// new key (records leave in order, so the aggregator learns the key before its first use). The new
// key replaces the old file once the announcement is committed; a crash before that announces it
// again at the next start.
import type { Attributes } from '@opentelemetry/api';
import { checkpointAttributes, signCheckpoint, type CheckpointStatement, type SignedCheckpoint } from '../../core/integrity/checkpoint.ts';
import type { Logger } from '../../core/logger.ts';
import type { AckFn } from '../sources/source.ts';
import type { ChainProcessor } from './chain-processor.ts';
import { adoptNextKey, readNextKey, type SigningKey } from './signing-key.ts';

/** Sends a record past the user's processors (Pipeline#emitAgentRecord). */
export type EmitAgentRecord = (record: { body: string; attributes: Attributes }, ack?: AckFn) => void;

export interface CheckpointerOptions {
  agentId: string;
  chain: ChainProcessor;
  key: SigningKey;
  emit: EmitAgentRecord;
  /** `integrity.checkpoint_interval_ms`. */
  intervalMs: number;
  logger: Logger;
  /** Current time in ns (tests). Default: Date.now() in ns. */
  now?: () => bigint;
}

export class Checkpointer {
  #o: CheckpointerOptions;
  #key: SigningKey;
  #timer: NodeJS.Timeout | undefined;
  /** Seq of the last checkpoint signed. */
  #signedSeq = -1;
  /** A key_rotation statement is on its way; the switch happens on its ack. */
  #rotating = false;
  #stopped = false;

  constructor(o: CheckpointerOptions) {
    this.#o = o;
    this.#key = o.key;
  }

  /** The key that signs now. */
  get key(): SigningKey {
    return this.#key;
  }

  /** Starts the timer; announces a key waiting for rotation. */
  async start(): Promise<void> {
    await this.#rotateIfWaiting();
    this.#timer = setInterval(() => void this.#tick(), this.#o.intervalMs);
    this.#timer.unref();
  }

  /** Signs and sends a checkpoint of the chain's head now (also the every-N trigger, via the Pipeline). */
  checkpoint(): SignedCheckpoint | undefined {
    if (this.#stopped && this.#signedSeq >= 0 && this.#signedSeq === this.#o.chain.head.seq) return undefined;
    const head = this.#o.chain.head;
    const signed = signCheckpoint(this.#statement('checkpoint', head.seq, head.hash), this.#key.privateKey);
    this.#signedSeq = head.seq;
    this.#o.emit({ body: `checkpoint: agent ${this.#o.agentId} signed its chain up to seq ${head.seq} with key ${signed.key}`, attributes: checkpointAttributes(signed) });
    return signed;
  }

  /** Stops the timer and sends the final checkpoint (before the pipeline flushes). Safe to call twice. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    if (this.#o.chain.head.seq > 0) this.checkpoint();
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    try {
      await this.#rotateIfWaiting();
    } catch (err) {
      this.#o.logger.error({ code: 'CIA_ERR_INTEGRITY_KEY', err: (err as Error).message }, 'cannot read the next signing key; the current one keeps signing');
    }
    if (!this.#stopped && this.#o.chain.head.seq !== this.#signedSeq) this.checkpoint();
  }

  async #rotateIfWaiting(): Promise<void> {
    if (this.#rotating) return;
    const next = await readNextKey(this.#key.file);
    if (next === undefined || this.#stopped || this.#rotating) return;
    if (next.id === this.#key.id) {
      await adoptNextKey(this.#key.file);
      return;
    }
    this.#rotating = true;
    const head = this.#o.chain.head;
    const statement = { ...this.#statement('key_rotation', head.seq, head.hash), nextKey: next.id, nextPublicKey: next.publicKeyPem };
    const signed = signCheckpoint(statement, this.#key.privateKey);
    this.#o.logger.info({ key: this.#key.id, nextKey: next.id }, 'rotating the signing key: announcing the next key signed with the current one');
    const file = this.#key.file;
    this.#o.emit(
      { body: `key rotation: agent ${this.#o.agentId} signs with key ${next.id} from now on, announced with key ${signed.key}`, attributes: checkpointAttributes(signed) },
      () => void this.#adopt(file, next.id),
    );
    this.#key = { ...next, file };
  }

  async #adopt(file: string, id: string): Promise<void> {
    try {
      await adoptNextKey(file);
      this.#o.chain.keyId = id;
      this.#o.logger.info({ key: id }, 'signing key rotated');
    } catch (err) {
      this.#o.logger.error({ code: 'CIA_ERR_INTEGRITY_KEY', err: (err as Error).message }, 'cannot replace the signing key file with the next key; it is announced again at the next start');
    } finally {
      this.#rotating = false;
    }
  }

  #statement(type: CheckpointStatement['type'], seq: number, hash: string): CheckpointStatement {
    return { type, agent: this.#o.agentId, key: this.#key.id, seq, hash, timeUnixNano: this.#o.now?.() ?? BigInt(Date.now()) * 1_000_000n };
  }
}
