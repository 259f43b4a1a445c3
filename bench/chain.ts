// The hash chain's cost on the agent: per record, the canonical text (RFC 8785) plus its SHA-256
// link, then the whole ChainProcessor step (numbering, reservation in chain.json on the real disk,
// attributes, the ack wrapper and the commit); per checkpoint, one Ed25519 signature (and, for the
// aggregator's side, one verification). Then the pipeline (logs SDK, batch processor, an exporter
// that acknowledges at once, memory buffer) without and with the chain, so the figure reads
// against the agent's target of 300k lines/s. Figures per record are CPU time; the pipeline's
// records/s are wall-clock time.
// Usage: node bench/chain.ts [records] (default 200,000).
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { openChain, type ChainProcessor } from '../agent/chain/chain-processor.ts';
import { hrTimeNanos } from '../core/integrity/record.ts';
import { Pipeline } from '../agent/pipeline/pipeline.ts';
import { agentResource } from '../agent/resource.ts';
import { chainHash, genesisHash } from '../core/integrity/chain.ts';
import { keyId, publicKeyPem, signCheckpoint, verifyCheckpoint } from '../core/integrity/checkpoint.ts';
import { canonicalRecord, type AttestedInput } from '../core/integrity/record.ts';
import { createLogger } from '../core/logger.ts';
import { recordAttr } from '../core/wire.ts';
import { ackingExporter } from './lib/acking-exporter.ts';

const total = Number(process.argv[2] ?? 200_000);
const logger = createLogger({ name: 'bench', level: 'silent' });
const resource = agentResource({ agentId: 'bench-agent', hostName: 'runner-01', labels: { team: 'platform' } });

function body(i: number): string {
  return `runner-01 sshd[2811]: Accepted publickey for deploy from 203.0.113.17 port ${50000 + (i % 10000)} ssh2: ED25519 SHA256:Xk3b${i}`;
}

function attributes(i: number): Record<string, string | number> {
  return { [recordAttr.dataset]: 'auth', [recordAttr.recordId]: `f0c1a2b3:${120 * i}`, [recordAttr.logFilePath]: '/var/log/auth.log', [recordAttr.logOffset]: 120 * i };
}

function record(i: number): ReadableLogRecord {
  return {
    hrTime: [1795688521 + i, 482113789],
    hrTimeObserved: [1795688521 + i, 482113790],
    severityNumber: 9,
    body: body(i),
    attributes: attributes(i),
    droppedAttributesCount: 0,
    resource,
    instrumentationScope: { name: 'ci-audit-agent' },
  };
}

/** CPU time of the process so far, in ms: the figure to compare on a machine shared with other work. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function nsPer(count: number, ms: number): string {
  return ((ms * 1e6) / count).toFixed(0).padStart(6);
}

// 1. Canonical text and hash alone.
{
  const records = Array.from({ length: 1000 }, (_, i) => record(i));
  let prev = genesisHash;
  let bytes = 0;
  const start = cpuMs();
  for (let i = 0; i < total; i++) {
    const r = records[i % 1000]!;
    const text = canonicalRecord({
      agent: 'bench-agent',
      seq: i + 1,
      timeUnixNano: hrTimeNanos(r.hrTime),
      observedTimeUnixNano: hrTimeNanos(r.hrTimeObserved),
      severityNumber: 9,
      body: r.body as AttestedInput,
      attributes: r.attributes as Record<string, AttestedInput>,
      resource: resource.attributes as Record<string, AttestedInput>,
    });
    bytes += text.length;
    prev = chainHash(prev, text);
  }
  const ms = cpuMs() - start;
  console.log(`core canonicalRecord + chainHash (aggregator, verify): ${nsPer(total, ms)} ns/record (${Math.round(bytes / total)} bytes of canonical text a record)`);
}

// 2. The whole chain step, on the real disk.
{
  const dir = await mkdtemp(join(tmpdir(), 'cia-bench-chain-'));
  try {
    const chain = await openChain({ stateDir: dir, agentId: 'bench-agent', keyId: 'k', reserveBlock: 4096, everyRecords: 1000, logger });
    const acks: (() => void)[] = [];
    const start = cpuMs();
    for (let i = 0; i < total; i++) {
      const r = record(i);
      chain.chain(r);
      acks.push(chain.wrapAck(undefined)!);
      // Acks come back per batch, as the batch processor calls them.
      if (acks.length === 512) for (const ack of acks.splice(0)) ack();
      if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
    }
    for (const ack of acks.splice(0)) ack();
    const ms = cpuMs() - start;
    await chain.close();
    console.log(`agent chain processor step (fast canonical writer): ${nsPer(total, ms)} ns/record (record built, numbered, reserved, hashed, committed)`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// 3. Checkpoint signatures.
{
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = publicKeyPem(publicKey);
  const statement = { type: 'checkpoint' as const, agent: 'bench-agent', key: keyId(pem), seq: 123_456, hash: 'ab'.repeat(32), timeUnixNano: 1_795_688_521_482_113_789n };
  const n = 5000;
  let start = cpuMs();
  let signed = signCheckpoint(statement, privateKey);
  for (let i = 1; i < n; i++) signed = signCheckpoint({ ...statement, seq: statement.seq + i }, privateKey);
  const signMs = cpuMs() - start;
  start = cpuMs();
  let ok = 0;
  for (let i = 0; i < n; i++) if (verifyCheckpoint(signed, publicKey)) ok++;
  const verifyMs = cpuMs() - start;
  if (ok !== n) throw new Error('a signature did not verify');
  console.log(`checkpoint signature     : ${nsPer(n, signMs)} ns/signature (${((signMs * 1e6) / n / 1000).toFixed(0)} ns per record at one checkpoint per 1,000 records)`);
  console.log(`checkpoint verification  : ${nsPer(n, verifyMs)} ns/verification`);
}

// 4. The pipeline without and with the chain.
async function pipeline(chained: boolean): Promise<{ perSecond: number; cpuNs: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'cia-bench-chain-pipeline-'));
  try {
    const { exporter, exported } = ackingExporter({ deferred: true });
    let chain: ChainProcessor | undefined;
    if (chained) {
      chain = await openChain({ stateDir: dir, agentId: 'bench-agent', keyId: 'k', reserveBlock: 4096, everyRecords: 1000, logger });
    }
    const p = new Pipeline({ resource, exporter, logger, maxBatchRecords: 512, maxDelayMs: 1000, chain });
    let acked = 0;
    const ack = (): void => void acked++;
    const start = performance.now();
    const cpuStart = cpuMs();
    for (let i = 0; i < total; i++) {
      const written = p.sink.write({ body: body(i), attributes: attributes(i), observedAt: Date.now(), ack });
      if (written !== true) await written;
      if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
    }
    await p.flush();
    const ms = performance.now() - start;
    const cpu = cpuMs() - cpuStart;
    await p.shutdown();
    await chain?.close();
    if (exported() < total || acked !== total) throw new Error(`accounting: ${exported()} exported, ${acked} acknowledged of ${total}`);
    return { perSecond: total / (ms / 1000), cpuNs: (cpu * 1e6) / total };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const plain = await pipeline(false);
const withChain = await pipeline(true);
console.log(
  `pipeline, memory buffer  : ${Math.round(plain.perSecond).toLocaleString('en')} records/s without the chain, ${Math.round(withChain.perSecond).toLocaleString('en')} records/s with it; ` +
    `${plain.cpuNs.toFixed(0)} and ${withChain.cpuNs.toFixed(0)} ns CPU/record (${(withChain.cpuNs - plain.cpuNs).toFixed(0)} more)`,
);
console.log(`peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`);
