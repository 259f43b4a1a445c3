// Where a file may resume: the offset just past the last line such that it and every line before
// it were acknowledged. Acks may arrive out of order (batches that complete out of order, or a
// batch held back after a rejection); the committed offset only moves over a contiguous run of
// acknowledged lines, so a restart never skips a line that was not acknowledged.

interface Pending {
  end: number;
  acked: boolean;
}

export class OffsetTracker {
  #committed: number;
  /** Lines handed out and not yet committed, in file order; `#head` is the first live entry. */
  #pending: Pending[] = [];
  #head = 0;
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
    return this.#pending.length - this.#head;
  }

  /**
   * Registers a line ending at `end` (lines must be registered in file order) and returns its
   * ack function. Calling the ack twice has no further effect.
   */
  track(end: number): () => void {
    const entry: Pending = { end, acked: false };
    this.#pending.push(entry);
    return () => {
      if (entry.acked) return;
      entry.acked = true;
      this.#advance();
    };
  }

  #advance(): void {
    const before = this.#committed;
    while (this.#head < this.#pending.length && this.#pending[this.#head]!.acked) {
      this.#committed = this.#pending[this.#head]!.end;
      this.#head++;
    }
    // Compact now and then, so the array does not grow with everything ever tracked.
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#head);
      this.#head = 0;
    }
    if (this.#committed !== before) this.#onAdvance?.(this.#committed);
  }
}
