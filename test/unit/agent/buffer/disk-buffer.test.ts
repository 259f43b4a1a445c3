import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mock, test, type TestContext } from 'node:test';
import { cursorFileName, DiskBuffer, type DiskBufferOptions, type DroppedSegment } from '../../../../agent/buffer/disk-buffer.ts';
import { createLogger } from '../../../../core/logger.ts';
import { captureLogger } from '../helpers.ts';

const logger = createLogger({ name: 'test', level: 'silent' });

async function bufferDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cia-buffer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function options(dir: string, o: Partial<DiskBufferOptions> = {}): DiskBufferOptions {
  return { dir, maxBytes: 1 << 20, segmentBytes: 4096, fsync: 'always', fsyncIntervalMs: 50, overflow: 'block', logger, ...o };
}

/** Record `n` padded to 100 bytes, so that 40 fill a 4 KiB segment. */
function rec(n: number): Buffer {
  return Buffer.from(`record-${String(n).padStart(5, '0')} `.padEnd(100, 'x'));
}

async function readAll(buffer: DiskBuffer): Promise<{ payload: Buffer; segment: number; ordinal: number }[]> {
  const out = [];
  for (;;) {
    const got = await buffer.read(64);
    if (got.length === 0) return out;
    out.push(...got);
  }
}

async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('segment-')).sort();
}

test('records come back in order across segments; acks run once durable; acknowledged segments are removed', async (t) => {
  const dir = await bufferDir(t);
  const { buffer } = await DiskBuffer.open(options(dir));
  let durable = 0;
  for (let i = 0; i < 200; i++) buffer.append(rec(i), () => durable++);
  await buffer.flushed();
  assert.equal(durable, 200);
  assert.ok((await segmentFiles(dir)).length >= 5, 'rolled over at segment_bytes');
  const entries = await readAll(buffer);
  assert.deepEqual(entries.map((e) => e.payload.toString().slice(0, 12)), Array.from({ length: 200 }, (_, i) => `record-${String(i).padStart(5, '0')}`));
  for (const e of entries) buffer.ack(e.segment, e.ordinal);
  await buffer.close();
  assert.deepEqual(await segmentFiles(dir), [], 'every segment delivered and removed');
});

test('after a restart, exactly the unacknowledged records are read again', async (t) => {
  const dir = await bufferDir(t);
  const first = await DiskBuffer.open(options(dir));
  for (let i = 0; i < 100; i++) first.buffer.append(rec(i));
  await first.buffer.flushed();
  const entries = await readAll(first.buffer);
  for (const e of entries.slice(0, 57)) first.buffer.ack(e.segment, e.ordinal);
  await first.buffer.close();
  const second = await DiskBuffer.open(options(dir));
  assert.deepEqual(second.damage, []);
  const again = await readAll(second.buffer);
  assert.deepEqual(again.map((e) => e.payload.toString()), entries.slice(57).map((e) => e.payload.toString()));
  await second.buffer.close();
});

test('a torn tail left by a crash is reported as damage; the intact records are still read', async (t) => {
  const dir = await bufferDir(t);
  const first = await DiskBuffer.open(options(dir, { segmentBytes: 1 << 16 }));
  for (let i = 0; i < 10; i++) first.buffer.append(rec(i));
  await first.buffer.close();
  const [file] = await segmentFiles(dir);
  const size = (await stat(join(dir, file!))).size;
  await truncate(join(dir, file!), size - 30);
  const second = await DiskBuffer.open(options(dir));
  assert.equal(second.damage.length, 1);
  assert.equal(second.damage[0]!.reason, 'torn');
  assert.equal(second.damage[0]!.lostBytes, 108 - 30);
  const again = await readAll(second.buffer);
  assert.equal(again.length, 9);
  await second.buffer.close();
});

test('block: a full buffer has no room until delivered records free a segment', async (t) => {
  const dir = await bufferDir(t);
  const { buffer } = await DiskBuffer.open(options(dir, { maxBytes: 8192, segmentBytes: 4096 }));
  let i = 0;
  while (buffer.hasRoom) {
    buffer.append(rec(i++));
    await buffer.flushed();
  }
  assert.ok(buffer.usedBytes >= 8192);
  let released = false;
  const room = buffer.waitForRoom().then(() => (released = true));
  const entries = await readAll(buffer);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(released, false, 'no room while nothing was acknowledged');
  for (const e of entries) buffer.ack(e.segment, e.ordinal);
  await room;
  assert.equal(buffer.hasRoom, true);
  await buffer.close();
});

test('drop_oldest: the oldest unsent segment is evicted and handed over with its records', async (t) => {
  const dir = await bufferDir(t);
  const { buffer } = await DiskBuffer.open(options(dir, { maxBytes: 8192, segmentBytes: 4096, overflow: 'drop_oldest' }));
  const dropped: DroppedSegment[] = [];
  buffer.onDrop = (d) => {
    dropped.push(d);
    return true;
  };
  // The reader holds the first segment (being sent), so it is never the one dropped.
  buffer.append(rec(0));
  await buffer.flushed();
  await buffer.read(1);
  for (let i = 1; i < 200; i++) {
    assert.equal(buffer.hasRoom, true, 'drop_oldest never blocks the sources');
    buffer.append(rec(i));
    if (i % 10 === 0) await buffer.flushed();
  }
  await buffer.flushed();
  assert.ok(dropped.length > 0);
  assert.ok(buffer.usedBytes <= 8192 + 4096, `bounded (used ${buffer.usedBytes})`);
  // Exact accounting: every record was read, dropped (inside a reported range, counted), or is still there.
  const n = (b: Buffer | undefined): number => Number(b!.toString().slice(7, 12));
  const seen: number[] = [0];
  for (const d of dropped) {
    assert.equal(n(d.payloads.at(-1)) - n(d.payloads[0]) + 1, d.payloads.length, 'a dropped segment hands over its records, in order');
    seen.push(...d.payloads.map((p) => n(p)));
  }
  const rest = (await readAll(buffer)).map((e) => n(e.payload));
  seen.push(...rest);
  assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i));
  assert.equal(rest.at(-1), 199, 'the newest records are kept');
  await buffer.close();
});

test('fsync interval: sources are acknowledged only after the periodic fsync, all of them', async (t) => {
  const dir = await bufferDir(t);
  const { buffer } = await DiskBuffer.open(options(dir, { fsync: 'interval', fsyncIntervalMs: 20 }));
  let durable = 0;
  for (let i = 0; i < 50; i++) buffer.append(rec(i), () => durable++);
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (durable === 50) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
  assert.equal(durable, 50);
  await buffer.close();
});

/** The first 12 characters of each entry: `record-NNNNN`. */
const names = (entries: readonly { payload: Buffer }[]): string[] => entries.map((e) => e.payload.toString().slice(0, 12));
const recordNames = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `record-${String(from + i).padStart(5, '0')}`);

test('a cursor entry left for a removed segment never applies to a new segment of the same name', async (t) => {
  const dir = await bufferDir(t);
  // What a crash between close() removing a delivered segment and its cursor write leaves (or a
  // failed cursor write): the saved prefix of a segment that is gone.
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, cursorFileName), JSON.stringify({ version: 1, prefixes: { 'segment-000000000000.buf': 10 } }));
  const second = await DiskBuffer.open(options(dir));
  let durable = 0;
  for (let i = 100; i < 112; i++) second.buffer.append(rec(i), () => durable++);
  await second.buffer.flushed();
  assert.equal(durable, 12, 'the sources were told these records are safe');
  // Killed before its first cursor save: no close().
  const third = await DiskBuffer.open(options(dir));
  assert.deepEqual(names(await readAll(third.buffer)), recordNames(100, 112), 'every record is read again, none skipped');
  await third.buffer.close();
  await second.buffer.close();
});

test('close() saves the cursor after a periodic save that was under way, so it names no removed segment', async (t) => {
  const dir = await bufferDir(t);
  mock.timers.enable({ apis: ['setInterval'] });
  t.after(() => mock.timers.reset());
  const { buffer } = await DiskBuffer.open(options(dir));
  for (let i = 0; i < 10; i++) buffer.append(rec(i));
  await buffer.flushed();
  for (const e of await readAll(buffer)) buffer.ack(e.segment, e.ordinal);
  mock.timers.tick(1000); // the periodic save starts, with segment 0's prefix of 10
  await buffer.close(); // removes segment 0
  assert.deepEqual(await segmentFiles(dir), []);
  assert.deepEqual(JSON.parse(await readFile(join(dir, cursorFileName), 'utf8')), { version: 1, prefixes: {} });
});

test('after a restart, the acknowledged prefix of a later segment is not read again', async (t) => {
  const dir = await bufferDir(t);
  const first = await DiskBuffer.open(options(dir));
  for (let i = 0; i < 80; i++) first.buffer.append(rec(i));
  await first.buffer.flushed();
  const entries = await readAll(first.buffer);
  // Batches answered out of order: segment 1's first ten acknowledged, segment 0's still out.
  const acked = entries.filter((e) => e.segment === 1).slice(0, 10);
  for (const e of acked) first.buffer.ack(e.segment, e.ordinal);
  await first.buffer.close();
  const second = await DiskBuffer.open(options(dir));
  const again = names(await readAll(second.buffer));
  assert.deepEqual(again, names(entries).filter((n) => !names(acked).includes(n)));
  await second.buffer.close();
});

test('a record appended as soon as waitForRoom() resolves is written by flushed()', async (t) => {
  const dir = await bufferDir(t);
  const { buffer } = await DiskBuffer.open(options(dir, { maxBytes: 64 << 20, segmentBytes: 16 << 20 }));
  buffer.append(Buffer.alloc(4 << 20, 0x61)); // 4 MiB waiting for the disk: no room
  assert.equal(buffer.hasRoom, false);
  await buffer.waitForRoom();
  let durable = false;
  buffer.append(rec(1), () => (durable = true));
  await buffer.flushed();
  assert.equal(durable, true, 'written and synced, not left in memory');
  assert.equal(buffer.unacknowledged, 2);
  await buffer.close();
});

test('a new segment that cannot be created: the records already written are not written twice, the rest follow once it can', async (t) => {
  const dir = await bufferDir(t);
  const { logger, lines } = captureLogger();
  const { buffer } = await DiskBuffer.open(options(dir, { logger }));
  let durable = 0;
  for (let i = 0; i < 20; i++) buffer.append(rec(i), () => durable++);
  await buffer.flushed();
  // A folder in the next segment's place: opening it fails (EISDIR), a real failure of #roll.
  const blocker = join(dir, 'segment-000000000001.buf');
  await mkdir(blocker);
  for (let i = 20; i < 80; i++) buffer.append(rec(i), () => durable++); // one round: fills segment 0, then rolls
  while (!lines.some((l) => l.code === 'CIA_ERR_BUFFER_IO')) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.match(String(lines.find((l) => l.code === 'CIA_ERR_BUFFER_IO')!.err), /EISDIR/);
  await rm(blocker, { recursive: true });
  await buffer.flushed();
  assert.equal(durable, 80, 'each source ack ran once');
  const entries = await readAll(buffer);
  assert.deepEqual(names(entries), recordNames(0, 80), 'each record once, in order');
  for (const e of entries) buffer.ack(e.segment, e.ordinal);
  await buffer.close();
  assert.deepEqual(await segmentFiles(dir), []);
});
