import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { LoggerProvider, type LogRecordProcessor, type ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import { buildProcessors } from '../../../../agent/processors/build.ts';

// Deterministic PRNG so a failure can be replayed.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

test('100,000 random and mutated lines through every parser and processor: no exception, every line an event', () => {
  const seeds = ['auth/debian-ubuntu.log', 'auth/rhel-rocky.log', 'auth/alpine-busybox.log', 'ci/github-runner-diag.log', 'ci/gitlab-runner.log', 'ci/jenkins-build.log', 'ci/buildkite-agent.log']
    .flatMap((f) => readFileSync(new URL(`../../../fixtures/${f}`, import.meta.url), 'utf8').split('\n').filter((l) => l !== ''));
  const alphabet = ' :[]=;()"\'.-_/@\\\n\t0123456789abcdefABCDEF\u00e9\u{1F600}\uFFFD';
  const random = rng(4);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const mutate = (line: string): string => {
    const chars = [...line];
    const n = 1 + Math.floor(random() * 4);
    for (let i = 0; i < n; i++) {
      const at = Math.floor(random() * (chars.length + 1));
      const op = random();
      if (op < 0.33) chars.splice(at, 1);
      else if (op < 0.66) chars.splice(at, 0, pick([...alphabet]));
      else chars.splice(at, Math.floor(random() * 8), ...pick(seeds).slice(0, 12));
    }
    return chars.join('');
  };

  const seen: ReadWriteLogRecord[] = [];
  let count = 0;
  const collect: LogRecordProcessor = { onEmit: () => void count++, forceFlush: async () => {}, shutdown: async () => {} };
  const processors = buildProcessors({ order: ['parse', 'user_context', 'static_labels', 'redact'], timezone: 'Europe/Berlin', labels: { team: 'ci' }, passwd_file: '/etc/passwd', redaction: { rules: [] } });
  const logger = new LoggerProvider({ processors: [...processors, collect, { onEmit: (r) => { if (seen.length < 1) seen.push(r); }, forceFlush: async () => {}, shutdown: async () => {} }] }).getLogger('fuzz');
  const total = 100_000;
  for (let i = 0; i < total; i++) {
    let line: string;
    if (i % 4 === 0) line = Array.from({ length: Math.floor(random() * 200) }, () => pick([...alphabet])).join('');
    else line = mutate(pick(seeds));
    const attributes: Record<string, string> = { 'log.file.path': '/var/log/auth.log' };
    if (i % 10 === 0) Object.assign(attributes, { 'journald.MESSAGE': line, 'journald.SYSLOG_IDENTIFIER': pick(['sshd', 'sudo', 'su', 'gitlab-runner', 'x']), 'journald._PID': mutate('123'), 'journald.__REALTIME_TIMESTAMP': mutate('1741079702123456') });
    logger.emit({ body: line, attributes });
  }
  assert.equal(count, total);
  assert.ok(seen[0]?.attributes['ci_audit.parse.status'] !== undefined, 'every record carries its parse status');
});
