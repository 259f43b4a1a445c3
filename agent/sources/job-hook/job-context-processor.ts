// LogRecordProcessor that puts a job's context on the lines of that job's own logs (files matching
// a configured `job_hooks.job_logs` glob), so a search for one run returns its whole log. Fields a
// parser already set from the line are kept.
//
// Each such file holds one job's lines, so the context is bound to the file, never taken from
// whatever job holds the slot when a line happens to be read (job A's late lines must not get job
// B's user). A file is bound to a job by, in this order:
//   1. an id in its path that the job's hook also reported (Jenkins `jobs/<job>/builds/<n>/log`:
//      the build's BUILD_TAG);
//   2. a line whose own time (set by the `parse` processor, which must come first) falls inside
//      one job's span on the slot, from its started to its completed hook (registry `jobAt`).
// Until its file is bound, a line gets no job's context and `ci_audit.job.attribution:
// uncertain`; so do all lines of a file whose lines fall into two jobs' spans. See docs/runners.md.
import { matchesGlob } from 'node:path';
import type { LogRecordProcessor, ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import { recordAttr } from '../../../core/wire.ts';
import { jenkinsRunIdFromPath } from '../../processors/ci/jenkins.ts';
import { jobAttr, type JobContext } from './job-context.ts';
import type { JobRegistry } from './job-registry.ts';

export interface JobLogConfig {
  /** Glob of the job's log files, e.g. `/home/runner/actions-runner/_diag/pages/*.log`. */
  path: string;
  /** Runner slot whose job writes these files; default: the only slot the hooks reported. */
  runner?: string | undefined;
}

/** What is known of one job log file: the job it is bound to, or that it cannot be bound. */
type Binding = JobContext | 'conflict';

/** Bound on the per-path maps: paths repeat for many lines, but new files keep coming. */
const maxPaths = 10_000;

export class JobContextProcessor implements LogRecordProcessor {
  #registry: JobRegistry;
  #logs: readonly JobLogConfig[];
  /** path -> matching config entry and the Jenkins run id its path names (null: no entry), worked out once per path. */
  #matched = new Map<string, { entry: JobLogConfig; runId: string | undefined } | null>();
  /** path -> the job its lines' times placed it in. */
  #bound = new Map<string, Binding>();

  constructor(registry: JobRegistry, logs: readonly JobLogConfig[]) {
    this.#registry = registry;
    this.#logs = logs;
  }

  onEmit(record: ReadWriteLogRecord): void {
    if (this.#logs.length === 0) return;
    const path = record.attributes[recordAttr.logFilePath];
    if (typeof path !== 'string') return;
    let matched = this.#matched.get(path);
    if (matched === undefined) {
      const entry = this.#logs.find((l) => matchesGlob(path, l.path));
      matched = entry === undefined ? null : { entry, runId: jenkinsRunIdFromPath(path) };
      if (this.#matched.size > maxPaths) this.#matched.clear();
      this.#matched.set(path, matched);
    }
    if (matched === null) return;
    const context = this.#jobOf(record, path, matched.entry, matched.runId);
    if (context === undefined) {
      record.setAttribute(jobAttr.attribution, 'uncertain');
      return;
    }
    for (const key in context.attributes) {
      if (key !== jobAttr.attribution && record.attributes[key] === undefined) record.setAttribute(key, context.attributes[key]);
    }
  }

  #jobOf(record: ReadWriteLogRecord, path: string, entry: JobLogConfig, runId: string | undefined): JobContext | undefined {
    if (runId !== undefined) return this.#registry.jobByRunId(runId);
    const runner = entry.runner ?? this.#registry.soleRunner();
    if (runner === undefined) return undefined;
    const bound = this.#bound.get(path);
    if (bound === 'conflict') return undefined;
    // The pipeline emits a file's line with its time = the time it was read; only the parse
    // processor, having found the line's own time, makes them differ.
    const at = record.hrTime;
    const observed = record.hrTimeObserved;
    const lineTimed = at[0] !== observed[0] || at[1] !== observed[1];
    const job = lineTimed ? this.#registry.jobAt(runner, at[0] * 1000 + Math.floor(at[1] / 1e6)) : undefined;
    if (job === undefined) return bound;
    if (bound === undefined) {
      if (this.#bound.size > maxPaths) this.#bound.clear();
      this.#bound.set(path, job);
      return job;
    }
    if (bound.jobKey === job.jobKey) return bound;
    this.#bound.set(path, 'conflict');
    return undefined;
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
