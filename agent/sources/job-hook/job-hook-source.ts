// Source that reads the job hooks' files from the spool folder (hook-command.ts writes them),
// checks who wrote each, applies it to the JobRegistry and emits a job started/finished event
// (dataset `ci`). Trust comes from the file's owner: only files owned by a uid in
// `job_hooks.trusted_uids` are taken, and only regular files (no symlinks).
//
// Durability: a file is deleted only after the aggregator acknowledged its record. A started file
// stays until its job's completed record is acknowledged, so after a restart the agent reads both
// again and knows which job runs where; records carry ids derived from the file, so the resend is
// not a duplicate in the index.
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { AttributeValue } from '@opentelemetry/api';
import { CiAuditError } from '../../../core/errors.ts';
import type { Logger } from '../../../core/logger.ts';
import { cicdAttr, ecsAttr, recordAttr } from '../../../core/wire.ts';
import type { RecordSink, Source } from '../source.ts';
import { hookFileName, maxHookFileBytes, parseHookFile, type HookFile } from './hook-file.ts';
import { jobAttr } from './job-context.ts';
import type { JobRegistry } from './job-registry.ts';

export interface JobHookSourceOptions {
  spoolDir: string;
  trustedUids: readonly number[];
  registry: JobRegistry;
  agentId: string;
  logger: Logger;
  pollIntervalMs?: number;
}

export class JobHookSource implements Source {
  readonly id = 'job_hooks';
  #o: JobHookSourceOptions;
  #sink: RecordSink | undefined;
  /** Files emitted in this process (their records may still await an ack). */
  #seen = new Set<string>();
  /** runner slot -> the started file of its job, deleted when the job's completed record is acked. */
  #startedFile = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #stopped = false;

  constructor(options: JobHookSourceOptions) {
    this.#o = options;
  }

  async start(sink: RecordSink): Promise<void> {
    this.#sink = sink;
    try {
      await mkdir(this.#o.spoolDir, { recursive: true });
      const st = await lstat(this.#o.spoolDir);
      // Created by us: sticky and writable for the runners' users, not listable by them
      // (a job cannot see or delete another job's file). An existing folder keeps its mode.
      if (st.uid === process.getuid?.() && (st.mode & 0o7777) === (0o777 & ~process.umask())) await chmod(this.#o.spoolDir, 0o1733);
    } catch (cause) {
      throw new CiAuditError('CIA_ERR_SOURCE_READ', `cannot create the job hook folder ${this.#o.spoolDir} (job_hooks.spool_dir): ${(cause as Error).message}`, {
        cause,
        details: { option: 'job_hooks.spool_dir', path: this.#o.spoolDir },
      });
    }
    await this.scan();
    const tick = (): void => {
      if (this.#stopped) return;
      this.#timer = setTimeout(() => {
        void this.scan().finally(tick);
      }, this.#o.pollIntervalMs ?? 500);
    };
    tick();
  }

  /** Reads the spool folder once (also called by tests to avoid waiting for the poll). */
  scan(): Promise<void> {
    this.#scanning ??= this.#scan().finally(() => {
      this.#scanning = undefined;
    });
    return this.#scanning;
  }

  async #scan(): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(this.#o.spoolDir)).filter((n) => hookFileName.test(n)).sort();
    } catch (err) {
      this.#o.logger.warn({ code: 'CIA_ERR_SOURCE_READ', path: this.#o.spoolDir, err: (err as Error).message }, 'cannot list the job hook folder');
      return;
    }
    for (const name of names) {
      if (this.#stopped || this.#sink === undefined) return;
      if (this.#seen.has(name)) continue;
      this.#seen.add(name);
      await this.#take(name, this.#sink);
    }
  }

  async #take(name: string, sink: RecordSink): Promise<void> {
    const path = join(this.#o.spoolDir, name);
    let uid = -1;
    let text = '';
    let problem: string | undefined;
    try {
      const st = await lstat(path);
      uid = st.uid;
      if (!st.isFile()) problem = 'not a regular file';
      else if (!this.#o.trustedUids.includes(st.uid)) problem = `owned by uid ${st.uid}, which is not in job_hooks.trusted_uids`;
      else if (st.size > maxHookFileBytes) problem = `larger than ${maxHookFileBytes} bytes`;
      else text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      problem = `unreadable: ${(err as NodeJS.ErrnoException).code ?? 'error'}`;
    }
    let file: HookFile | undefined;
    if (problem === undefined) {
      const parsed = parseHookFile(text);
      if (typeof parsed === 'string') problem = parsed;
      else file = parsed;
    }
    const id = `h:${createHash('sha256').update(this.#o.agentId).update('\0').update(name).update('\0').update(text).digest('hex').slice(0, 40)}`;
    const base: Record<string, AttributeValue> = {
      [recordAttr.dataset]: 'ci',
      [recordAttr.recordId]: id,
      [recordAttr.logFilePath]: path,
      [ecsAttr.eventKind]: 'event',
      [jobAttr.hookUid]: uid,
      [jobAttr.hookPid]: Number(hookFileName.exec(name)?.[2] ?? 0),
    };
    const observedAt = Date.now();

    if (file === undefined || problem !== undefined) {
      this.#o.logger.warn({ code: 'CIA_ERR_HOOK_REJECTED', file: path, reason: problem }, 'job hook file refused');
      await sink.write({
        body: `job hook file ${name} refused: ${problem ?? 'invalid'}`,
        attributes: { ...base, [ecsAttr.eventAction]: 'ci_job_hook_refused', [ecsAttr.eventCategory]: ['process'], [ecsAttr.eventType]: ['denied'], [ecsAttr.eventOutcome]: 'failure', [ecsAttr.eventReason]: problem ?? 'invalid' },
        observedAt,
        ack: () => void this.#remove(path),
      });
      return;
    }

    const decision = this.#o.registry.apply(file);
    const ctx = file.context;
    const attributes: Record<string, AttributeValue> = { ...base, ...ctx.attributes, [jobAttr.phase]: file.phase };
    if (!decision.accept) {
      this.#o.logger.warn({ code: 'CIA_ERR_HOOK_REJECTED', file: path, reason: decision.reason }, 'job hook refused');
      // The claimed context is kept under its own prefix only: it must not be found as the job's.
      const claimed: Record<string, AttributeValue> = { ...base, [jobAttr.phase]: file.phase, 'ci_audit.job.claimed_key': ctx.jobKey, 'ci_audit.job.claimed_runner': ctx.runner };
      await sink.write({
        body: `job hook refused: ${decision.reason}`,
        attributes: { ...claimed, [ecsAttr.eventAction]: 'ci_job_hook_refused', [ecsAttr.eventCategory]: ['process'], [ecsAttr.eventType]: ['denied'], [ecsAttr.eventOutcome]: 'failure', [ecsAttr.eventReason]: decision.reason },
        timestamp: file.time,
        observedAt,
        ack: () => void this.#remove(path),
      });
      return;
    }
    let ack: () => void;
    if (file.phase === 'started') {
      const previous = this.#startedFile.get(ctx.runner);
      this.#startedFile.set(ctx.runner, path);
      attributes[ecsAttr.eventType] = ['start'];
      attributes[ecsAttr.eventOutcome] = 'success';
      // A job that never completed (runner died) was superseded: its started file can go.
      ack = () => {
        if (previous !== undefined && previous !== path) void this.#remove(previous);
      };
    } else {
      const started = this.#startedFile.get(ctx.runner);
      this.#startedFile.delete(ctx.runner);
      attributes[ecsAttr.eventType] = ['end'];
      if (file.result !== undefined) {
        attributes[cicdAttr.taskRunResult] = file.result;
        attributes[ecsAttr.eventOutcome] = file.result === 'success' ? 'success' : 'failure';
      } else {
        attributes[ecsAttr.eventOutcome] = 'unknown';
      }
      ack = () => {
        void this.#remove(path);
        if (started !== undefined) void this.#remove(started);
      };
    }
    attributes[ecsAttr.eventAction] = decision.action;
    attributes[ecsAttr.eventCategory] = ['process'];
    await sink.write({
      body: `${decision.action === 'ci_job_started' ? 'job started' : 'job finished'}: ${ctx.ci} job ${ctx.jobKey} on runner ${ctx.runner}${file.result === undefined ? '' : ` (${file.result})`}`,
      attributes,
      timestamp: file.time,
      observedAt,
      ack,
    });
  }

  async #remove(path: string): Promise<void> {
    try {
      await unlink(path);
      this.#seen.delete(basename(path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#o.logger.warn({ code: 'CIA_ERR_SOURCE_READ', file: path, err: (err as Error).message }, 'cannot delete a handled job hook file');
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#scanning;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
