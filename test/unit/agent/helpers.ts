// Shared test helpers for the agent: a logger whose lines can be inspected, temp folders, and a
// way to make real SDK log records.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import pino from 'pino';
import { LoggerProvider, type LogRecordProcessor, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { Logger } from '../../../core/logger.ts';
import { agentResource } from '../../../agent/resource.ts';

export interface CapturedLogger {
  logger: Logger;
  lines: Record<string, unknown>[];
}

/** A pino logger that keeps its lines in memory, parsed. */
export function captureLogger(): CapturedLogger {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

export async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ci-audit-agent-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Real SDK log records with the agent's resource, one per body. */
export function makeRecords(bodies: string[]): ReadableLogRecord[] {
  const out: ReadableLogRecord[] = [];
  const keep: LogRecordProcessor = { onEmit: (r) => void out.push(r), forceFlush: () => Promise.resolve(), shutdown: () => Promise.resolve() };
  const provider = new LoggerProvider({ resource: agentResource({ agentId: 'test-agent', hostName: 'runner-1' }), processors: [keep] });
  const logger = provider.getLogger('test');
  for (const body of bodies) logger.emit({ body, attributes: { 'ci_audit.dataset': 'ci' } });
  return out;
}

/** Resolves when `check` returns true, polling every 5 ms; rejects after `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
