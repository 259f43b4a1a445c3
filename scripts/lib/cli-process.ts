// Runs the real `ci-audit` command as a child process and reads its JSON log lines from stderr:
// the tests and the quickstart drive what users run (the CLI, its config loading, signals, exit codes).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/ci-audit.js', import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export class CliProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly rawStderr: string[] = [];
  #waiters: { predicate: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  #exited: Promise<number | null>;

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [bin, ...args], {
      env: { ...process.env, LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    createInterface({ input: this.child.stderr! }).on('line', (text) => {
      this.rawStderr.push(text);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        return;
      }
      this.lines.push(line);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.predicate(line)) return true;
        w.resolve(line);
        return false;
      });
    });
    this.child.stdout!.resume();
  }

  /** Resolves with the first log line (past or future) that matches; rejects on timeout or exit. */
  waitForLog(predicate: (l: LogLine) => boolean, timeoutMs = 60_000): Promise<LogLine> {
    const seen = this.lines.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr:\n${this.rawStderr.slice(-30).join('\n')}`)), timeoutMs);
      void this.#exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`process exited (${code}) before a matching log line; stderr:\n${this.rawStderr.slice(-30).join('\n')}`));
      });
      this.#waiters.push({
        predicate,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  get exited(): Promise<number | null> {
    return this.#exited;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null when killed). */
  async stop(graceMs = 15_000): Promise<number | null> {
    if (!this.running) return this.#exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.#exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
