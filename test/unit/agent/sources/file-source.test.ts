import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { appendFile, mkdtemp, open, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordAttr } from '../../../../core/wire.ts';
import { checkpointPath, readCheckpoints } from '../../../../agent/sources/file/checkpoint.ts';
import { FileSource } from '../../../../agent/sources/file/file-source.ts';
import { fileRecordId } from '../../../../agent/sources/file/record.ts';
import { fingerprintOf } from '../../../../agent/sources/file/fingerprint.ts';
import { fileKeyOf } from '../../../../agent/sources/file/identity.ts';
import { createHash } from 'node:crypto';
import type { RecordSink, SourceRecord } from '../../../../agent/sources/source.ts';
import { agentConfigSchema, type FileSourceConfig } from '../../../../config/schema.ts';
import { captureLogger, tempDir, waitFor } from '../helpers.ts';

/** A sink that keeps the records; the test acknowledges them when it wants. */
function collectingSink(): RecordSink & { records: SourceRecord[]; bodies: () => unknown[] } {
  const records: SourceRecord[] = [];
  return {
    records,
    bodies: () => records.map((r) => r.body),
    write(record) {
      records.push(record);
      return Promise.resolve();
    },
  };
}

function sourceConfig(include: string[], extra: Partial<FileSourceConfig> = {}): FileSourceConfig {
  const parsed = agentConfigSchema.parse({
    sources: [{ type: 'file', id: 'ci', include, dataset: 'ci', ...extra }],
    output: { url: 'http://127.0.0.1:4318' },
  });
  return parsed.sources[0] as FileSourceConfig;
}

async function startSource(t: TestContext, stateDir: string, config: FileSourceConfig) {
  const sink = collectingSink();
  const source = new FileSource({ config, agentId: 'agent-1', stateDir, logger: captureLogger().logger, pollIntervalMs: 50 });
  t.after(() => source.close());
  await source.start(sink);
  return { source, sink };
}

async function identity(path: string) {
  const s = await stat(path, { bigint: true });
  return { dev: s.dev.toString(), ino: s.ino.toString() };
}

void test('appended lines become records with their offsets, deterministic ids and wire attributes', async (t) => {
  const dir = await tempDir(t);
  const log = `${dir}/job.log`;
  await writeFile(log, 'one\ntwo\r\nthr');
  const { sink } = await startSource(t, `${dir}/state`, sourceConfig([`${dir}/*.log`]));
  await waitFor(() => sink.records.length === 2, 3000, 'the two complete lines');
  assert.deepEqual(sink.bodies(), ['one', 'two']);

  await appendFile(log, 'ee\nfour\n');
  await waitFor(() => sink.records.length === 4, 3000, 'the appended lines');
  assert.deepEqual(sink.bodies(), ['one', 'two', 'three', 'four']);

  const offsets = sink.records.map((r) => r.attributes[recordAttr.logOffset]);
  assert.deepEqual(offsets, [0, 4, 9, 15]);
  const third = sink.records[2]!;
  assert.equal(third.attributes[recordAttr.dataset], 'ci');
  assert.equal(third.attributes[recordAttr.logFilePath], log);
  const key = fileKeyOf('agent-1', await identity(log), 0, createHash('sha256').update('one\ntwo\r\nthree\n').digest('hex'));
  assert.equal(third.attributes[recordAttr.recordId], fileRecordId(key, { offset: 9, end: 15 }));
  assert.match(String(third.attributes[recordAttr.recordId]), /^[0-9a-f]{32}:9$/);
  assert.equal(third.attributes[recordAttr.invalidUtf8], undefined);
});

void test('invalid UTF-8 is kept and flagged; excluded files are left alone', async (t) => {
  const dir = await tempDir(t);
  await writeFile(`${dir}/a.log`, Buffer.from([0x61, 0xc3, 0x28, 0x0a]));
  await writeFile(`${dir}/skip.log`, 'not me\n');
  const { sink } = await startSource(t, `${dir}/state`, sourceConfig([`${dir}/*.log`], { exclude: ['skip.*'] }));
  await waitFor(() => sink.records.length === 1, 3000, 'the line');
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(sink.records.length, 1);
  assert.equal(sink.records[0]!.body, 'a\uFFFD(');
  assert.equal(sink.records[0]!.attributes[recordAttr.invalidUtf8], true);
});

void test('a restart resumes from the checkpoint: acknowledged lines are not read again', async (t) => {
  const dir = await tempDir(t);
  const state = `${dir}/state`;
  const log = `${dir}/auth.log`;
  await writeFile(log, 'alpha\nbeta\ngamma\n');
  const config = sourceConfig([log]);

  const first = await startSource(t, state, config);
  await waitFor(() => first.sink.records.length === 3, 3000, 'three lines');
  // The aggregator acknowledged alpha and beta only.
  first.sink.records[0]!.ack();
  first.sink.records[1]!.ack();
  await first.source.stop();
  await first.source.close();
  const saved = await readCheckpoints(checkpointPath(state, 'ci'));
  assert.deepEqual(saved, [{ ...(await identity(log)), path: log, offset: 11, generation: 0, fingerprint: fingerprintOf(Buffer.from('alpha\nbeta\ngamma\n')) }]);

  await appendFile(log, 'delta\n');
  const second = await startSource(t, state, config);
  await waitFor(() => second.sink.records.length === 2, 3000, 'gamma and delta');
  assert.deepEqual(second.sink.bodies(), ['gamma', 'delta']);
  // Same line, same id, whichever run read it.
  assert.equal(second.sink.records[0]!.attributes[recordAttr.recordId], first.sink.records[2]!.attributes[recordAttr.recordId]);
});

void test('the checkpoint only moves over contiguous acknowledgements', async (t) => {
  const dir = await tempDir(t);
  const state = `${dir}/state`;
  const log = `${dir}/a.log`;
  await writeFile(log, '1\n2\n3\n');
  const { source, sink } = await startSource(t, state, sourceConfig([log]));
  await waitFor(() => sink.records.length === 3, 3000, 'three lines');
  sink.records[1]!.ack();
  sink.records[2]!.ack();
  assert.equal(source.files()[0]?.committed, 0);
  sink.records[0]!.ack();
  assert.equal(source.files()[0]?.committed, 6);
  await source.close();
  assert.equal((await readCheckpoints(checkpointPath(state, 'ci')))[0]?.offset, 6);
});

void test('start_at end skips what a file held at start-up; files created later are read from their beginning', async (t) => {
  const dir = await tempDir(t);
  await writeFile(`${dir}/old.log`, 'history\n');
  const { sink } = await startSource(t, `${dir}/state`, sourceConfig([`${dir}/*.log`], { start_at: 'end' }));
  await appendFile(`${dir}/old.log`, 'fresh\n');
  await writeFile(`${dir}/new.log`, 'born\n');
  await waitFor(() => sink.records.length === 2, 3000, 'two new lines');
  assert.deepEqual(new Set(sink.bodies()), new Set(['fresh', 'born']));
});

void test('backpressure: the source does not read past a write that has not resolved', async (t) => {
  const dir = await tempDir(t);
  await writeFile(`${dir}/a.log`, 'a\nb\nc\n');
  const records: SourceRecord[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const sink: RecordSink = {
    write(record) {
      records.push(record);
      return gate;
    },
  };
  const source = new FileSource({ config: sourceConfig([`${dir}/a.log`]), agentId: 'x', stateDir: `${dir}/state`, logger: captureLogger().logger, pollIntervalMs: 20 });
  t.after(() => source.close());
  await source.start(sink);
  await waitFor(() => records.length === 1, 3000, 'first line');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(records.length, 1);
  release();
  await waitFor(() => records.length === 3, 3000, 'the rest');
  // stop() returns even while a write is pending.
  await source.stop();
});

void test('the watcher notices appends and new files without waiting for the poll', async (t) => {
  const dir = await tempDir(t);
  await writeFile(`${dir}/a.log`, '');
  const sink = collectingSink();
  const source = new FileSource({ config: sourceConfig([`${dir}/**/*.log`]), agentId: 'x', stateDir: `${dir}/state`, logger: captureLogger().logger, pollIntervalMs: 60_000 });
  t.after(() => source.close());
  await source.start(sink);
  await appendFile(`${dir}/a.log`, 'appended\n');
  await waitFor(() => sink.records.length === 1, 3000, 'the appended line');
  await writeFile(`${dir}/b.log`, 'created\n');
  await waitFor(() => sink.records.length === 2, 3000, 'the new file');
  assert.deepEqual(sink.bodies(), ['appended', 'created']);
});

void test('close_inactive_ms: more files than max_open_files are all read; a closed file renamed within include resumes at its checkpoint; a deleted one has its checkpoint collected', async (t) => {
  const dir = await tempDir(t);
  const state = `${dir}/state`;
  for (const name of ['a', 'b', 'c']) await writeFile(`${dir}/${name}.log`, `${name} 1\n${name} 2\n`);
  const records: SourceRecord[] = [];
  // Acknowledges at once, as a fast aggregator would: a file is closed only once all is acknowledged.
  const sink: RecordSink = {
    write(record) {
      records.push(record);
      record.ack();
      return true;
    },
  };
  const { logger, lines } = captureLogger();
  const source = new FileSource({ config: sourceConfig([`${dir}/*.log`], { max_open_files: 1, close_inactive_ms: 50 }), agentId: 'agent-1', stateDir: state, logger, pollIntervalMs: 20 });
  t.after(() => source.close());
  await source.start(sink);
  let mostOpen = 0;
  await waitFor(() => {
    mostOpen = Math.max(mostOpen, source.files().length);
    return records.length === 6;
  }, 5000, 'the lines of all three files');
  assert.equal(mostOpen, 1);
  assert.equal(lines.filter((l) => l.code === 'CIA_ERR_SOURCE_OPEN_FILES').length, 1);

  const b = await identity(`${dir}/b.log`);
  const c = await identity(`${dir}/c.log`);
  await waitFor(() => source.files().length === 0, 5000, 'every file closed as inactive');
  await rename(`${dir}/b.log`, `${dir}/b-renamed.log`);
  await appendFile(`${dir}/b-renamed.log`, 'b 3\n');
  await rm(`${dir}/c.log`);
  await waitFor(() => records.length === 7, 5000, 'the line appended to the renamed file');
  // Polls pass; nothing is read twice and the deleted file's checkpoint goes.
  await waitFor(() => source.files().length === 0, 5000, 'the renamed file closed again');
  await new Promise((r) => setTimeout(r, 200));
  await source.close();
  assert.deepEqual(records.map((r) => r.body).sort(), ['a 1', 'a 2', 'b 1', 'b 2', 'b 3', 'c 1', 'c 2']);
  const saved = await readCheckpoints(checkpointPath(state, 'ci'));
  assert.deepEqual(saved.map((e) => e.ino).sort(), [(await identity(`${dir}/a.log`)).ino, b.ino].sort());
  assert.equal(saved.find((e) => e.ino === b.ino)?.offset, 12);
  assert.ok(!saved.some((e) => e.ino === c.ino));
});

/**
 * Whether some process has the FIFO open for reading (or is waiting in open() for a writer): a
 * non-blocking open for writing succeeds only then (else ENXIO). It also lets such a waiting open
 * go on, so a source stuck there can be closed.
 */
async function fifoHasReader(fifo: string): Promise<boolean> {
  try {
    await (await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK)).close();
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENXIO' || (err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * A folder for a test with FIFOs: the FIFOs are opened for writing before the source is closed (so
 * a source stuck opening one can finish) and the folder is removed only then.
 */
async function fifoDir(t: TestContext, cleanup: { source?: FileSource; fifos: string[]; more?: () => Promise<void> }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ci-audit-agent-'));
  t.after(async () => {
    for (const fifo of cleanup.fifos) await fifoHasReader(fifo);
    await cleanup.source?.close();
    await cleanup.more?.();
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

// Without the check, start() hung in open() on the FIFO for good: guard with a test timeout so the failure is reported.
void test('a FIFO, a socket and a device matching include at start-up are skipped with one CIA_ERR_SOURCE_NOT_REGULAR warning each, never opened; the regular file is read', { timeout: 30_000 }, async (t) => {
  const cleanup: { source?: FileSource; fifos: string[]; more?: () => Promise<void> } = { fifos: [] };
  const dir = await fifoDir(t, cleanup);
  await writeFile(`${dir}/a.log`, 'first\n');
  execFileSync('mkfifo', [`${dir}/b.log`]);
  cleanup.fifos.push(`${dir}/b.log`);
  await symlink('/dev/null', `${dir}/d.log`);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(`${dir}/s.log`, resolve));
  cleanup.more = () => new Promise<void>((resolve) => server.close(() => resolve()));

  const sink = collectingSink();
  const { logger, lines } = captureLogger();
  const source = new FileSource({ config: sourceConfig([`${dir}/*.log`]), agentId: 'agent-1', stateDir: `${dir}/state`, logger, pollIntervalMs: 20 });
  cleanup.source = source;
  await source.start(sink);
  await waitFor(() => sink.records.length === 1, 5000, 'the regular file');
  // Polls find the same paths again: still one warning each.
  await new Promise((r) => setTimeout(r, 200));
  await source.stop();
  assert.deepEqual(sink.bodies(), ['first']);
  assert.equal(await fifoHasReader(`${dir}/b.log`), false, 'the FIFO is not held open');
  const skipped = lines.filter((l) => l.code === 'CIA_ERR_SOURCE_NOT_REGULAR').map((l) => [l.path, l.kind]);
  assert.deepEqual(skipped.sort(), [
    [`${dir}/b.log`, 'FIFO'],
    [`${dir}/d.log`, 'character device'],
    [`${dir}/s.log`, 'socket'],
  ]);
  assert.deepEqual(lines.filter((l) => l.code === 'CIA_ERR_SOURCE_READ'), []);
});

void test('a FIFO that appears while the source runs does not hold up the files found after it, nor stop()', { timeout: 30_000 }, async (t) => {
  const cleanup: { source?: FileSource; fifos: string[] } = { fifos: [] };
  const dir = await fifoDir(t, cleanup);
  await writeFile(`${dir}/a.log`, 'first\n');
  const sink = collectingSink();
  const { logger, lines } = captureLogger();
  const source = new FileSource({ config: sourceConfig([`${dir}/*.log`]), agentId: 'agent-1', stateDir: `${dir}/state`, logger, pollIntervalMs: 20 });
  cleanup.source = source;
  await source.start(sink);
  await waitFor(() => sink.records.length === 1, 5000, 'the first file');
  execFileSync('mkfifo', [`${dir}/b.log`]);
  cleanup.fifos.push(`${dir}/b.log`);
  await waitFor(() => lines.some((l) => l.code === 'CIA_ERR_SOURCE_NOT_REGULAR'), 5000, 'the FIFO to be reported');
  await writeFile(`${dir}/c.log`, 'later\n');
  await waitFor(() => sink.records.length === 2, 5000, 'the file created after the FIFO');
  await source.stop();
  assert.deepEqual(sink.bodies(), ['first', 'later']);
  assert.equal(await fifoHasReader(`${dir}/b.log`), false, 'the FIFO is not held open');
  assert.deepEqual(
    lines.filter((l) => l.code === 'CIA_ERR_SOURCE_NOT_REGULAR').map((l) => [l.path, l.kind]),
    [[`${dir}/b.log`, 'FIFO']],
  );
});

void test('a file renamed within include goes on at its checkpoint under the new name, in the same generation: nothing is read twice, even when it was let go before the new name was seen', async (t) => {
  const dir = await tempDir(t);
  const state = `${dir}/state`;
  await writeFile(`${dir}/a.log`, 'one\ntwo\n');
  const records: SourceRecord[] = [];
  // A fast aggregator: everything acknowledged at once, so a file whose name goes away is let go at once.
  const sink: RecordSink = {
    write(record) {
      records.push(record);
      queueMicrotask(() => record.ack());
      return true;
    },
  };
  // No poll during the test: the watcher's events alone (unlink, add) drive what happens.
  const source = new FileSource({ config: sourceConfig([`${dir}/*.log`]), agentId: 'agent-1', stateDir: state, logger: captureLogger().logger, pollIntervalMs: 60_000 });
  t.after(() => source.close());
  await source.start(sink);
  await waitFor(() => records.length === 2, 5000, 'the first lines');
  // Truncated in place: generation 1, whose ids a reread from 0 in generation 0 would not repeat.
  await writeFile(`${dir}/a.log`, 'three\n');
  await waitFor(() => records.length === 3, 5000, 'the line after the truncation');
  const done = (): boolean => source.files().every((f) => f.committed === f.readOffset);
  await waitFor(done, 5000, 'every line acknowledged');

  // Renamed within include at once.
  await rename(`${dir}/a.log`, `${dir}/b.log`);
  await waitFor(() => source.files().some((f) => f.path === `${dir}/b.log`), 5000, 'the new name followed');
  await appendFile(`${dir}/b.log`, 'four\n');
  await waitFor(() => records.some((r) => r.body === 'four'), 5000, 'the line appended under the new name');

  // Renamed out of include (let go, everything acknowledged), then back into it.
  await waitFor(done, 5000, 'every line acknowledged');
  await rename(`${dir}/b.log`, `${dir}/b.tmp`);
  await waitFor(() => source.files().length === 0, 5000, 'the file let go');
  await rename(`${dir}/b.tmp`, `${dir}/c.log`);
  await waitFor(() => source.files().some((f) => f.path === `${dir}/c.log`), 5000, 'the new name followed');
  await appendFile(`${dir}/c.log`, 'five\n');
  await waitFor(() => records.some((r) => r.body === 'five'), 5000, 'the line appended under the last name');
  await waitFor(done, 5000, 'every line acknowledged');

  assert.deepEqual(records.map((r) => r.body), ['one', 'two', 'three', 'four', 'five']);
  assert.deepEqual(records.map((r) => r.attributes[recordAttr.logFilePath]), [`${dir}/a.log`, `${dir}/a.log`, `${dir}/a.log`, `${dir}/b.log`, `${dir}/c.log`]);
  await source.close();
  const saved = await readCheckpoints(checkpointPath(state, 'ci'));
  assert.deepEqual(saved.map((e) => [e.path, e.offset, e.generation]), [[`${dir}/c.log`, 16, 1]]);
});
