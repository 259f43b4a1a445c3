// The journald source against the real journalctl reading real journal files written by
// systemd-journal-remote (see journal-files.ts): no journald daemon runs here, everything else is real.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import childProcess, { type ChildProcess } from 'node:child_process';
import { chmod, readFile, rm, readdir, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { JournaldSource } from '../../../../../agent/sources/journald/journald-source.ts';
import { cursorPath } from '../../../../../agent/sources/journald/cursor-store.ts';
import { journalRecordId } from '../../../../../agent/sources/journald/entry.ts';
import type { RecordSink, SourceRecord } from '../../../../../agent/sources/source.ts';
import { agentConfigSchema, type JournaldSourceConfig } from '../../../../../config/schema.ts';
import { journaldAttr, recordAttr } from '../../../../../core/wire.ts';
import { captureLogger, tempDir, waitFor, type CapturedLogger } from '../../helpers.ts';
import { appendJournal, journalctl } from './journal-files.ts';

function journaldConfig(directory: string, extra: Partial<JournaldSourceConfig> = {}): JournaldSourceConfig {
  const parsed = agentConfigSchema.parse({
    sources: [{ type: 'journald', id: 'journal', dataset: 'auth', directory, journalctl_path: journalctl, ...extra }],
    output: { url: 'http://127.0.0.1:4318' },
  });
  return parsed.sources[0] as JournaldSourceConfig;
}

interface Collecting extends RecordSink {
  records: SourceRecord[];
  messages(): unknown[];
  ackAll(): void;
}

function collectingSink(): Collecting {
  const records: SourceRecord[] = [];
  return {
    records,
    messages: () => records.map((r) => r.body),
    ackAll: () => records.forEach((r) => r.ack()),
    write(record) {
      records.push(record);
      return Promise.resolve();
    },
  };
}

async function startSource(t: TestContext, stateDir: string, config: JournaldSourceConfig, log: CapturedLogger = captureLogger()) {
  const sink = collectingSink();
  const source = new JournaldSource({ config, agentId: 'agent-1', stateDir, logger: log.logger });
  t.after(() => source.close());
  await source.start(sink);
  return { source, sink, log };
}

async function savedCursor(stateDir: string): Promise<string | undefined> {
  try {
    return (JSON.parse(await readFile(cursorPath(stateDir, 'journal'), 'utf8')) as { cursor: string }).cursor;
  } catch {
    return undefined;
  }
}

void test('journal entries become records with the journal fields, the entry time and a cursor-derived id; binary messages are decoded and flagged', async (t) => {
  const dir = await tempDir(t);
  await appendJournal(`${dir}/j/system.journal`, [
    { message: 'Accepted publickey for ci from 10.0.0.5 port 50022 ssh2', identifier: 'sshd', unit: 'ssh.service', pid: 812, uid: 0, comm: 'sshd', hostname: 'runner-1', realtimeUs: 1_700_000_000_123_456 },
    { message: Buffer.from([0x61, 0x62, 0xff, 0x63]), identifier: 'sudo' },
    { message: 'two\nlines', identifier: 'su' },
  ]);
  const { sink } = await startSource(t, `${dir}/state`, journaldConfig(`${dir}/j`));
  await waitFor(() => sink.records.length === 3, 5000, 'three entries');
  assert.deepEqual(sink.messages(), ['Accepted publickey for ci from 10.0.0.5 port 50022 ssh2', 'ab\uFFFDc', 'two\nlines']);
  const [first, binary] = sink.records;
  const a = first!.attributes;
  assert.equal(a[journaldAttr.identifier], 'sshd');
  assert.equal(a[journaldAttr.unit], 'ssh.service');
  assert.equal(a[journaldAttr.pid], '812');
  assert.equal(a[journaldAttr.uid], '0');
  assert.equal(a[journaldAttr.comm], 'sshd');
  assert.equal(a[journaldAttr.hostname], 'runner-1');
  assert.equal(a[journaldAttr.realtimeTimestamp], '1700000000123456');
  assert.equal(a[journaldAttr.message], first!.body);
  assert.equal(a[recordAttr.dataset], 'auth');
  assert.deepEqual(first!.timestamp, [1_700_000_000, 123_456_000]);
  const cursor = String(a[journaldAttr.cursor]);
  assert.match(cursor, /^s=[0-9a-f]+;i=1;/);
  assert.equal(a[recordAttr.recordId], journalRecordId('agent-1', cursor));
  assert.equal(a[recordAttr.invalidUtf8], undefined);
  assert.equal(binary!.attributes[recordAttr.invalidUtf8], true);
});

void test('the cursor is saved only on acknowledgement, a restart resumes strictly after it, and a growing journal is followed', async (t) => {
  const dir = await tempDir(t);
  const journal = `${dir}/j/system.journal`;
  const state = `${dir}/state`;
  await appendJournal(journal, [{ message: 'one' }, { message: 'two' }, { message: 'three' }]);
  const first = await startSource(t, state, journaldConfig(`${dir}/j`));
  await waitFor(() => first.sink.records.length === 3, 5000, 'three entries');
  await appendJournal(journal, [{ message: 'four' }]);
  await waitFor(() => first.sink.records.length === 4, 5000, 'the appended entry');

  // Only the first two are acknowledged: the cursor stops at the second.
  first.sink.records[0]!.ack();
  first.sink.records[1]!.ack();
  first.sink.records[3]!.ack();
  await first.source.stop();
  await first.source.close();
  assert.equal(await savedCursor(state), first.sink.records[1]!.attributes[journaldAttr.cursor]);

  await appendJournal(journal, [{ message: 'five' }]);
  const second = await startSource(t, state, journaldConfig(`${dir}/j`));
  await waitFor(() => second.sink.records.length === 3, 5000, 'the unacknowledged and the new entries');
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(second.sink.messages(), ['three', 'four', 'five']);
  // Re-sent entries keep their ids.
  assert.equal(second.sink.records[1]!.attributes[recordAttr.recordId], first.sink.records[3]!.attributes[recordAttr.recordId]);
  assert.equal(second.log.lines.filter((l) => l.code === 'CIA_ERR_SOURCE_GAP').length, 0);
});

void test('units and identifiers filter the entries, and the saved cursor advances through the entries the filter skips', async (t) => {
  const dir = await tempDir(t);
  const state = `${dir}/state`;
  await appendJournal(`${dir}/j/system.journal`, [
    { message: 'kernel noise' },
    { message: 'session opened', identifier: 'sudo' },
    { message: 'unit line', unit: 'ssh.service', identifier: 'sshd-session' },
    { message: 'cron noise', identifier: 'CRON' },
    { message: 'more noise', identifier: 'systemd' },
  ]);
  const config = journaldConfig(`${dir}/j`, { identifiers: ['sudo', 'su'], units: ['ssh.service'] });
  const { source, sink } = await startSource(t, state, config);
  await waitFor(() => sink.records.length === 2, 5000, 'the two kept entries');
  assert.deepEqual(sink.messages(), ['session opened', 'unit line']);
  sink.ackAll();
  // The last entry (skipped by the filter) is where the cursor ends up.
  await waitFor(() => /;i=5;/.test(source.committedCursor ?? ''), 5000, 'the cursor past the skipped entries');
  await source.stop();
  await source.close();
  assert.match((await savedCursor(state)) ?? '', /;i=5;/);
});

void test('a journal vacuumed past the saved cursor while the agent was down is reported as a gap, and the oldest entry left is not lost', async (t) => {
  const dir = await tempDir(t);
  const state = `${dir}/state`;
  // Two journal files as journald leaves them: an archived one and the active one.
  await appendJournal(`${dir}/j/system@0001.journal`, [{ message: 'old-1' }, { message: 'old-2' }]);
  await appendJournal(`${dir}/j/system.journal`, [{ message: 'new-1' }, { message: 'new-2' }]);
  const first = await startSource(t, state, journaldConfig(`${dir}/j`));
  await waitFor(() => first.sink.records.length === 4, 5000, 'four entries');
  first.sink.records[0]!.ack();
  await first.source.stop();
  await first.source.close();

  // Vacuum: the archived file goes (journalctl --vacuum-* deletes whole archived files).
  await rm(`${dir}/j/system@0001.journal`);
  assert.deepEqual(await readdir(`${dir}/j`), ['system.journal']);
  const log = captureLogger();
  const second = await startSource(t, state, journaldConfig(`${dir}/j`), log);
  await waitFor(() => second.sink.records.length === 3, 5000, 'the gap record and the two entries left');
  const [gap, ...rest] = second.sink.records;
  assert.equal(gap!.attributes[recordAttr.gap], true);
  assert.match(String(gap!.body), /journal gap/);
  // journalctl --after-cursor would have dropped new-1 here.
  assert.deepEqual(rest.map((r) => r.body), ['new-1', 'new-2']);
  assert.equal(log.lines.filter((l) => l.code === 'CIA_ERR_SOURCE_GAP').length, 1);
});

void test('journalctl killed while following is restarted from the last entry read: nothing lost, nothing doubled', async (t) => {
  const dir = await tempDir(t);
  const journal = `${dir}/j/system.journal`;
  await appendJournal(journal, [{ message: 'before-1' }, { message: 'before-2' }]);
  const log = captureLogger();
  const { sink } = await startSource(t, `${dir}/state`, journaldConfig(`${dir}/j`), log);
  await waitFor(() => sink.records.length === 2, 5000, 'two entries');
  const pids = await childJournalctl();
  assert.equal(pids.length, 1);
  process.kill(pids[0]!, 'SIGKILL');
  await waitFor(() => log.lines.some((l) => l.code === 'CIA_ERR_SOURCE_JOURNAL'), 5000, 'the exit to be logged');
  await appendJournal(journal, [{ message: 'after-1' }]);
  await waitFor(() => sink.records.length === 3, 5000, 'the entry written after the restart');
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(sink.messages(), ['before-1', 'before-2', 'after-1']);
});

void test('a blocked sink stops reading: journalctl is left waiting instead of memory filling', async (t) => {
  const dir = await tempDir(t);
  await appendJournal(`${dir}/j/system.journal`, Array.from({ length: 3000 }, (_, i) => ({ message: `entry ${i} ${'x'.repeat(200)}` })));
  let writes = 0;
  const blocked: RecordSink = {
    write: () => {
      writes++;
      return new Promise<void>(() => undefined);
    },
  };
  const source = new JournaldSource({ config: journaldConfig(`${dir}/j`), agentId: 'agent-1', stateDir: `${dir}/state`, logger: captureLogger().logger });
  t.after(() => source.close());
  await source.start(blocked);
  await waitFor(() => writes === 1, 5000, 'the first write');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(writes, 1);
});

void test('a missing journalctl fails the start with CIA_ERR_SOURCE_JOURNAL', async (t) => {
  const dir = await tempDir(t);
  const source = new JournaldSource({
    config: journaldConfig(`${dir}/j`, { journalctl_path: `${dir}/no-such-journalctl` }),
    agentId: 'agent-1',
    stateDir: `${dir}/state`,
    logger: captureLogger().logger,
  });
  await assert.rejects(source.start(collectingSink()), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'CIA_ERR_SOURCE_JOURNAL');
    assert.match(err.message, /journalctl_path/);
    return true;
  });
  await source.close();
});

void test('stop() while a restarted journalctl is being spawned: that journalctl is killed and waited for, and nothing is written after stop()', async (t) => {
  const dir = await tempDir(t);
  const fake = `${dir}/journalctl`;
  // A real process standing in for journalctl. First run: exits at once, as a crash would. Second
  // run: prints an entry and follows, as the real one does.
  await writeFile(
    fake,
    `#!/bin/sh\nif [ -e "${dir}/ran" ]; then\n  printf '%s\\n' '{"__CURSOR":"s=1;i=1","MESSAGE":"late"}'\n  exec sleep 60\nfi\ntouch "${dir}/ran"\nexit 1\n`,
  );
  await chmod(fake, 0o755);
  // The window is between spawn() and the child's 'spawn' event: stop() is called from inside
  // spawn() itself (the real spawn runs; it is only watched), right as the restart starts the second journalctl.
  const log = captureLogger();
  const source = new JournaldSource({ config: journaldConfig(`${dir}/j`, { journalctl_path: fake }), agentId: 'agent-1', stateDir: `${dir}/state`, logger: log.logger });
  const children: ChildProcess[] = [];
  let stopped: Promise<void> | undefined;
  let writesAtStop = -1;
  const writes: SourceRecord[] = [];
  const module = childProcess as { spawn: typeof childProcess.spawn };
  const realSpawn = module.spawn;
  t.after(() => {
    module.spawn = realSpawn;
    syncBuiltinESMExports();
    for (const child of children) child.kill('SIGKILL');
  });
  module.spawn = ((...args: unknown[]) => {
    const child = (realSpawn as (...a: unknown[]) => ChildProcess)(...args);
    children.push(child);
    if (children.length === 2) {
      writesAtStop = writes.length;
      stopped = source.stop();
    }
    return child;
  }) as typeof childProcess.spawn;
  syncBuiltinESMExports();

  await source.start({
    write: (record) => {
      writes.push(record);
      return true;
    },
  });
  await waitFor(() => stopped !== undefined, 5000, 'the restart');
  await stopped;
  await source.close();
  assert.equal(children.length, 2);
  assert.deepEqual(
    children.map((c) => c.exitCode !== null || c.signalCode !== null),
    [true, true],
    'every journalctl spawned has exited once stop() returned',
  );
  assert.equal(writes.length, writesAtStop);
  assert.equal(log.lines.filter((l) => l.code === 'CIA_ERR_SOURCE_JOURNAL').length, 1, 'the first exit only');
});

/** Pids of journalctl processes that are children of this test process. */
async function childJournalctl(): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm === 'journalctl' && ppid === process.pid) pids.push(Number(name));
    } catch {
      // The process ended meanwhile.
    }
  }
  return pids;
}
