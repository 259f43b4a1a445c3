// Acks -> the cursor to save: that of the last entry such that it and every entry before it were
// acknowledged. Entries the filter skips are passed as already acknowledged, so the saved cursor
// moves through them and a restart does not read them again. Acks may come out of order.

interface Pending {
  cursor: string;
  acked: boolean;
}

export class CursorTracker {
  #committed: string | undefined;
  #pending: Pending[] = [];
  #head = 0;
  #onAdvance: (cursor: string) => void;

  constructor(committed: string | undefined, onAdvance: (cursor: string) => void) {
    this.#committed = committed;
    this.#onAdvance = onAdvance;
  }

  get committed(): string | undefined {
    return this.#committed;
  }

  /** Entries handed out and not yet committed. */
  get outstanding(): number {
    return this.#pending.length - this.#head;
  }

  /** Registers the next entry in journal order; returns its ack (idempotent). */
  track(cursor: string): () => void {
    const entry: Pending = { cursor, acked: false };
    this.#pending.push(entry);
    return () => {
      if (entry.acked) return;
      entry.acked = true;
      this.#advance();
    };
  }

  /** Registers an entry the filter skipped: it counts as acknowledged at once. */
  skip(cursor: string): void {
    if (this.outstanding === 0) {
      this.#committed = cursor;
      this.#onAdvance(cursor);
      return;
    }
    this.#pending.push({ cursor, acked: true });
  }

  #advance(): void {
    const before = this.#committed;
    while (this.#head < this.#pending.length && this.#pending[this.#head]!.acked) {
      this.#committed = this.#pending[this.#head]!.cursor;
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#head);
      this.#head = 0;
    }
    if (this.#committed !== before && this.#committed !== undefined) this.#onAdvance(this.#committed);
  }
}
