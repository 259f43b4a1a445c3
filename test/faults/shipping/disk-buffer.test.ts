// The agent's disk buffer with the real agent process, a real local OTLP receiver (the sources'
// harness) and real SIGKILLs: records the aggregator has not taken survive the loss of their source
// files and of the agent itself, a torn segment tail is reported as a gap, not a crash loop, and a
// buffer an earlier agent wrote is sent after an upgrade.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync, appendFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { decodeRecord, type RecordScope } from '../../../agent/buffer/record-codec.ts';
import { encodeEntry, scanEntries } from '../../../agent/buffer/segment-format.ts';
import { recordAttr } from '../../../core/wire.ts';
import { assertExactlyOnceAfterDedup, logged, numberedLine, sigkill, spawnAgent, startReceiver, until, writeAgentConfig } from '../sources/harness.ts';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cia-ship-'));
  await mkdir(join(dir, 'logs'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function lines(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => numberedLine(prefix, i, 100));
}

/** Segment files of the agent's buffer, oldest first. */
function segments(dir: string): string[] {
  const buffer = join(dir, 'state', 'buffer');
  try {
    return readdirSync(buffer).filter((n) => n.startsWith('segment-')).sort().map((n) => join(buffer, n));
  } catch {
    return [];
  }
}

/** Records the agent's buffer holds on disk (read-only look at its segment files). */
function bufferedRecords(dir: string): number {
  let n = 0;
  for (const file of segments(dir)) {
    try {
      n += scanEntries(readFileSync(file), { final: false }).payloads.length;
    } catch {
      // removed meanwhile
    }
  }
  return n;
}

const notGap = (r: { attributes: Record<string, unknown> }): boolean => r.attributes[recordAttr.gap] !== true;

void test('aggregator down while 20,000 lines are written and their files rotated away and deleted: every line delivered exactly once after it returns', async (t) => {
  const dir = await tempDir(t);
  const receiver = await startReceiver(t);
  receiver.blocked = true;
  const config = await writeAgentConfig({ dir, include: [`${dir}/logs/*.log`], receiverUrl: receiver.url });
  const agent = spawnAgent(t, config);
  const log = `${dir}/logs/job.log`;
  const first = lines('first', 10_000);
  const second = lines('second', 10_000);
  writeFileSync(log, first.join('\n') + '\n');
  await until(() => bufferedRecords(dir) >= 5_000, 60_000, 'the agent to buffer part of the first file');
  renameSync(log, `${dir}/logs/job-1.log`);
  writeFileSync(log, second.join('\n') + '\n');
  await until(() => bufferedRecords(dir) >= 20_000, 120_000, 'all 20,000 lines in the disk buffer while the aggregator is down');
  // Without the buffer, these lines would now exist nowhere but in the agent's memory.
  renameSync(log, `${dir}/logs/job-2.log`);
  rmSync(`${dir}/logs/job-1.log`);
  rmSync(`${dir}/logs/job-2.log`);
  assert.ok(receiver.records.length === 0, 'nothing delivered while the aggregator was down');
  receiver.blocked = false;
  await until(() => receiver.bodies().size >= 20_000, 120_000, 'every line after the aggregator returned');
  assertExactlyOnceAfterDedup(receiver.records.filter(notGap), [...first, ...second]);
  assert.equal(agent.child.exitCode, null, 'the agent still runs');
  // Delivered segments are removed: at most the active segment is left.
  await until(() => segments(dir).length <= 1, 30_000, 'delivered segments to be removed');
});

void test('SIGKILL while the buffer holds unsent records, source file deleted: nothing lost after the restart', async (t) => {
  const dir = await tempDir(t);
  const receiver = await startReceiver(t);
  receiver.blocked = true;
  const config = await writeAgentConfig({ dir, include: [`${dir}/logs/*.log`], receiverUrl: receiver.url });
  let agent = spawnAgent(t, config);
  const log = `${dir}/logs/job.log`;
  const written = lines('killed', 5_000);
  writeFileSync(log, written.join('\n') + '\n');
  await until(() => bufferedRecords(dir) >= 5_000, 60_000, 'the lines in the disk buffer');
  await sigkill(agent);
  rmSync(log);
  receiver.blocked = false;
  agent = spawnAgent(t, config);
  await until(() => receiver.bodies().size >= 5_000, 60_000, 'every buffered line after the restart');
  assertExactlyOnceAfterDedup(receiver.records.filter(notGap), written);
  assert.equal(agent.child.exitCode, null, 'the agent still runs');
  await sigkill(agent);
});

void test('a torn segment tail (cut while the agent was stopped): a gap record says so, the rest is delivered, the agent runs on', async (t) => {
  const dir = await tempDir(t);
  const receiver = await startReceiver(t);
  receiver.blocked = true;
  const config = await writeAgentConfig({ dir, include: [`${dir}/logs/*.log`], receiverUrl: receiver.url });
  let agent = spawnAgent(t, config);
  const log = `${dir}/logs/job.log`;
  const written = lines('torn', 1_000);
  writeFileSync(log, written.join('\n') + '\n');
  await until(() => bufferedRecords(dir) >= 1_000, 60_000, 'the lines in the disk buffer');
  await sigkill(agent);
  // What a crash in the middle of a write leaves: the last entry cut short.
  const last = segments(dir).filter((f) => statSync(f).size > 0).at(-1)!;
  truncateSync(last, statSync(last).size - 10);
  receiver.blocked = false;
  agent = spawnAgent(t, config);
  await until(() => receiver.bufferDamage.length > 0, 60_000, 'the gap record');
  assert.equal(receiver.bufferDamage.length, 1);
  const gap = receiver.bufferDamage[0]!;
  assert.equal(gap.attributes[recordAttr.gap], true);
  assert.match(gap.body, /torn write/);
  assert.match(gap.body, new RegExp(last.split('/').at(-1)!.replace('.', '\\.')));
  assert.equal(logged(agent, 'CIA_ERR_BUFFER_CORRUPT').length, 1);
  // Every line but the cut one arrives (the cut one only if the source had not saved its
  // checkpoint past it before the kill and reads it again).
  await until(() => written.slice(0, -1).every((l) => receiver.bodies().has(l)), 60_000, 'the intact lines');
  const delivered = receiver.records.filter(notGap);
  const expected = receiver.bodies().has(written.at(-1)!) ? written : written.slice(0, -1);
  assertExactlyOnceAfterDedup(delivered, expected);
  // Running, not crash-looping: a new line still flows.
  appendFileSync(log, 'after the damage\n');
  await until(() => receiver.bodies().has('after the damage'), 30_000, 'a new line after the damage');
  assert.equal(agent.child.exitCode, null);
  await sigkill(agent);
});

void test('upgrade: a disk buffer an earlier agent left (records stored as JSON) is sent by the new agent, values and chain attributes intact', async (t) => {
  const dir = await tempDir(t);
  const receiver = await startReceiver(t);
  receiver.blocked = true;
  const config = await writeAgentConfig({ dir, include: [`${dir}/logs/*.log`], receiverUrl: receiver.url });
  const agent = spawnAgent(t, config);
  const written = lines('upgrade', 1_000);
  writeFileSync(`${dir}/logs/job.log`, written.join('\n') + '\n');
  await until(() => bufferedRecords(dir) >= 1_000, 60_000, 'the lines in the disk buffer');
  await sigkill(agent);
  // Rewritten as earlier agents stored records: compact JSON of the OTLP fields, resource and scope left out.
  const stored = new Map<string, Record<string, unknown>>();
  const scope = { resource: undefined, instrumentationScope: { name: '' } } as unknown as RecordScope;
  for (const file of segments(dir)) {
    const { payloads } = scanEntries(readFileSync(file), { final: true });
    const legacy = payloads.map((payload) => {
      const r = decodeRecord(payload, scope);
      stored.set(String(r.body), { ...r.attributes });
      const json = { t: r.hrTime, o: r.hrTimeObserved, ...(r.severityNumber === undefined ? {} : { n: r.severityNumber }), b: r.body, a: r.attributes };
      return encodeEntry(Buffer.from(JSON.stringify(json), 'utf8'));
    });
    writeFileSync(file, Buffer.concat(legacy));
  }
  assert.ok(stored.size >= 1_000, `${stored.size} records rewritten`);
  receiver.blocked = false;
  const upgraded = spawnAgent(t, config);
  await until(() => written.every((l) => receiver.bodies().has(l)), 60_000, 'every line from the rewritten buffer');
  assertExactlyOnceAfterDedup(receiver.records.filter(notGap), written);
  // A line may also arrive a second time, read again from its file after the kill (a later chain
  // seq, the same record id): the copy from the buffer is the one with the stored attributes.
  const lineSet = new Set(written);
  let compared = 0;
  for (const [body, before] of stored) {
    if (!lineSet.has(body)) continue; // the agent's own records (checkpoints) are not the point here
    compared++;
    const copies = receiver.records.filter((r) => r.body === body);
    assert.ok(
      copies.some((r) => isDeepStrictEqual(r.attributes, before)),
      `"${body.slice(0, 30)}…" arrived with its stored attributes: ${JSON.stringify(before)} vs ${JSON.stringify(copies.map((r) => r.attributes))}`,
    );
  }
  assert.equal(compared, written.length);
  assert.equal(logged(upgraded, 'CIA_ERR_BUFFER_CORRUPT').length, 0);
  await sigkill(upgraded);
});
