// Writes of a source into its sink that stop waiting when the source stops: downstream may be
// blocked for good, and stop() must not hang on it. Not `Promise.race` with a stop promise: each
// race would leave a reaction on that never-settled promise, and memory would grow with every line.
import type { RecordSink, SourceRecord, WriteResult } from './source.ts';

export class SinkWrites {
  #waiting = new Set<() => void>();

  /** `true` when the sink had room; otherwise a promise that resolves on room or on releaseAll(). */
  write(sink: RecordSink, record: SourceRecord): WriteResult {
    const room = sink.write(record);
    if (room === true) return true;
    return new Promise<void>((resolve) => {
      this.#waiting.add(resolve);
      void room.then(() => {
        this.#waiting.delete(resolve);
        resolve();
      });
    });
  }

  /** Lets every pending write return, for stop(). */
  releaseAll(): void {
    for (const release of this.#waiting) release();
    this.#waiting.clear();
  }
}
