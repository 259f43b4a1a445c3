// The registry's decisions: which hook is taken, which is refused, and which job's context a
// runner slot carries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HookFile } from '../../../../agent/sources/job-hook/hook-file.ts';
import { JobRegistry } from '../../../../agent/sources/job-hook/job-registry.ts';

function hook(phase: 'started' | 'completed', runner: string, jobKey: string, time: number): HookFile {
  return { v: 1, phase, pid: 1, time, context: { ci: 'gitlab', runner, jobKey, attributes: { 'cicd.pipeline.task.run.id': jobKey, 'cicd.pipeline.run.id': jobKey } } };
}

test('started takes a free slot; completed of the same job ends it; the context stays until the next job', () => {
  const r = new JobRegistry(3_600_000);
  assert.deepEqual(r.apply(hook('started', 'r1', 'A', 1000)), { accept: true, action: 'ci_job_started' });
  assert.equal(r.contextOf('r1')?.jobKey, 'A');
  assert.deepEqual(r.apply(hook('completed', 'r1', 'A', 2000)), { accept: true, action: 'ci_job_finished' });
  assert.equal(r.contextOf('r1')?.jobKey, 'A', 'late lines of A still get its context');
  assert.equal(r.apply(hook('started', 'r1', 'B', 3000)).accept, true);
  assert.equal(r.contextOf('r1')?.jobKey, 'B');
});

test('a job cannot take over or end another job running on its slot', () => {
  const r = new JobRegistry(3_600_000);
  r.apply(hook('started', 'r1', 'A', 1000));
  const takeover = r.apply(hook('started', 'r1', 'EVIL', 2000));
  assert.equal(takeover.accept, false);
  assert.match(takeover.accept ? '' : takeover.reason, /already runs job A/);
  assert.equal(r.apply(hook('completed', 'r1', 'EVIL', 2500)).accept, false);
  assert.equal(r.contextOf('r1')?.jobKey, 'A');
  assert.equal(r.apply(hook('completed', 'r2', 'A', 2600)).accept, false, 'nothing runs on r2');
});

test('a slot whose job outlived max_job_seconds takes a new job (the runner died without its completed hook)', () => {
  const r = new JobRegistry(10_000);
  r.apply(hook('started', 'r1', 'A', 1000));
  assert.equal(r.apply(hook('started', 'r1', 'B', 5000)).accept, false);
  assert.equal(r.apply(hook('started', 'r1', 'B', 12_000)).accept, true);
  assert.equal(r.contextOf('r1')?.jobKey, 'B');
});

test('soleContext only when exactly one slot is known', () => {
  const r = new JobRegistry(10_000);
  assert.equal(r.soleContext(), undefined);
  r.apply(hook('started', 'r1', 'A', 1000));
  assert.equal(r.soleContext()?.jobKey, 'A');
  r.apply(hook('started', 'r2', 'B', 1000));
  assert.equal(r.soleContext(), undefined);
});

test('jobAt: the job whose span holds the whole second; none between jobs, after a refused start, or on a slot taken over', () => {
  const r = new JobRegistry(10_000);
  r.apply(hook('started', 'r1', 'A', 1000));
  r.apply(hook('completed', 'r1', 'A', 5000));
  r.apply(hook('started', 'r1', 'B', 8000));
  assert.equal(r.jobAt('r1', 1000)?.jobKey, 'A');
  assert.equal(r.jobAt('r1', 4000)?.jobKey, 'A');
  assert.equal(r.jobAt('r1', 4500), undefined, 'the second may end after A\'s completed hook');
  assert.equal(r.jobAt('r1', 6000), undefined, 'between jobs');
  assert.equal(r.jobAt('r1', 500), undefined, 'before any job');
  assert.equal(r.jobAt('r1', 9000)?.jobKey, 'B');
  assert.equal(r.jobAt('r2', 9000), undefined);
  // Another job claims the slot while B runs: from then on, a time no longer tells them apart.
  assert.equal(r.apply(hook('started', 'r1', 'C', 12_000)).accept, false);
  assert.equal(r.jobAt('r1', 10_000)?.jobKey, 'B');
  assert.equal(r.jobAt('r1', 13_000), undefined);
  // B outlived max_job_seconds: D takes the slot, but B may still be writing.
  r.apply(hook('started', 'r1', 'D', 30_000));
  assert.equal(r.contextOf('r1')?.jobKey, 'D');
  assert.equal(r.jobAt('r1', 31_000), undefined);
  assert.equal(r.jobByRunId('D')?.jobKey, 'D', 'an id still names it');
  assert.equal(r.soleRunner(), 'r1');
});
