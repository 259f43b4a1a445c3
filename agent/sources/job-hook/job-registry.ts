// Which job runs on which runner slot, as the hooks said. The decisions are pure (`decide`): a
// started hook takes a free slot (or one whose job ran longer than maxJobMs: a runner that died
// without its completed hook); a completed hook must name the job that runs on its slot. Anything
// else is refused, so a job cannot replace the context of a job already running on its slot, nor
// end it; see docs/runners.md for what this does and does not stop.
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

export class JobRegistry {
  #slots = new Map<string, SlotState>();
  readonly maxJobMs: number;

  constructor(maxJobMs: number) {
    this.maxJobMs = maxJobMs;
  }

  /** Applies an accepted hook; returns the decision either way. */
  apply(file: HookFile): Decision {
    const slot = this.#slots.get(file.context.runner);
    const decision = decide(slot, file, this.maxJobMs);
    if (!decision.accept) return decision;
    if (file.phase === 'started') this.#slots.set(file.context.runner, { context: file.context, running: true, startedAt: file.time });
    // A finished job's context stays on its slot until the next job starts: its last lines are
    // often read after the completed hook ran.
    else if (slot !== undefined) slot.running = false;
    return decision;
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
