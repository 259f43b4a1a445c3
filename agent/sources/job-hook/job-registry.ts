// Which job runs on which runner slot, as the hooks said. The decisions are pure (`decide`): a
// started hook takes a free slot (or one whose job ran longer than maxJobMs: a runner that died
// without its completed hook); a completed hook must name the job that runs on its slot. Anything
// else is refused, so a job cannot replace the context of a job already running on its slot, nor
// end it; see docs/runners.md for what this does and does not stop.
import { cicdAttr } from '../../../core/wire.ts';
import type { JobContext } from './job-context.ts';
import type { HookFile } from './hook-file.ts';

export interface SlotState {
  context: JobContext;
  running: boolean;
  startedAt: number;
}

export type Decision =
  | { accept: true; action: 'ci_job_started' | 'ci_job_finished' }
  | { accept: false; reason: string };

export function decide(slot: SlotState | undefined, file: HookFile, maxJobMs: number): Decision {
  const key = file.context.jobKey;
  if (file.phase === 'started') {
    if (slot === undefined || !slot.running || slot.context.jobKey === key) return { accept: true, action: 'ci_job_started' };
    if (file.time - slot.startedAt > maxJobMs) return { accept: true, action: 'ci_job_started' };
    return { accept: false, reason: `runner ${file.context.runner} already runs job ${slot.context.jobKey}; a started hook for ${key} does not replace it` };
  }
  if (slot === undefined || !slot.running) return { accept: false, reason: `no job runs on runner ${file.context.runner}; a completed hook for ${key} has nothing to end` };
  if (slot.context.jobKey !== key) return { accept: false, reason: `runner ${file.context.runner} runs job ${slot.context.jobKey}, not ${key}` };
  return { accept: true, action: 'ci_job_finished' };
}

/** One job's time on its slot, from its started hook to its completed hook (or the next started hook). */
export interface JobSpan {
  context: JobContext;
  startedAt: number;
  /** The completed hook's time; undefined while the job runs. */
  endedAt?: number;
  /**
   * False when the job took over a slot whose job never sent its completed hook (it outlived
   * maxJobMs): that job may still write, so a time inside this span does not tell the two apart.
   */
  alone: boolean;
}

/** Spans kept per slot: enough for the lines of recent jobs that are read late. */
const spansPerSlot = 32;

export class JobRegistry {
  #slots = new Map<string, SlotState>();
  #spans = new Map<string, JobSpan[]>();
  readonly maxJobMs: number;

  constructor(maxJobMs: number) {
    this.maxJobMs = maxJobMs;
  }

  /** Applies an accepted hook (and records the job's span); returns the decision either way. */
  apply(file: HookFile): Decision {
    const runner = file.context.runner;
    const slot = this.#slots.get(runner);
    const decision = decide(slot, file, this.maxJobMs);
    // Only a slot a started hook was accepted for gets spans: refused files cannot grow the map.
    const spans = this.#spans.get(runner) ?? [];
    if (decision.accept && file.phase === 'started') this.#spans.set(runner, spans);
    const open = spans.at(-1)?.endedAt === undefined ? spans.at(-1) : undefined;
    if (!decision.accept) {
      // Another job says it starts while this one runs: its completed hook was lost, or one of the
      // two lies. From now on a line's time no longer tells which job wrote it.
      if (file.phase === 'started' && open !== undefined) open.endedAt = file.time;
      return decision;
    }
    if (file.phase === 'started') {
      // A started hook sent again for the job that runs (the agent restarted) keeps its span.
      const again = slot?.running === true && slot.context.jobKey === file.context.jobKey && open !== undefined;
      if (!again) {
        const takesOver = slot?.running === true;
        if (open !== undefined) open.endedAt = file.time;
        spans.push({ context: file.context, startedAt: file.time, alone: !takesOver });
        if (spans.length > spansPerSlot) spans.shift();
      }
      this.#slots.set(runner, { context: file.context, running: true, startedAt: file.time });
    } else if (slot !== undefined) {
      // A finished job's context stays on its slot until the next job starts: its last lines are
      // often read after the completed hook ran.
      slot.running = false;
      if (open !== undefined) open.endedAt = file.time;
    }
    return decision;
  }

  /**
   * The job that ran on `runner` for the whole second that starts at `ms` (a line's own time, which
   * may be cut to the second): its started hook at or before `ms`, its completed hook (if any) at
   * or after `ms` + 1 s. Undefined when no job ran alone on the slot then.
   */
  jobAt(runner: string, ms: number): JobContext | undefined {
    for (const span of this.#spans.get(runner) ?? []) {
      if (span.alone && span.startedAt <= ms && (span.endedAt === undefined || ms + 1000 <= span.endedAt)) return span.context;
    }
    return undefined;
  }

  /** The latest job, on any slot, whose hook gave it this `cicd.pipeline.run.id`. */
  jobByRunId(runId: string): JobContext | undefined {
    let found: JobSpan | undefined;
    for (const spans of this.#spans.values()) {
      for (const span of spans) {
        if (span.context.attributes[cicdAttr.pipelineRunId] === runId && (found === undefined || span.startedAt > found.startedAt)) found = span;
      }
    }
    return found?.context;
  }

  /** The only slot's name when exactly one slot is known. */
  soleRunner(): string | undefined {
    if (this.#slots.size !== 1) return undefined;
    for (const runner of this.#slots.keys()) return runner;
    return undefined;
  }

  /** The context of the job on `runner` (the latest, running or just finished). */
  contextOf(runner: string): JobContext | undefined {
    return this.#slots.get(runner)?.context;
  }

  /** The only slot's context when exactly one slot is known; undefined when none or several (no guessing). */
  soleContext(): JobContext | undefined {
    if (this.#slots.size !== 1) return undefined;
    for (const s of this.#slots.values()) return s.context;
    return undefined;
  }
}
