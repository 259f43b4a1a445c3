// bin/relaunch.js in a real process: the process is replaced by one with the options and the
// environment variables it lacked, and what the user set is left as the user set it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const relaunchUrl = new URL('../../../bin/relaunch.js', import.meta.url).href;
// Prints what the process ended up with, after relaunch() returned (in the replaced process).
const script = `
import { relaunch } from ${JSON.stringify(relaunchUrl)};
relaunch(['--max-semi-space-size=4'], { CIA_TEST_RELAUNCH_A: 'from-relaunch', CIA_TEST_RELAUNCH_B: 'from-relaunch' });
console.log(JSON.stringify({ execArgv: process.execArgv, a: process.env.CIA_TEST_RELAUNCH_A, b: process.env.CIA_TEST_RELAUNCH_B }));
`;

async function run(nodeOptions: string[], env: NodeJS.ProcessEnv): Promise<{ execArgv: string[]; a?: string; b?: string }> {
  const { stdout } = await promisify(execFile)(process.execPath, [...nodeOptions, '--input-type=module', '-e', script], {
    env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1', ...env },
  });
  return JSON.parse(stdout) as { execArgv: string[]; a?: string; b?: string };
}

test('the process is relaunched with the missing options and environment variables', async () => {
  const result = await run([], { CIA_TEST_RELAUNCH_B: 'from-user' });
  assert.ok(result.execArgv.includes('--max-semi-space-size=4'), result.execArgv.join(' '));
  assert.equal(result.a, 'from-relaunch');
  assert.equal(result.b, 'from-user');
});

test('options and variables the user set are left as the user set them', async () => {
  const result = await run(['--max-semi-space-size=8'], { CIA_TEST_RELAUNCH_A: 'user-a', CIA_TEST_RELAUNCH_B: 'user-b' });
  assert.deepEqual(result.execArgv.filter((a) => a.startsWith('--max-semi-space-size')), ['--max-semi-space-size=8']);
  assert.equal(result.a, 'user-a');
  assert.equal(result.b, 'user-b');
});
