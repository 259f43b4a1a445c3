// The journald source: runs `journalctl --follow --output=json` and turns each entry into a record.
// Why journalctl and not a library: it is on every systemd host, reads every journal format
// version, and handles rotation, vacuuming and inotify itself.
//
// Resuming: `--cursor=<saved>` (inclusive) rather than `--after-cursor`, because journalctl 252's
// --after-cursor skips two entries after seeking and so silently drops the first entry when the
// saved one is gone (vacuumed) or does not match its filter. We drop the first entry ourselves when
// it is the saved one; when it is not, the saved entry is gone and a gap record reports it.
// Filtering (units, identifiers) is done here, not with journalctl matches, so every entry passes
// by and the saved cursor moves through the entries the filter skips. docs/sources.md has the rest.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { JournaldSourceConfig } from '../../../config/schema.ts';
import { CiAuditError } from '../../../core/errors.ts';
import type { Logger } from '../../../core/logger.ts';
import { SinkWrites } from '../sink-writes.ts';
import type { RecordSink, Source, SourceRecord, WriteResult } from '../source.ts';
import { CursorStore, cursorPath, readCursor } from './cursor-store.ts';
import { CursorTracker } from './cursor-tracker.ts';
import { gapRecord, journalFields, journalRecord, keepEntry, parseJournalLine, sameEntry, validCursor } from './entry.ts';

export interface JournaldSourceOptions {
  config: JournaldSourceConfig;
  agentId: string;
  stateDir: string;
  logger: Logger;
}

const NEWLINE = 0x0a;
const firstRestartDelayMs = 250;
const maxRestartDelayMs = 30_000;

type Child = ChildProcessByStdio<null, Readable, Readable>;

/** journalctl's arguments to follow from `resume` (inclusive), or from the start position. Pure. */
export function journalctlArgs(config: Pick<JournaldSourceConfig, 'directory' | 'start_at'>, resume: string | undefined): string[] {
  const args = ['--follow', '--output=json', '--all', '--no-pager', '--quiet', `--output-fields=${journalFields.join(',')}`];
  if (config.directory !== undefined) args.push(`--directory=${config.directory}`);
  if (resume !== undefined) args.push(`--cursor=${resume}`);
  else args.push(config.start_at === 'end' ? '--lines=0' : '--lines=all');
  return args;
}

export class JournaldSource implements Source {
  readonly id: string;
  #config: JournaldSourceConfig;
  #agentId: string;
  #stateDir: string;
  #logger: Logger;
  #sink: RecordSink | undefined;
  #store: CursorStore | undefined;
  #tracker: CursorTracker | undefined;
  #child: Child | undefined;
  /** A journalctl spawned and not yet running (before its 'spawn' event). */
  #spawning: Child | undefined;
  /** Settles once the latest #run got its child running, or killed it because the source stopped meanwhile. */
  #launched: Promise<void> = Promise.resolve();
  #consuming: Promise<void> | undefined;
  /** Cursor of the last entry read (emitted or skipped): where a restarted journalctl resumes. */
  #lastSeen: string | undefined;
  /** The entry journalctl's first line should be (it resumes inclusively); checked once per run. */
  #expectFirst: string | undefined;
  #restartDelayMs = firstRestartDelayMs;
  #restartTimer: NodeJS.Timeout | undefined;
  #stopping = false;
  #writes = new SinkWrites();
  #stopped: Promise<void> | undefined;
  #closed: Promise<void> | undefined;

  constructor(options: JournaldSourceOptions) {
    this.id = options.config.id;
    this.#config = options.config;
    this.#agentId = options.agentId;
    this.#stateDir = options.stateDir;
    this.#logger = options.logger.child({ source: options.config.id });
  }

  /** The saved (acknowledged) cursor. For tests and status output. */
  get committedCursor(): string | undefined {
    return this.#tracker?.committed;
  }

  async start(sink: RecordSink): Promise<void> {
    if (this.#sink !== undefined) throw new Error(`journald source ${this.id} started twice`);
    this.#sink = sink;
    const file = cursorPath(this.#stateDir, this.id);
    let saved = await readCursor(file);
    if (saved !== undefined && !validCursor(saved)) {
      this.#logger.warn(
        { code: 'CIA_ERR_SOURCE_CHECKPOINT', file, cursor: saved },
        'the saved journald cursor is malformed; reading the journal from the beginning (entries may be sent again, under the same ids)',
      );
      saved = undefined;
    }
    const store = new CursorStore(file, this.id, this.#logger, saved);
    this.#store = store;
    this.#tracker = new CursorTracker(saved, (cursor) => {
      if (this.#closed === undefined) store.set(cursor);
    });
    this.#lastSeen = saved;
    await this.#run(saved, saved === undefined ? this.#config.start_at : 'beginning');
    this.#logger.info({ resumed: saved !== undefined, directory: this.#config.directory ?? 'system journal' }, 'journald source started');
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    this.#writes.releaseAll();
    this.#child?.kill('SIGTERM');
    // A restart may be between spawn() and the child's 'spawn' event: #run sees #stopping then,
    // and does not consume its output; it is killed here already and waited for there.
    this.#spawning?.kill('SIGTERM');
    await this.#launched;
    await this.#consuming;
  }

  async #close(): Promise<void> {
    await this.stop();
    await this.#store?.flush();
    this.#logger.info({ cursor: this.#store?.cursor }, 'journald source closed');
  }

  /**
   * Starts journalctl; rejects with CIA_ERR_SOURCE_JOURNAL when it cannot be run at all. When the
   * source stopped while it was being started, the new journalctl is killed, its exit awaited, and
   * its output never read.
   */
  async #run(resume: string | undefined, startAt: JournaldSourceConfig['start_at']): Promise<void> {
    let launched!: () => void;
    // Set before spawn(), so a stop() from here on waits for this run's child too.
    this.#launched = new Promise<void>((resolve) => (launched = resolve));
    try {
      await this.#launch(resume, startAt);
    } finally {
      launched();
    }
  }

  async #launch(resume: string | undefined, startAt: JournaldSourceConfig['start_at']): Promise<void> {
    const path = this.#config.journalctl_path;
    const child: Child = spawn(path, journalctlArgs({ directory: this.#config.directory, start_at: startAt }, resume), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#spawning = child;
    const stderr: string[] = [];
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      stderr.push(text);
      if (stderr.length > 20) stderr.shift();
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('close', (code, signal) => resolve({ code, signal })),
    );
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (cause) =>
        reject(
          new CiAuditError('CIA_ERR_SOURCE_JOURNAL', `cannot run ${path} for journald source ${this.id}: ${cause.message}; install systemd's journalctl or set journalctl_path`, {
            cause,
            details: { source: this.id, journalctl_path: path },
          }),
        ),
      );
    }).finally(() => {
      this.#spawning = undefined;
    });
    if (this.#stopping) {
      // stop() came while journalctl was being started: it must not outlive the source, nor its
      // first entry be written after stop(). Its output is dropped, so that its pipe closes.
      child.kill('SIGTERM');
      child.stdout.resume();
      await exited;
      return;
    }
    this.#child = child;
    this.#expectFirst = resume;
    this.#consuming = this.#consume(child).then(async (read) => {
      const { code, signal } = await exited;
      if (this.#stopping) return;
      this.#restartAfterExit(code, signal, stderr.join('').trim().slice(-2000), read);
    });
  }

  #restartAfterExit(code: number | null, signal: NodeJS.Signals | null, stderr: string, entriesRead: number): void {
    if (entriesRead > 0) this.#restartDelayMs = firstRestartDelayMs;
    let resume = this.#lastSeen;
    if (entriesRead === 0 && resume !== undefined && /cursor/i.test(stderr)) {
      // journalctl refused the cursor itself: following it again would fail forever.
      this.#logger.warn(
        { code: 'CIA_ERR_SOURCE_GAP', cursor: resume, stderr },
        'journalctl cannot seek to the saved cursor; reading the journal from the beginning (entries may be sent again, under the same ids)',
      );
      resume = undefined;
      this.#lastSeen = undefined;
    }
    const delay = this.#restartDelayMs;
    this.#restartDelayMs = Math.min(maxRestartDelayMs, delay * 2);
    this.#logger.warn(
      { code: 'CIA_ERR_SOURCE_JOURNAL', exitCode: code, signal, stderr, restartInMs: delay, cursor: resume },
      'journalctl exited unexpectedly; restarting it from the last entry read',
    );
    this.#restartTimer = setTimeout(() => {
      if (this.#stopping) return;
      this.#run(resume, 'beginning').catch((err: unknown) => {
        if (this.#stopping) return;
        this.#logger.error({ code: 'CIA_ERR_SOURCE_JOURNAL', err: (err as Error).message }, 'cannot restart journalctl; trying again');
        this.#restartAfterExit(null, null, (err as Error).message, 0);
      });
    }, delay);
  }

  /**
   * Reads journalctl's output line by line. `for await` reads the next chunk only after the
   * previous one was handled, so while `sink.write` waits the pipe fills and journalctl blocks:
   * that is the backpressure. Resolves with the number of entries read when the output ends.
   */
  async #consume(child: Child): Promise<number> {
    let read = 0;
    let rest: Buffer | undefined;
    try {
      for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
        let data = rest === undefined ? chunk : Buffer.concat([rest, chunk]);
        let start = 0;
        let nl: number;
        while ((nl = data.indexOf(NEWLINE, start)) !== -1) {
          const line = data.toString('utf8', start, nl);
          start = nl + 1;
          if (line.trim() === '') continue;
          if (await this.#handle(line)) read++;
          if (this.#stopping) return read;
        }
        data = data.subarray(start);
        rest = data.length === 0 ? undefined : Buffer.from(data);
      }
    } catch (err) {
      if (!this.#stopping) this.#logger.warn({ code: 'CIA_ERR_SOURCE_JOURNAL', err: (err as Error).message }, 'cannot read journalctl output');
    }
    return read;
  }

  /** Handles one output line; true when it was an entry. */
  async #handle(line: string): Promise<boolean> {
    const parsed = parseJournalLine(line);
    if (!parsed.ok) {
      // Without a cursor there is nothing to resume from or acknowledge; say so and go on.
      this.#logger.warn({ code: 'CIA_ERR_SOURCE_READ', reason: parsed.reason, line: line.slice(0, 200) }, 'journalctl printed a line that is not a journal entry; skipped');
      return false;
    }
    const entry = parsed.entry;
    const tracker = this.#tracker!;
    const expected = this.#expectFirst;
    if (expected !== undefined) {
      this.#expectFirst = undefined;
      // journalctl resumed at the saved entry itself, which was already read: drop it.
      if (sameEntry(entry.cursor, expected)) return true;
      this.#logger.warn(
        { code: 'CIA_ERR_SOURCE_GAP', savedCursor: expected, nextCursor: entry.cursor },
        'the saved journald cursor is no longer in the journal (vacuumed or rotated while the agent was not reading); entries in between are lost; continuing with the oldest entry left',
      );
      const ctx = { agentId: this.#agentId, dataset: this.#config.dataset, sourceId: this.id };
      await this.#write(gapRecord({ savedCursor: expected, nextCursor: entry.cursor }, ctx, Date.now(), tracker.track(expected)));
      if (this.#stopping) return true;
    }
    this.#lastSeen = entry.cursor;
    if (!keepEntry(entry, this.#config)) {
      tracker.skip(entry.cursor);
      return true;
    }
    const record = journalRecord(entry, { agentId: this.#agentId, dataset: this.#config.dataset }, Date.now(), tracker.track(entry.cursor));
    await this.#write(record);
    return true;
  }

  #write(record: SourceRecord): WriteResult {
    return this.#writes.write(this.#sink!, record);
  }
}
