// Real parts for the source fault tests: a local OTLP/HTTP receiver that decodes what the agent
// sends (with the aggregator's own decoder) and keeps every record id and body, and the agent run
// as a real child process (`node bin/ci-audit.js agent run`) that the tests SIGKILL.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import type { TestContext } from 'node:test';
import { chainGapAttr, checkpointAttr, recordAttr } from '../../../core/wire.ts';
import { accept, startOtlpReceiver } from '../../helpers/otlp-receiver.ts';

export interface Received {
  id: string;
  body: string;
  attributes: Record<string, unknown>;
}

export interface Receiver {
  url: string;
  records: Received[];
  /**
   * The disk buffer's declarations of damage (`buffer_damaged`): a SIGKILL in the middle of a write
   * can leave a torn entry at a segment's end (Linux stops a large write at a page boundary on a
   * fatal signal). They are not lines: the lines in a torn entry were never acknowledged, so the
   * source reads them again from its checkpoint.
   */
  bufferDamage: Received[];
  /** While true the receiver answers 503: downstream is blocked. */
  blocked: boolean;
  /** Distinct bodies received. */
  bodies(): Set<string>;
}

export async function startReceiver(t: TestContext): Promise<Receiver> {
  const receiver: Receiver = {
    url: '',
    records: [],
    bufferDamage: [],
    blocked: false,
    bodies: () => new Set(receiver.records.map((r) => r.body)),
  };
  receiver.url = await startOtlpReceiver(t, (records, res) => {
    if (receiver.blocked) {
      res.writeHead(503).end();
      return;
    }
    for (const r of records) {
      // What the agent writes about its own chain (integrity issue) is not a line: its signed
      // checkpoints, and the record that resumes the chain after a kill.
      if (r.attributes[checkpointAttr.type] !== undefined || r.attributes[chainGapAttr.reason] === 'unclean_stop') continue;
      const received = { id: JSON.stringify(r.attributes[recordAttr.recordId]), body: typeof r.body === 'string' ? r.body : JSON.stringify(r.body), attributes: r.attributes };
      if (r.attributes[chainGapAttr.reason] === 'buffer_damaged') receiver.bufferDamage.push(received);
      else receiver.records.push(received);
    }
    accept(res);
  });
  return receiver;
}

export interface AgentOptions {
  dir: string;
  include: string[];
  receiverUrl: string;
  source?: Record<string, unknown>;
}

/** Writes the agent's configuration and returns its path. */
export async function writeAgentConfig(o: AgentOptions): Promise<string> {
  const config = {
    agent: { id: 'fault-agent', state_dir: `${o.dir}/state` },
    sources: [{ type: 'file', id: 'logs', include: o.include, dataset: 'ci', poll_interval_ms: 50, ...o.source }],
    output: { url: o.receiverUrl, batch: { max_records: 1000, max_delay_ms: 50 } },
    log: { level: 'warn', format: 'json' },
  };
  const file = `${o.dir}/agent.yaml`;
  // JSON is YAML.
  await writeFile(file, JSON.stringify(config));
  return file;
}

export interface AgentProcess {
  child: ChildProcess;
  /** The agent's log lines (JSON). */
  log: string[];
}

const binary = new URL('../../../bin/ci-audit.js', import.meta.url).pathname;

/**
 * Starts the agent. `unprivileged`: still uid 0 but without the capabilities that let root ignore
 * file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), for tests of file permissions: the
 * tests run as root, whom permissions do not stop. Switching to another user instead would lock
 * that user out of a checkout inside a private (0700) folder, as CI's clones are.
 */
export function spawnAgent(t: TestContext, configFile: string, options: { unprivileged?: boolean } = {}): AgentProcess {
  const args = [binary, 'agent', 'run', '--config', configFile];
  const child =
    options.unprivileged === true
      ? spawn('setpriv', ['--bounding-set=-dac_override,-dac_read_search', process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const keep = (data: Buffer): void => void log.push(...data.toString('utf8').split('\n').filter(Boolean));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, log };
}

export async function sigkill(agent: AgentProcess): Promise<void> {
  if (agent.child.exitCode !== null || agent.child.signalCode !== null) return;
  const exited = once(agent.child, 'exit');
  agent.child.kill('SIGKILL');
  await exited;
}

/** Stops the agent the way a service manager does (SIGTERM) and waits for it to exit. */
export async function sigterm(agent: AgentProcess): Promise<void> {
  if (agent.child.exitCode !== null || agent.child.signalCode !== null) return;
  const exited = once(agent.child, 'exit');
  agent.child.kill('SIGTERM');
  await exited;
}

/** The agent's log lines with this error code, parsed. */
export function logged(agent: AgentProcess, code: string): Record<string, unknown>[] {
  return agent.log.flatMap((line) => {
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      return entry.code === code ? [entry] : [];
    } catch {
      return [];
    }
  });
}

/** Every id names one body, and after dropping duplicate ids each body is there exactly once. */
export function assertExactlyOnceAfterDedup(records: readonly Received[], expected: readonly string[]): { duplicates: number } {
  const byId = new Map<string, string>();
  for (const r of records) {
    const seen = byId.get(r.id);
    if (seen !== undefined) assert.equal(r.body, seen, `id ${r.id} carried two different bodies`);
    else byId.set(r.id, r.body);
  }
  const counts = new Map<string, number>();
  for (const body of byId.values()) counts.set(body, (counts.get(body) ?? 0) + 1);
  const missing = expected.filter((b) => !counts.has(b));
  assert.equal(missing.length, 0, `${missing.length} lines never delivered, first: ${missing.slice(0, 3).join(', ')}`);
  const doubled = [...counts].filter(([, n]) => n > 1);
  assert.equal(doubled.length, 0, `${doubled.length} lines delivered under two ids, first: ${doubled.slice(0, 3).map(([b]) => b.slice(0, 20)).join(', ')}`);
  const wanted = new Set(expected);
  const extra = [...byId].filter(([, body]) => !wanted.has(body));
  assert.equal(extra.length, 0, `${extra.length} records that are no line written, first: ${extra.slice(0, 3).map(([id, b]) => `${id} ${JSON.stringify(b.slice(0, 120))}`).join('; ')}`);
  assert.equal(byId.size, expected.length);
  return { duplicates: records.length - byId.size };
}

/** Resolves when `check` returns true, polling every 20 ms; rejects with `what` after `timeoutMs`. */
export async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `line-<n>` padded with `x` to `width` bytes (without the newline). */
export function numberedLine(prefix: string, n: number, width: number): string {
  const head = `${prefix}-${String(n).padStart(7, '0')} `;
  return head.padEnd(width, 'x');
}
