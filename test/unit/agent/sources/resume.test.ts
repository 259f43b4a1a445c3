import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fingerprintOf } from '../../../../agent/sources/file/fingerprint.ts';
import { resumePosition } from '../../../../agent/sources/file/resume.ts';

const content = Buffer.from('Running with gitlab-runner 17.0\nstep 1\n');
const checkpoint = { dev: '1', ino: '2', path: '/l/job.log', offset: 20, generation: 3, fingerprint: fingerprintOf(content.subarray(0, 10)) };

void test('a file whose first bytes match the fingerprint resumes at its checkpoint (the fingerprint may be shorter)', () => {
  assert.deepEqual(resumePosition(checkpoint, { prefix: content, size: content.length }, 'beginning', true), { offset: 20, generation: 3 });
});

void test('another file at a reused inode is read from 0 in a new generation', () => {
  const other = Buffer.from('Something else entirely here\n');
  assert.deepEqual(resumePosition(checkpoint, { prefix: other, size: 500 }, 'beginning', true), { offset: 0, generation: 4, reason: 'replaced' });
  // Shorter than the stored fingerprint: cannot be the same file.
  assert.equal(resumePosition(checkpoint, { prefix: content.subarray(0, 5), size: 5 }, 'beginning', true).reason, 'replaced');
});

void test('a checkpoint beyond the end of the file reads it again from 0, never sends nothing', () => {
  assert.deepEqual(resumePosition(checkpoint, { prefix: content.subarray(0, 15), size: 15 }, 'end', true), { offset: 0, generation: 4, reason: 'beyond_eof' });
});

void test('start_at end applies to files present at start-up only', () => {
  assert.deepEqual(resumePosition(undefined, { prefix: content, size: 99 }, 'end', true), { offset: 99, generation: 0 });
  assert.deepEqual(resumePosition(undefined, { prefix: content, size: 99 }, 'end', false), { offset: 0, generation: 0 });
});
