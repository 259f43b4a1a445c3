import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, writeFile } from 'node:fs/promises';
import { FileSource } from '../../../../agent/sources/file/file-source.ts';
import { LineSplitter } from '../../../../agent/sources/file/line-splitter.ts';
import { MultilineJoiner, type MultilineOptions } from '../../../../agent/sources/file/multiline.ts';
import type { RecordSink, SourceRecord } from '../../../../agent/sources/source.ts';
import { agentConfigSchema, type FileSourceConfig } from '../../../../config/schema.ts';
import { recordAttr } from '../../../../core/wire.ts';
import { captureLogger, tempDir, waitFor } from '../helpers.ts';

const javaTrace = [
  '2024-05-01 10:00:00 ERROR job failed',
  'java.lang.IllegalStateException: boom',
  '\tat com.example.Build.run(Build.java:42)',
  '\tat com.example.Main.main(Main.java:7)',
  '2024-05-01 10:00:01 INFO retrying',
  '',
].join('\n');

function join(text: string, options: Partial<MultilineOptions> = {}) {
  const joiner = new MultilineJoiner({ startPattern: /^\d{4}-/, negate: false, maxLines: 500, maxBytes: 1 << 20, ...options });
  const out = new LineSplitter(0).push(Buffer.from(text)).flatMap((l) => joiner.push(l));
  return { out, joiner };
}

void test('continuation lines join the record their start line opened; the record spans its first line offset to its last line end', () => {
  const { out, joiner } = join(javaTrace);
  assert.equal(out.length, 1);
  assert.equal(out[0]!.text, javaTrace.split('\n').slice(0, 4).join('\n'));
  assert.equal(out[0]!.offset, 0);
  assert.equal(out[0]!.end, Buffer.byteLength(javaTrace.split('\n').slice(0, 4).join('\n')) + 1);
  assert.equal(out[0]!.lines, 4);
  // The last record waits for the next start line or the timeout.
  assert.equal(joiner.pending, true);
  const last = joiner.flush()!;
  assert.equal(last.text, '2024-05-01 10:00:01 INFO retrying');
  assert.equal(last.offset, out[0]!.end);
});

void test('negate: lines that do not match start a record (indented continuation lines)', () => {
  const { out, joiner } = join('a\n  b\n  c\nd\n', { startPattern: /^\s/, negate: true });
  assert.deepEqual([...out, joiner.flush()!].map((r) => r.text), ['a\n  b\n  c', 'd']);
});

void test('max_lines and max_bytes end a record early, flagged split, and the rest is flagged continued: nothing dropped', () => {
  const byLines = join('2024 start\n1\n2\n3\n4\n', { startPattern: /^2024/, maxLines: 2 });
  const records = [...byLines.out, byLines.joiner.flush()!];
  assert.deepEqual(records.map((r) => r.text), ['2024 start\n1', '2\n3', '4']);
  assert.deepEqual(records.map((r) => [r.split ?? false, r.continued ?? false]), [[true, false], [true, true], [false, true]]);
  const byBytes = join('2024 start\n' + 'x'.repeat(30) + '\n', { startPattern: /^2024/, maxBytes: 20 });
  const parts = [...byBytes.out, byBytes.joiner.flush()!];
  assert.deepEqual(parts.map((r) => r.text), ['2024 start', 'x'.repeat(30)]);
  assert.equal(parts[0]!.split, true);
  // Offsets stay contiguous: the checkpoint can resume between the parts.
  assert.equal(parts[1]!.offset, parts[0]!.end);
});

function multilineConfig(include: string[]): FileSourceConfig {
  return agentConfigSchema.parse({
    sources: [{ type: 'file', id: 'ci', include, dataset: 'ci', multiline: { start_pattern: '^\\d{4}-', timeout_ms: 100 } }],
    output: { url: 'http://127.0.0.1:4318' },
  }).sources[0] as FileSourceConfig;
}

function sink(): RecordSink & { records: SourceRecord[] } {
  const records: SourceRecord[] = [];
  return { records, write: (r) => (records.push(r), Promise.resolve()) };
}

void test('file source: a stack trace is one record, the timeout sends the last one, and the checkpoint moves past a record only once it is acknowledged', async (t) => {
  const dir = await tempDir(t);
  const log = `${dir}/job.log`;
  await writeFile(log, javaTrace);
  const config = multilineConfig([`${dir}/*.log`]);
  const first = sink();
  const source = new FileSource({ config, agentId: 'a', stateDir: `${dir}/state`, logger: captureLogger().logger, pollIntervalMs: 30 });
  await source.start(first);
  await waitFor(() => first.records.length === 2, 3000, 'the trace and, after the timeout, the last record');
  assert.equal(first.records[0]!.attributes[recordAttr.lineCount], 4);
  assert.equal(first.records[0]!.attributes[recordAttr.logOffset], 0);
  assert.equal(first.records[1]!.attributes[recordAttr.logOffset], javaTrace.indexOf('2024-05-01 10:00:01'));
  // Only the trace is acknowledged.
  first.records[0]!.ack();
  await source.stop();
  await source.close();

  await appendFile(log, '\tat more.Stack(X.java:1)\n2024-05-01 10:00:02 INFO done\n');
  const second = sink();
  const again = new FileSource({ config, agentId: 'a', stateDir: `${dir}/state`, logger: captureLogger().logger, pollIntervalMs: 30 });
  t.after(() => again.close());
  await again.start(second);
  await waitFor(() => second.records.length === 2, 3000, 'the records after the checkpoint');
  // Read again from the unacknowledged record's first line; it now has its continuation.
  assert.deepEqual(second.records.map((r) => r.body), ['2024-05-01 10:00:01 INFO retrying\n\tat more.Stack(X.java:1)', '2024-05-01 10:00:02 INFO done']);
  assert.equal(second.records[0]!.attributes[recordAttr.logOffset], first.records[1]!.attributes[recordAttr.logOffset]);
});
