// The stop signals of `agent run` and `aggregator run`, with real signals to a real process: SIGHUP
// is logged and the process runs on; SIGTERM then stops it the graceful way.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';

const script = `
import { onStopSignal } from ${JSON.stringify(new URL('../../../core/stop-signal.ts', import.meta.url).href)};
import { createLogger } from ${JSON.stringify(new URL('../../../core/logger.ts', import.meta.url).href)};
const stop = onStopSignal(createLogger({ name: 'test', level: 'info' }));
const alive = setInterval(() => {}, 1000);
console.log('ready');
const signal = await stop.received;
console.log('stopping on ' + signal);
clearInterval(alive);
`;

void test('SIGHUP is logged and ignored; SIGTERM then starts the graceful stop', async (t) => {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  // Our log lines go to stderr, the script's own to stdout: both are read.
  let out = '';
  const exit = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const ended = async (): Promise<never> => {
    const [code, signal] = await exit;
    throw new Error(`the process ended (code ${String(code)}, signal ${String(signal)}) with: ${out}`);
  };
  const seen = async (text: string): Promise<void> => {
    while (!out.includes(text)) await Promise.race([once(child.stdout, 'data'), once(child.stderr, 'data'), ended()]);
  };
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (out += chunk));
  }
  await seen('ready');
  child.kill('SIGHUP');
  await seen('SIGHUP ignored');
  assert.equal(child.exitCode, null, 'still running after SIGHUP');
  assert.equal(child.signalCode, null);
  child.kill('SIGTERM');
  const [code] = await exit;
  assert.equal(code, 0);
  assert.match(out, /stopping on SIGTERM/);
});
