// Disk buffer benchmark: the cost of each fsync policy. Records shaped as the agent stores them
// (record-codec.ts: an auth line with its wire attributes, ~400 bytes) are appended the way the
// pipeline appends them (synchronously per record, waiting when the buffer has no room), until
// every source ack ran (the records are durable per the policy); then read back and acknowledged
// as the sender does. Then the whole pipeline (logs SDK, batch processor, an exporter that
// acknowledges at once) with `buffer.type: memory` and with `disk` under each policy: records
// handed to the sink until all are acknowledged, so the figure includes encoding to and decoding
// from the buffer. On the machine's real disk.
// With --agent: the real agent instead (`ci-audit agent run`, a process of its own) following a file
// of auth lines the whole way to a local OTLP/HTTP receiver that counts and discards what it gets,
// with `buffer.type: memory` and with the disk buffer under each fsync policy: lines/s from the
// agent's start to the last record received, the agent's CPU seconds and its peak RSS (and, at the
// highest sample, how much of it is anonymous memory and how much file-backed pages); then the
// same from the first request received on, which leaves the start-up (about half a CPU second of
// module loading and set-up) out: a per-line figure comparable with a shipper that runs for days.
// Usage: node bench/ship.ts [records] [--agent [--max-records N] [--compression gzip|zstd|none]
// [--buffers memory,never,...] [--trace-gc FILE]] (default 200,000; N: the agent's
// output.batch.max_records; the compression its output.compression; each by default the agent's
// default; --buffers: only these of memory, never, interval, always; --trace-gc: the agent runs with
// V8's --trace-gc-nvp, its output written to FILE.<buffer>, and a summary of it printed: how many
// young-generation and full GCs, and the bytes promoted to the old generation).
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { Pipeline } from '../agent/pipeline/pipeline.ts';
import { agentResource } from '../agent/resource.ts';
import { DiskBuffer, type FsyncPolicy } from '../agent/buffer/disk-buffer.ts';
import { encodeRecord } from '../agent/buffer/record-codec.ts';
import { createLogger } from '../core/logger.ts';
import { recordAttr } from '../core/wire.ts';
import { decodeBody, encodingOf } from '../aggregator/receiver/body.ts';
import { decodeProtobufLogs } from '../aggregator/receiver/otlp-decode.ts';
import { compressionCodecs, type CompressionCodec } from '../agent/sinks/compression.ts';
import { CliProcess } from '../scripts/lib/cli-process.ts';
import { ackingExporter } from './lib/acking-exporter.ts';

const args = process.argv.slice(2);
const maxRecordsAt = args.indexOf('--max-records');
const maxRecords = maxRecordsAt === -1 ? undefined : Number(args[maxRecordsAt + 1]);
const compressionAt = args.indexOf('--compression');
const compression = compressionAt === -1 ? undefined : (args[compressionAt + 1] as CompressionCodec);
if (compression !== undefined && !compressionCodecs.includes(compression)) throw new Error(`--compression takes ${compressionCodecs.join(', ')}`);
const buffersAt = args.indexOf('--buffers');
const agentModes = ['memory', 'never', 'interval', 'always'] as const;
const buffers = buffersAt === -1 ? agentModes : agentModes.filter((m) => args[buffersAt + 1]!.split(',').includes(m));
const traceGcAt = args.indexOf('--trace-gc');
const traceGc = traceGcAt === -1 ? undefined : args[traceGcAt + 1];
const valueAt = new Set([maxRecordsAt, compressionAt, buffersAt, traceGcAt].filter((i) => i !== -1).map((i) => i + 1));
const total = Number(args.find((a, i) => !a.startsWith('--') && !valueAt.has(i)) ?? 200_000);
const logger = createLogger({ name: 'bench', level: 'silent' });
const resource = resourceFromAttributes({});

function payload(i: number): Buffer {
  return encodeRecord({
    hrTime: [1795688521 + i, 482113789],
    hrTimeObserved: [1795688521 + i, 482113789],
    severityNumber: 9,
    body: `runner-01 sshd[2811]: Accepted publickey for deploy from 203.0.113.17 port ${50000 + (i % 10000)} ssh2: ED25519 SHA256:Xk3b${i}`,
    attributes: { [recordAttr.dataset]: 'auth', [recordAttr.recordId]: `f0c1a2b3:${120 * i}`, [recordAttr.logFilePath]: '/var/log/auth.log', [recordAttr.logOffset]: 120 * i },
    droppedAttributesCount: 0,
    resource,
    instrumentationScope: { name: 'ci-audit-agent' },
  });
}

async function run(fsync: FsyncPolicy): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'cia-bench-buffer-'));
  try {
    const { buffer } = await DiskBuffer.open({ dir, maxBytes: 256 * 1024 * 1024, segmentBytes: 8 * 1024 * 1024, fsync, fsyncIntervalMs: 1000, overflow: 'block', logger });
    let durable = 0;
    const ack = (): void => void durable++;
    const payloads = Array.from({ length: 1000 }, (_, i) => payload(i));
    const start = performance.now();
    for (let i = 0; i < total; i++) {
      buffer.append(payloads[i % 1000]!, ack);
      // A source yields to the event loop between reads; 1,000 lines per read is what a busy file gives.
      if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
      if (!buffer.hasRoom) await buffer.waitForRoom();
    }
    await buffer.flushed();
    const appendMs = performance.now() - start;
    const readStart = performance.now();
    let read = 0;
    for (;;) {
      const entries = await buffer.read(512);
      if (entries.length === 0) break;
      read += entries.length;
      for (const e of entries) buffer.ack(e.segment, e.ordinal);
    }
    const readMs = performance.now() - readStart;
    await buffer.close();
    if (durable !== total || read !== total) throw new Error(`accounting: ${durable} durable, ${read} read of ${total}`);
    console.log(
      `fsync ${fsync.padEnd(8)} append until durable: ${Math.round(total / (appendMs / 1000)).toLocaleString('en')} records/s; ` +
        `read back + ack: ${Math.round(total / (readMs / 1000)).toLocaleString('en')} records/s; ${payloads[0]!.length} bytes a record`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function pipeline(fsync: FsyncPolicy | 'memory'): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'cia-bench-pipeline-'));
  try {
    const { exporter, exported } = ackingExporter({ deferred: true });
    const diskBuffer =
      fsync === 'memory'
        ? undefined
        : await DiskBuffer.open({ dir, maxBytes: 256 * 1024 * 1024, segmentBytes: 8 * 1024 * 1024, fsync, fsyncIntervalMs: 1000, overflow: 'block', logger });
    const p = new Pipeline({ resource: agentResource({ agentId: 'bench' }), exporter, logger, maxBatchRecords: 512, maxDelayMs: 1000, diskBuffer });
    let acked = 0;
    const ack = (): void => void acked++;
    const start = performance.now();
    for (let i = 0; i < total; i++) {
      const written = p.sink.write({
        body: `runner-01 sshd[2811]: Accepted publickey for deploy from 203.0.113.17 port ${50000 + (i % 10000)} ssh2: ED25519 SHA256:Xk3b${i}`,
        attributes: { [recordAttr.dataset]: 'auth', [recordAttr.recordId]: `f0c1a2b3:${120 * i}`, [recordAttr.logFilePath]: '/var/log/auth.log', [recordAttr.logOffset]: 120 * i },
        observedAt: Date.now(),
        ack,
      });
      if (written !== true) await written;
      if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
    }
    await p.flush();
    const ms = performance.now() - start;
    await p.shutdown();
    if (exported() < total || acked !== total) throw new Error(`accounting: ${exported()} exported, ${acked} acknowledged of ${total}`);
    console.log(`pipeline, buffer ${fsync === 'memory' ? 'memory        ' : `disk ${fsync.padEnd(8)} `}: ${Math.round(total / (ms / 1000)).toLocaleString('en')} records/s handed over and delivered`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A local OTLP/HTTP receiver that decodes each request only to count its records, then discards it. */
async function discardingReceiver(): Promise<{ url: string; received: () => number; close: () => Promise<void> }> {
  let received = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      received += decodeProtobufLogs(decodeBody(body, encodingOf(req.headers['content-encoding'])!, 64 * 1024 * 1024)).length;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, received: () => received, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** A file of `count` auth lines in `dir` and the configuration of an agent that follows it; returns the configuration's path. */
async function agentFiles(dir: string, count: number, url: string, buffer: FsyncPolicy | 'memory'): Promise<string> {
  const log = join(dir, 'auth.log');
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    lines.push(`2026-11-26T09:12:01.482113+00:00 runner-01 sshd[2811]: Accepted publickey for deploy from 203.0.113.17 port ${50000 + (i % 10000)} ssh2: ED25519 SHA256:Xk3b${i}`);
  }
  await writeFile(log, lines.join('\n') + '\n');
  const config = join(dir, 'agent.yaml');
  await writeFile(
    config,
    JSON.stringify({
      agent: { id: 'bench-ship', state_dir: join(dir, 'state') },
      sources: [{ type: 'file', id: 'auth', include: [log], dataset: 'auth' }],
      output: {
        url,
        ...(maxRecords === undefined ? {} : { batch: { max_records: maxRecords } }),
        ...(compression === undefined ? {} : { compression }),
      },
      buffer: buffer === 'memory' ? { type: 'memory' } : { type: 'disk', fsync: buffer },
      log: { level: 'warn', format: 'json' },
    }),
  );
  return config;
}

async function agentProcess(buffer: FsyncPolicy | 'memory'): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'cia-bench-agent-'));
  const receiver = await discardingReceiver();
  let agent: CliProcess | undefined;
  try {
    const config = await agentFiles(dir, total, receiver.url, buffer);
    const start = performance.now();
    const gcFile = traceGc === undefined ? undefined : `${traceGc}.${buffer}`;
    agent = new CliProcess(
      ['agent', 'run', '--config', config],
      // --trace-gc-nvp is not allowed in NODE_OPTIONS: a preload turns it on.
      gcFile === undefined ? {} : { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${traceGcPreload}`.trim() },
    );
    if (gcFile !== undefined) agent.child.stdout!.pipe(createWriteStream(gcFile));
    const pid = agent.child.pid!;
    let peakKb = 0;
    // The split of the highest RSS sampled: anonymous memory (heap, buffers, malloc) and file-backed
    // pages, nearly all of them the Node.js binary's code and data, which no change of ours moves.
    let split = { totalKb: 0, anonKb: 0, fileKb: 0 };
    let cpu = 0;
    // Where the first records arrived: from there on the agent is shipping, its start-up behind it.
    let first: { seconds: number; cpu: number; received: number } | undefined;
    while (receiver.received() < total) {
      if (!agent.running) throw new Error(`the agent exited: ${agent.rawStderr.slice(-5).join('\n')}`);
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      peakKb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? peakKb);
      const anonKb = Number(/RssAnon:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
      const fileKb = Number(/RssFile:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
      if (anonKb + fileKb > split.totalKb) split = { totalKb: anonKb + fileKb, anonKb, fileKb };
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpu = (Number(fields[11]) + Number(fields[12])) / 100;
      const received = receiver.received();
      if (first === undefined && received > 0) first = { seconds: (performance.now() - start) / 1000, cpu, received };
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const seconds = (performance.now() - start) / 1000;
    const shipped = first === undefined ? undefined : { lines: total - first.received, seconds: seconds - first.seconds, cpu: cpu - first.cpu };
    console.log(
      `agent process${compression === undefined ? '' : ` (${compression})`}, buffer ${buffer === 'memory' ? 'memory        ' : `disk ${buffer.padEnd(8)} `}: ${Math.round(total / seconds).toLocaleString('en')} lines/s file -> receiver ` +
        `(incl. start-up), ${cpu.toFixed(1)} CPU s, peak RSS ${Math.round(peakKb / 1024)} MB ` +
        `(highest sample: ${Math.round(split.anonKb / 1024)} MB anonymous, ${Math.round(split.fileKb / 1024)} MB file-backed)` +
        (shipped === undefined || shipped.lines === 0
          ? ''
          : `; from the first request on: ${Math.round(shipped.lines / shipped.seconds).toLocaleString('en')} lines/s, ${((1e6 * shipped.cpu) / shipped.lines).toFixed(1)} µs CPU a line`),
    );
    if (gcFile !== undefined) console.log(`  GC over the run (start-up included): ${summarizeGc(await readFile(gcFile, 'utf8'))}`);
  } finally {
    await agent?.stop();
    await receiver.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const traceGcPreload = "--import=data:text/javascript,(await%20import('node:v8')).setFlagsFromString('--trace-gc-nvp')";

/** Counts of --trace-gc-nvp's lines so far: scavenges, mark-compacts, bytes promoted, pause time. */
function summarizeGc(text: string): string {
  let scavenges = 0;
  let fullGcs = 0;
  let promoted = 0;
  let pauseMs = 0;
  for (const line of text.split('\n')) {
    const kind = /\bgc=(\w+)/.exec(line)?.[1];
    if (kind === undefined) continue;
    if (kind === 's') scavenges++;
    else if (kind === 'mc' || kind === 'ms') fullGcs++;
    promoted += Number(/\bpromoted=(\d+)/.exec(line)?.[1] ?? 0);
    pauseMs += Number(/\bpause=([\d.]+)/.exec(line)?.[1] ?? 0);
  }
  return `${scavenges} scavenges, ${fullGcs} full GCs, ${(promoted / 1024 / 1024).toFixed(1)} MB promoted, ${pauseMs.toFixed(0)} ms of pauses`;
}

if (args.includes('--agent')) {
  for (const mode of buffers) await agentProcess(mode);
} else {
  for (const policy of ['never', 'interval', 'always'] as const) await run(policy);
  for (const mode of ['memory', 'never', 'interval', 'always'] as const) await pipeline(mode);
  console.log(`peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`);
}
