// Where a file may resume: the offset just past the last line such that it and every line before
// it were acknowledged. Acks may arrive out of order (batches that complete out of order, or a
// batch held back after a rejection); the committed offset only moves over a contiguous run of
// acknowledged lines, so a restart never skips a line that was not acknowledged.
//
// A line waits here until its batch is answered, long enough to outlive V8's young generation: its
// entry is two array slots (end offset, acknowledged) and its ack a number (`trackLine`), which the
// pipeline acknowledges a run at a time (`ackRange`), where it was an object of its own and then a
// closure, each copied by every scavenge and then garbage in the old generation.
import type { RangeAcker } from '../source.ts';

export class OffsetTracker implements RangeAcker {
  #committed: number;
  /** End offsets of the lines handed out and not yet committed, in file order; `#head` is the first live one. */
  #ends: number[] = [];
  /** Whether each line of `#ends` was acknowledged. */
  #acked: boolean[] = [];
  #head = 0;
  /** Lines dropped from the front of the arrays by compaction: the index of a line is its number minus this. */
  #dropped = 0;
  #onAdvance: ((committed: number) => void) | undefined;

  /**
   * @param committed offset to resume from (checkpoint or start position)
   * @param onAdvance called each time the committed offset moves forward
   */
  constructor(committed: number, onAdvance?: (committed: number) => void) {
    this.#committed = committed;
    this.#onAdvance = onAdvance;
  }

  get committed(): number {
    return this.#committed;
  }

  /** Lines handed out and not yet committed. */
  get outstanding(): number {
    return this.#ends.length - this.#head;
  }

  /**
   * Registers a line ending at `end` (lines must be registered in file order) and returns its
   * ack function. Calling the ack twice has no further effect.
   */
  track(end: number): () => void {
    const line = this.trackLine(end);
    return () => this.ackRange(line, line);
  }

  /** Registers a line ending at `end`, as `track`, and returns its number for `ackRange`. */
  trackLine(end: number): number {
    const line = this.#dropped + this.#ends.length;
    this.#ends.push(end);
    this.#acked.push(false);
    return line;
  }

  ackRange(first: number, last: number): void {
    const acked = this.#acked;
    // Before the head: committed already (a second call); past the end: never handed out.
    const from = Math.max(first - this.#dropped, this.#head);
    const to = Math.min(last - this.#dropped, acked.length - 1);
    if (from > to) return;
    for (let at = from; at <= to; at++) acked[at] = true;
    if (from === this.#head) this.#advance();
  }

  #advance(): void {
    const before = this.#committed;
    const ends = this.#ends;
    const acked = this.#acked;
    let head = this.#head;
    while (head < ends.length && acked[head] === true) {
      this.#committed = ends[head]!;
      head++;
    }
    this.#head = head;
    // Compact now and then, so the arrays do not grow with everything ever tracked.
    if (head > 1024 && head * 2 > ends.length) {
      this.#ends = ends.slice(head);
      this.#acked = acked.slice(head);
      this.#dropped += head;
      this.#head = 0;
    }
    if (this.#committed !== before) this.#onAdvance?.(this.#committed);
  }
}
