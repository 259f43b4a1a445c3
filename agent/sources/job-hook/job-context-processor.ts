// LogRecordProcessor that puts the current job's context on the lines of that job's own logs
// (files matching a configured `job_hooks.job_logs` glob), so a search for one run returns its
// whole log. Fields a parser already set from the line are kept.
import { matchesGlob } from 'node:path';
import type { LogRecordProcessor, ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import { recordAttr } from '../../../core/wire.ts';
import type { JobRegistry } from './job-registry.ts';

export interface JobLogConfig {
  /** Glob of the job's log files, e.g. `/home/runner/actions-runner/_diag/pages/*.log`. */
  path: string;
  /** Runner slot whose job writes these files; default: the only slot the hooks reported. */
  runner?: string | undefined;
}

export class JobContextProcessor implements LogRecordProcessor {
  #registry: JobRegistry;
  #logs: readonly JobLogConfig[];
  /** path -> matching config entry (null: none); bounded, since paths repeat for many lines. */
  #matched = new Map<string, JobLogConfig | null>();

  constructor(registry: JobRegistry, logs: readonly JobLogConfig[]) {
    this.#registry = registry;
    this.#logs = logs;
  }

  onEmit(record: ReadWriteLogRecord): void {
    if (this.#logs.length === 0) return;
    const path = record.attributes[recordAttr.logFilePath];
    if (typeof path !== 'string') return;
    let entry = this.#matched.get(path);
    if (entry === undefined) {
      entry = this.#logs.find((l) => matchesGlob(path, l.path)) ?? null;
      if (this.#matched.size > 10_000) this.#matched.clear();
      this.#matched.set(path, entry);
    }
    if (entry === null) return;
    const context = entry.runner === undefined ? this.#registry.soleContext() : this.#registry.contextOf(entry.runner);
    if (context === undefined) return;
    for (const key in context.attributes) {
      if (record.attributes[key] === undefined) record.setAttribute(key, context.attributes[key]);
    }
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
