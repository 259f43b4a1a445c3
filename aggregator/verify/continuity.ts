// Continuity of one agent's chain as the aggregator sees it arrive: which sequence numbers are
// settled, which arrived ahead of a hole, which holes are open and since when. A state machine
// without I/O or clock (the caller passes `now`), so every case is a plain unit test.
//
// - Settled: every seq <= base.seq arrived, or was declared missing by the agent, or was reported
//   missing after the grace. base.hash is the hash of record base.seq when it arrived here.
// - Ahead: records beyond base+1 that arrived before the records between (retries, several
//   requests in flight, several aggregator instances). A hole is held open for the grace period;
//   a record that fills it before then cancels it (no event). The stage reports a hole still open
//   after the grace as `chain_gap` (after asking Elasticsearch whether another aggregator indexed it).
// - Links: a record links to the hash of seq - 1, or, when it declares an `unclean_stop` gap, to the
//   hash of first_seq - 1 (the agent's committed head before the crash). Checked as soon as both ends
//   are known here, whichever arrives first.
// - A seq jump: a record more than `implausibleSeqJump` beyond the highest seq known for the agent
//   is a finding at once. It is followed like any other (the hole before it is one range, reported
//   as a gap after the grace), and no work here or in the stage follows the width of a hole.
// - A record at or below base.seq (a re-send, or a late fill of a reported hole) is not tracked: the
//   index stage compares a re-sent seq with what Elasticsearch holds (fork on a different hash).

export interface SeqRange {
  first: number;
  last: number;
}

export interface DeclaredGap extends SeqRange {
  /** A ChainGapReason, or whatever a newer agent sends (kept as sent). */
  reason: string;
}

/** One chained record as continuity needs it. */
export interface ChainLink {
  seq: number;
  hash: string;
  prevHash: string;
  /** The record's `_id`, named in findings. */
  docId: string;
  /** The gap this record declares (chainGapAttr), if any. */
  declared?: DeclaredGap | undefined;
}

/**
 * A record this far beyond the highest seq known for its agent is no agent's: an agent numbers its
 * records one by one (an unclean stop skips one reserve block, 4096 by default), and 2^40 records
 * (about 1.1 * 10^12) take over three years at 10,000 records a second.
 */
export const implausibleSeqJump = 2 ** 40;

export type ContinuityFinding =
  /** `seq` is more than implausibleSeqJump beyond `headSeq`, the highest seq known before it. */
  | { kind: 'seq_jump'; seq: number; docId: string; headSeq: number }
  /** `seq` links to `prevHash`, but record `linkSeq` arrived here with hash `expected`. */
  | { kind: 'link_broken'; seq: number; docId: string; linkSeq: number; linkDocId: string; expected: string; prevHash: string }
  /** The agent says these seqs will never come, and why. */
  | { kind: 'gap_declared'; seq: number; docId: string; gap: DeclaredGap };

export interface OpenHole extends SeqRange {
  /** When the hole was first seen open (the caller's clock, ms). */
  openedAt: number;
}

interface AheadEntry {
  hash: string;
  prevHash: string;
  docId: string;
  linkSeq: number;
}

/** Where a chain stood when tracking began: hash undefined when that record was never seen here. */
export interface ChainBase {
  seq: number;
  hash: string | undefined;
  docId?: string | undefined;
}

export class AgentChain {
  #base: ChainBase;
  readonly #ahead = new Map<number, AheadEntry>();
  /** Ranges beyond base that will not arrive (declared, or reported missing), sorted, disjoint. */
  #skipped: SeqRange[] = [];
  /** Records whose link is not seq - 1 (unclean_stop declarations), by the seq they link to. */
  readonly #linkers = new Map<number, number>();
  #holes: OpenHole[] = [];
  /** The highest seq known beyond base (ahead or skipped); at or below base.seq when there is none. */
  #top: number;

  constructor(base: ChainBase) {
    this.#base = { ...base };
    this.#top = base.seq;
  }

  get base(): Readonly<ChainBase> {
    return this.#base;
  }

  /** Records waiting beyond a hole. */
  get aheadCount(): number {
    return this.#ahead.size;
  }

  /** Holes open now, oldest seq first. */
  get holes(): readonly OpenHole[] {
    return this.#holes;
  }

  /** Takes one arrived record; returns what it shows at once. */
  observe(link: ChainLink, now: number): ContinuityFinding[] {
    const findings: ContinuityFinding[] = [];
    if (link.seq <= this.#base.seq || this.#ahead.has(link.seq) || this.#inSkipped(link.seq)) return findings;
    const topBefore = Math.max(this.#top, this.#base.seq);
    if (link.seq - topBefore > implausibleSeqJump) findings.push({ kind: 'seq_jump', seq: link.seq, docId: link.docId, headSeq: topBefore });
    const declared = link.declared;
    const linkSeq = declared?.reason === 'unclean_stop' && declared.first <= link.seq ? declared.first - 1 : link.seq - 1;
    if (declared !== undefined) {
      findings.push({ kind: 'gap_declared', seq: link.seq, docId: link.docId, gap: declared });
      this.#skip({ first: declared.first, last: Math.min(declared.last, link.seq - 1) });
    }
    const before = this.#entryAt(linkSeq);
    if (before !== undefined && before.hash !== link.prevHash) {
      findings.push({ kind: 'link_broken', seq: link.seq, docId: link.docId, linkSeq, linkDocId: before.docId, expected: before.hash, prevHash: link.prevHash });
    }
    const entry: AheadEntry = { hash: link.hash, prevHash: link.prevHash, docId: link.docId, linkSeq };
    const baseBefore = this.#base.seq;
    this.#ahead.set(link.seq, entry);
    this.#top = Math.max(this.#top, link.seq);
    if (linkSeq !== link.seq - 1) this.#linkers.set(linkSeq, link.seq);
    // Records that arrived earlier and link to this one.
    const followers = [this.#ahead.get(link.seq + 1)?.linkSeq === link.seq ? link.seq + 1 : undefined, this.#linkers.get(link.seq)];
    for (const seq of followers) {
      const follower = seq === undefined ? undefined : this.#ahead.get(seq);
      if (seq === undefined || follower === undefined || follower.prevHash === link.hash) continue;
      findings.push({ kind: 'link_broken', seq, docId: follower.docId, linkSeq: link.seq, linkDocId: link.docId, expected: link.hash, prevHash: follower.prevHash });
    }
    this.#advance();
    // One record that arrived ahead changes the holes only where it landed; recomputing them all
    // for each record costs the square of the records waiting (several requests out of order).
    if (declared !== undefined) this.#updateHoles(now);
    else if (this.#base.seq === baseBefore) this.#arrivedAhead(link.seq, topBefore, now);
    else this.#baseMoved();
    return findings;
  }

  /** Holes open for at least `graceMs` at `now`. They stay open until settle(). */
  due(now: number, graceMs: number): SeqRange[] {
    return this.#holes.filter((h) => now - h.openedAt >= graceMs).map((h) => ({ first: h.first, last: h.last }));
  }

  /** Marks a range as dealt with (reported missing, or found indexed elsewhere): the chain moves past it. */
  settle(range: SeqRange, now: number): void {
    this.#skip(range);
    this.#advance();
    this.#updateHoles(now);
  }

  #entryAt(seq: number): { hash: string; docId: string } | undefined {
    if (seq === this.#base.seq) return this.#base.hash === undefined ? undefined : { hash: this.#base.hash, docId: this.#base.docId ?? '' };
    return this.#ahead.get(seq);
  }

  #inSkipped(seq: number): boolean {
    return this.#skipped.some((r) => r.first <= seq && seq <= r.last);
  }

  #skip(range: SeqRange): void {
    const first = Math.max(range.first, this.#base.seq + 1);
    if (first > range.last) return;
    this.#top = Math.max(this.#top, range.last);
    const merged: SeqRange[] = [];
    let add: SeqRange = { first, last: range.last };
    for (const r of this.#skipped) {
      if (r.last + 1 < add.first || add.last + 1 < r.first) merged.push(r);
      else add = { first: Math.min(r.first, add.first), last: Math.max(r.last, add.last) };
    }
    merged.push(add);
    merged.sort((a, b) => a.first - b.first);
    this.#skipped = merged;
  }

  #advance(): void {
    for (;;) {
      const next = this.#base.seq + 1;
      const entry = this.#ahead.get(next);
      if (entry !== undefined) {
        this.#base = { seq: next, hash: entry.hash, docId: entry.docId };
        this.#forget(next);
        continue;
      }
      const range = this.#skipped[0];
      if (range !== undefined && range.first <= next) {
        this.#skipped.shift();
        // Records that arrived inside a skipped range keep their hash for the record after it.
        const last = this.#ahead.get(range.last);
        for (const seq of [...this.#ahead.keys()]) if (seq <= range.last) this.#forget(seq);
        this.#base = { seq: range.last, hash: last?.hash, docId: last?.docId };
        continue;
      }
      return;
    }
  }

  #forget(seq: number): void {
    const entry = this.#ahead.get(seq);
    if (entry === undefined) return;
    this.#ahead.delete(seq);
    if (this.#linkers.get(entry.linkSeq) === seq) this.#linkers.delete(entry.linkSeq);
  }

  /**
   * `seq` arrived beyond base without moving it, and nothing above `top` was known before: the hole
   * it landed in splits (both parts keep the hole's time), or, past `top`, a hole opens before it.
   * Gives what #updateHoles would.
   */
  #arrivedAhead(seq: number, top: number, now: number): void {
    const holes = this.#holes;
    if (seq > top) {
      if (seq - 1 > top) holes.push({ first: top + 1, last: seq - 1, openedAt: now });
      return;
    }
    // Records mostly arrive near the end: search from there.
    for (let i = holes.length - 1; i >= 0; i--) {
      const hole = holes[i]!;
      if (hole.last < seq) break;
      if (hole.first > seq) continue;
      const parts: OpenHole[] = [];
      if (hole.first < seq) parts.push({ first: hole.first, last: seq - 1, openedAt: hole.openedAt });
      if (seq < hole.last) parts.push({ first: seq + 1, last: hole.last, openedAt: hole.openedAt });
      holes.splice(i, 1, ...parts);
      return;
    }
  }

  /**
   * The record at base + 1 arrived and the base moved up through it and the records waiting after
   * it, up to the next hole (or past everything known): the holes below the new base close, the
   * rest stay as they were. Gives what #updateHoles would; recomputing them all was a sort of every
   * record waiting, for each record of a request that arrived after the next one.
   */
  #baseMoved(): void {
    const base = this.#base.seq;
    let drop = 0;
    while (drop < this.#holes.length && this.#holes[drop]!.last <= base) drop++;
    if (drop > 0) this.#holes.splice(0, drop);
    const first = this.#holes[0];
    if (first !== undefined && first.first <= base) this.#holes[0] = { first: base + 1, last: first.last, openedAt: first.openedAt };
  }

  #updateHoles(now: number): void {
    if (this.#ahead.size === 0 && this.#skipped.length === 0) {
      this.#holes = [];
      return;
    }
    const covered: SeqRange[] = [...this.#skipped];
    for (const seq of this.#ahead.keys()) covered.push({ first: seq, last: seq });
    covered.sort((a, b) => a.first - b.first);
    const holes: OpenHole[] = [];
    let cursor = this.#base.seq + 1;
    for (const r of covered) {
      if (r.first > cursor) {
        const hole = { first: cursor, last: r.first - 1 };
        // A hole that was part of an older, larger one keeps the older one's time.
        let openedAt = now;
        for (const old of this.#holes) if (old.first <= hole.last && hole.first <= old.last) openedAt = Math.min(openedAt, old.openedAt);
        holes.push({ ...hole, openedAt });
      }
      cursor = Math.max(cursor, r.last + 1);
    }
    this.#holes = holes;
  }
}
