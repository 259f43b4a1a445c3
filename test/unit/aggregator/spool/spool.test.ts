// The durable spool on real files, and a real SIGKILL in the middle of appending.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { hasErrorCode } from '../../../../core/errors.ts';
import { parseBatch, Spool } from '../../../../aggregator/spool/spool.ts';
import type { MappedRecord } from '../../../../aggregator/map/ecs.ts';
import { spooledRecords, tempDir } from './fixtures.ts';

const records = (from: number, n: number): MappedRecord[] => spooledRecords(from, n);

void test('batches come back in the order they were appended, also after reopening', async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open({ dir, maxBytes: 1 << 20 });
  await Promise.all([spool.append(records(0, 2)), spool.append(records(2, 1)), spool.append(records(3, 3))]);
  assert.equal(spool.size, 3);
  const reopened = await Spool.open({ dir, maxBytes: 1 << 20 });
  const seen: string[] = [];
  for (let batch = await reopened.peek(); batch !== undefined; batch = await reopened.peek()) {
    seen.push(...batch.records.map((r) => r.id!));
    await reopened.ack(batch.name);
  }
  assert.deepEqual(seen, ['a:0', 'a:1', 'a:2', 'a:3', 'a:4', 'a:5']);
  assert.equal(reopened.bytes, 0);
  assert.deepEqual(await readdir(dir), []);
  // New batches after a reopen sort after the old ones.
  await reopened.append(records(9, 1));
  assert.match((await readdir(dir))[0]!, /^0{15}3\.batch$/);
});

void test('a full spool refuses the batch with CIA_ERR_SPOOL_FULL and keeps what it has', async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open({ dir, maxBytes: 600 });
  await spool.append(records(0, 2));
  await assert.rejects(spool.append(records(2, 5)), (err: unknown) => hasErrorCode(err, 'CIA_ERR_SPOOL_FULL') && /spool\.max_bytes \(600\)/.test(err.message));
  assert.equal(spool.size, 1);
});

void test('a corrupt batch is moved aside as .corrupt with CIA_ERR_SPOOL_IO, and the next one is read', async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open({ dir, maxBytes: 1 << 20 });
  await spool.append(records(0, 1));
  await spool.append(records(1, 1));
  const [first] = (await readdir(dir)).sort();
  await writeFile(join(dir, first!), '{"spool":1,"count":1}\n{"dataStream":"trunc');
  await assert.rejects(spool.peek(), (err: unknown) => hasErrorCode(err, 'CIA_ERR_SPOOL_IO'));
  assert.deepEqual((await spool.peek())?.records.map((r) => r.id), ['a:1']);
  assert.ok((await readdir(dir)).some((n) => n.endsWith('.corrupt')));
  assert.equal(parseBatch('{"spool":1,"count":2}\n{}\n'), undefined);
});

void test('after a restart new batches are numbered past kept .corrupt and .rejected files, and a second corrupt batch does not replace the first', async (t) => {
  const dir = await tempDir(t);
  let spool = await Spool.open({ dir, maxBytes: 1 << 20 });
  await spool.append(records(0, 1));
  await writeFile(join(dir, '0000000000000000.batch'), '{"spool":1,"count":1}\n{"dataStream":"first-torn');
  await assert.rejects(spool.peek(), (err: unknown) => hasErrorCode(err, 'CIA_ERR_SPOOL_IO'));
  const firstKept = await readFile(join(dir, '0000000000000000.corrupt'), 'utf8');
  spool = await Spool.open({ dir, maxBytes: 1 << 20 }); // restart with only the kept file
  assert.equal(spool.size, 0);
  await spool.append(records(1, 1));
  const [, second] = (await readdir(dir)).sort();
  assert.equal(second, '0000000000000001.batch');
  await writeFile(join(dir, second), '{"spool":1,"count":1}\n{"dataStream":"second-torn');
  await assert.rejects(spool.peek(), (err: unknown) => hasErrorCode(err, 'CIA_ERR_SPOOL_IO'));
  assert.deepEqual((await readdir(dir)).sort(), ['0000000000000000.corrupt', '0000000000000001.corrupt']);
  assert.equal(await readFile(join(dir, '0000000000000000.corrupt'), 'utf8'), firstKept);
  // A .rejected file counts too.
  await writeFile(join(dir, '0000000000000007.rejected'), '{"spool":1,"count":0}\n');
  spool = await Spool.open({ dir, maxBytes: 1 << 20 });
  await spool.append(records(2, 1));
  assert.ok((await readdir(dir)).includes('0000000000000008.batch'));
});

void test('setAside never replaces a file already there: the batch takes the next free number', async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open({ dir, maxBytes: 1 << 20 });
  await spool.append(records(0, 1));
  await writeFile(join(dir, '0000000000000000.rejected'), 'put here by hand\n'); // after open, so not numbered past
  const kept = await spool.setAside('0000000000000000.batch', 'rejected');
  assert.equal(kept, join(dir, '0000000000000001.rejected'));
  assert.equal(await readFile(join(dir, '0000000000000000.rejected'), 'utf8'), 'put here by hand\n');
  assert.deepEqual(parseBatch(await readFile(kept, 'utf8'))?.map((r) => r.id), ['a:0']);
  assert.equal(spool.size, 0);
  assert.equal(spool.bytes, 0);
  await spool.append(records(1, 1));
  assert.ok((await readdir(dir)).includes('0000000000000002.batch'));
});

void test('peekUpTo reads the oldest batches as far as maxBytes allows, at least one, and stops before a corrupt later one', async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open({ dir, maxBytes: 1 << 20 });
  for (let b = 0; b < 4; b++) await spool.append(records(2 * b, 2));
  const one = spool.bytes / 4;
  assert.deepEqual((await spool.peekUpTo(0)).map((b) => b.records.length), [2]);
  assert.deepEqual((await spool.peekUpTo(Math.floor(2.5 * one))).flatMap((b) => b.records.map((r) => r.id)), ['a:0', 'a:1', 'a:2', 'a:3']);
  assert.equal((await spool.peekUpTo(1 << 20)).length, 4);
  await writeFile(join(dir, '0000000000000002.batch'), 'torn');
  assert.deepEqual((await spool.peekUpTo(1 << 20)).map((b) => b.name), ['0000000000000000.batch', '0000000000000001.batch']);
  assert.equal(spool.size, 4, 'a corrupt later batch is left for when it is the oldest');
});

void test('SIGKILL while appending: every batch acknowledged before the kill is there, whole; nothing half-written', async (t) => {
  const dir = await tempDir(t);
  // A real process appends batches in a loop and prints each id once append() resolved.
  const script = `
    import { Spool } from ${JSON.stringify(new URL('../../../../aggregator/spool/spool.ts', import.meta.url).href)};
    const spool = await Spool.open({ dir: process.argv[1], maxBytes: 1 << 30 });
    for (let i = 0; ; i++) {
      const records = Array.from({ length: 50 }, (_, j) => ({ dataStream: 's', id: i + ':' + j, document: { message: 'x'.repeat(200) }, issues: [] }));
      await spool.append(records);
      process.stdout.write(i + '\\n');
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const acknowledged: number[] = [];
  const lines = createInterface({ input: child.stdout });
  await new Promise<void>((resolve) => {
    lines.on('line', (line) => {
      acknowledged.push(Number(line));
      if (acknowledged.length === 40) {
        child.kill('SIGKILL');
        resolve();
      }
    });
  });
  await new Promise((resolve) => child.once('exit', resolve));
  const spool = await Spool.open({ dir, maxBytes: 1 << 30 });
  const batches: number[] = [];
  for (let batch = await spool.peek(); batch !== undefined; batch = await spool.peek()) {
    assert.equal(batch.records.length, 50, 'a batch is whole');
    batches.push(Number(batch.records[0]!.id!.split(':')[0]));
    await spool.ack(batch.name);
  }
  // Every acknowledged batch, in order; perhaps one more that was synced but not yet printed.
  assert.deepEqual(batches.slice(0, acknowledged.length), acknowledged);
  assert.ok(batches.length - acknowledged.length <= 1);
  assert.ok(!(await readdir(dir)).some((n) => n.endsWith('.tmp')), 'open() removes unacknowledged .tmp files');
});
