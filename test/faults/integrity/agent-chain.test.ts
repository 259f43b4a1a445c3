// The agent's hash chain across a SIGKILL, with the real agent process, real files and a real HTTP
// endpoint decoding OTLP with the aggregator's decoder: after the restart every line is delivered,
// the chain resumes with an `unclean_stop` gap record linked to the committed head that declares
// exactly the sequence numbers that never reached the endpoint, the records that did reach it chain
// correctly, and later records link on from the resume record. Memory and disk buffer.
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { chainAttr, chainGapAttr, recordAttr } from '../../../core/wire.ts';
import { numberedLine, sigkill, spawnAgent, sigterm, until } from '../sources/harness.ts';
import { assertChain, isChained, seqOf, startCapture, type Capture } from '../../unit/agent/chain/capture.ts';

const agentId = 'chain-fault-agent';

interface SavedState {
  committed: { seq: number; hash: string };
  reserved: number;
  clean: boolean;
}

async function setUp(t: TestContext, buffer: 'memory' | 'disk'): Promise<{ dir: string; config: string; log: string; capture: Capture }> {
  const dir = await mkdtemp(join(tmpdir(), 'cia-chain-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'logs'));
  const capture = await startCapture(t);
  const config = join(dir, 'agent.yaml');
  // JSON is YAML.
  await writeFile(
    config,
    JSON.stringify({
      agent: { id: agentId, state_dir: join(dir, 'state') },
      sources: [{ type: 'file', id: 'logs', include: [join(dir, 'logs', '*.log')], dataset: 'ci', poll_interval_ms: 50 }],
      output: { url: capture.url, batch: { max_records: 25, max_delay_ms: 20 } },
      buffer: { type: buffer },
      integrity: { reserve_block: 64 },
      log: { level: 'warn', format: 'json' },
    }),
  );
  const log = join(dir, 'logs', 'job.log');
  writeFileSync(log, '');
  return { dir, config, log, capture };
}

function state(dir: string): SavedState | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'state', 'chain.json'), 'utf8')) as SavedState;
  } catch {
    return undefined;
  }
}

function lines(prefix: string, from: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => numberedLine(prefix, from + i, 60));
}

function delivered(capture: Capture): Set<string> {
  return new Set(capture.accepted.filter(isChained).map((r) => r.body as string));
}

for (const buffer of ['memory', 'disk'] as const) {
  void test(`${buffer} buffer: SIGKILL, restart: every line delivered, an unclean_stop record declares exactly the numbers that never arrived, the chain links on`, async (t) => {
    const { dir, config, log, capture } = await setUp(t, buffer);
    let agent = spawnAgent(t, config);
    const before = lines('before', 0, 100);
    appendFileSync(log, before.join('\n') + '\n');
    await until(() => before.every((l) => delivered(capture).has(l)), 30_000, 'the first 100 lines');
    await until(() => state(dir)?.committed.seq === 100, 30_000, 'seq 100 committed in chain.json');

    // The endpoint goes down: these lines are chained but never reach it (memory buffer), or wait
    // durable in the disk buffer (committed there).
    capture.down = true;
    const during = lines('during', 0, 30);
    appendFileSync(log, during.join('\n') + '\n');
    if (buffer === 'memory') {
      // Not every batch may have left yet, so later lines may still wait in memory: chained or not, they
      // never arrive and are read again after the restart.
      await until(() => capture.attempts.some((a) => a.some((r) => isChained(r) && seqOf(r) > 100)), 30_000, 'a refused attempt to send the new lines');
    } else {
      await until(() => state(dir)?.committed.seq === 130, 30_000, 'seq 130 durable in the disk buffer');
    }
    await sigkill(agent);
    const saved = state(dir)!;
    assert.equal(saved.clean, false, 'killed: not a clean stop');
    const committed = saved.committed;
    assert.equal(committed.seq, buffer === 'memory' ? 100 : 130);
    assert.ok(saved.reserved >= 130, 'every number handed out was reserved on disk first');

    capture.down = false;
    agent = spawnAgent(t, config);
    const after = lines('after', 0, 20);
    await until(() => during.every((l) => delivered(capture).has(l)), 30_000, 'the lines of the outage');
    appendFileSync(log, after.join('\n') + '\n');
    await until(() => after.every((l) => delivered(capture).has(l)), 30_000, 'the lines after the restart');
    await sigterm(agent);

    for (const line of [...before, ...during, ...after]) assert.ok(delivered(capture).has(line), `delivered: ${line.slice(0, 20)}`);

    const resumes = capture.accepted.filter((r) => r.attributes[chainGapAttr.reason] === 'unclean_stop');
    assert.equal(resumes.length, 1, 'one resume record');
    const resume = resumes[0]!;
    assert.equal(seqOf(resume), saved.reserved + 1);
    assert.equal(resume.attributes[chainAttr.prevHash], committed.hash, 'the resume record links to the committed head');
    assert.equal(resume.attributes[recordAttr.gap], true);
    const first = Number(resume.attributes[chainGapAttr.firstSeq]);
    const last = Number(resume.attributes[chainGapAttr.lastSeq]);
    assert.equal(first, committed.seq + 1);
    assert.equal(last, saved.reserved);

    // Exactly the declared numbers never arrived; every number below them did and chains correctly.
    const arrived = new Set(capture.accepted.filter(isChained).map(seqOf));
    for (let seq = first; seq <= last; seq++) assert.ok(!arrived.has(seq), `declared seq ${seq} never arrived`);
    const reachedBefore = capture.accepted.filter((r) => isChained(r) && seqOf(r) < first);
    const { head } = assertChain(reachedBefore, agentId);
    assert.deepEqual(head, committed, 'the records that arrived end at the committed head');

    // From the resume record on, one unbroken chain.
    const later = capture.accepted.filter((r) => isChained(r) && seqOf(r) > last);
    const resumed = assertChain(later, agentId, { seq: last, hash: committed.hash });
    assert.ok(resumed.head.seq >= last + 1 + after.length, 'the lines after the restart chained after the resume record');
    const final = state(dir)!;
    assert.equal(final.clean, true, 'the SIGTERM stop was clean');
    assert.deepEqual(final.committed, resumed.head);
  });
}
