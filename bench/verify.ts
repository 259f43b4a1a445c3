// verify benchmark, in two parts.
// 1. The checker alone (no Elasticsearch): N records (default 1,000,000) of one agent, generated one
//    at a time with the real hashing and mapping and fed to the ChainChecker the way the reader
//    does; reports records/s and the heap after a full GC at 10 %, 50 % and 100 %, which stays flat
//    when the checker's memory does not grow with the record count.
// 2. End to end, when ES_URL is set (e.g. under `node scripts/elasticsearch.ts run --`): the chain
//    (default N/10 records, a signed checkpoint every 1000) indexed with bulk `create` as the
//    aggregator does, then `ci-audit verify` run as a child process: records/s and its peak RSS,
//    at a tenth and at the full size.
// Usage: node bench/verify.ts [checker records] [indexed records]
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Client } from '@elastic/elasticsearch';
import { ensureTemplates } from '../aggregator/index/setup.ts';
import { ChainChecker } from '../admin/verify/chain-check.ts';
import { verifyChains } from '../admin/verify/verify.ts';
import { genesisHash } from '../core/integrity/chain.ts';
import { keyId, publicKeyPem } from '../core/integrity/checkpoint.ts';
import { asHit, chainRecord, checkpoint, lineRecord, type SigningKey } from '../test/unit/verify/chain-fixture.ts';

const checkerTotal = Number(process.argv[2] ?? 1_000_000);
const total = Number(process.argv[3] ?? Math.floor(checkerTotal / 10));

// Part 1: the checker alone.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapMiB = (): number => {
  gc();
  return Math.round(process.memoryUsage().heapUsed / 1024 / 1024);
};
{
  const benchKey = generateKeyPairSync('ed25519');
  const signer: SigningKey = { privateKey: benchKey.privateKey, publicPem: publicKeyPem(benchKey.publicKey), id: keyId(benchKey.publicKey) };
  let findings = 0;
  const checker = new ChainChecker({ finding: () => findings++, notice: () => undefined }, { keys: new Map([['bench-agent', [signer.publicPem]]]), fromStart: true, toEnd: true });
  const heap: string[] = [`start ${heapMiB()} MiB`];
  let prev = genesisHash;
  let checkNs = 0n;
  const marks = new Set([Math.floor(checkerTotal / 10), Math.floor(checkerTotal / 2)]);
  for (let seq = 1; seq <= checkerTotal; seq++) {
    const r = chainRecord('bench-agent', 'bench', seq, prev, lineRecord('bench-agent', seq));
    prev = r.hash;
    const hit = asHit(r.doc);
    const started = process.hrtime.bigint();
    checker.record(hit);
    if (seq % 1000 === 0) checker.attestation({ origin: 'index', statement: checkpoint('bench-agent', 'bench', signer, seq, r.hash).statement });
    checkNs += process.hrtime.bigint() - started;
    if (marks.has(seq)) heap.push(`${seq.toLocaleString('en')}: ${heapMiB()} MiB`);
  }
  checker.end();
  heap.push(`${checkerTotal.toLocaleString('en')}: ${heapMiB()} MiB`);
  const seconds = Number(checkNs) / 1e9;
  console.log(`verify (checker alone): ${checkerTotal.toLocaleString('en')} records, ${Math.round(checkerTotal / seconds).toLocaleString('en')} records/s of checking (${((seconds * 1e6) / checkerTotal).toFixed(0)} µs each), ${findings} findings`);
  console.log(`  heap after GC: ${heap.join(', ')}`);
}

const esUrl = process.env.ES_URL;
if (esUrl === undefined || esUrl === '') {
  console.log('verify (end to end): skipped, needs Elasticsearch: node scripts/elasticsearch.ts run -- node bench/verify.ts [checker records] [indexed records]');
  process.exit(0);
}
const bin = fileURLToPath(new URL('../bin/ci-audit.js', import.meta.url));
const parsed = new URL(esUrl);
const es = new Client({ node: `${parsed.protocol}//${parsed.host}`, auth: { username: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password) }, requestTimeout: 120_000 });
await ensureTemplates(es, `${parsed.protocol}//${parsed.host}`);

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const key: SigningKey = { privateKey, publicPem: publicKeyPem(publicKey), id: keyId(publicKey) };
const dir = await mkdtemp(join(tmpdir(), 'cia-bench-verify-'));
const keysFile = join(dir, 'keys.json');

async function index(namespace: string, count: number): Promise<number> {
  const started = Date.now();
  let prev = genesisHash;
  let operations: unknown[] = [];
  const flush = async (): Promise<void> => {
    if (operations.length === 0) return;
    const r = await es.bulk({ operations });
    if (r.errors) throw new Error(`bulk errors: ${JSON.stringify(r.items.find((i) => i.create?.error !== undefined))}`);
    operations = [];
  };
  for (let seq = 1; seq <= count; seq++) {
    const r = chainRecord('bench-agent', namespace, seq, prev, lineRecord('bench-agent', seq));
    prev = r.hash;
    operations.push({ create: { _index: r.doc.stream, _id: r.doc._id } }, r.doc.document);
    if (seq % 1000 === 0) {
      const cp = checkpoint('bench-agent', namespace, key, seq, r.hash);
      operations.push({ create: { _index: cp.doc.stream, _id: cp.doc._id } }, cp.doc.document);
    }
    if (operations.length >= 10_000) await flush();
  }
  await flush();
  await es.indices.refresh({ index: `logs-ci_audit.*-${namespace}` });
  return (Date.now() - started) / 1000;
}

interface Measured {
  seconds: number;
  rate: number;
  maxRssMiB: number;
  findings: number;
}

/** Runs the real command; peak RSS of the child from its resource usage at exit. */
function runVerify(namespace: string): Promise<Measured> {
  // The child prints its own peak RSS on exit (a preload of one line), so that the figure is the verifier's, not this process's.
  const child = spawn(process.execPath, ['--import', 'data:text/javascript,process.on("exit",()=>process.stderr.write("maxrss "+process.resourceUsage().maxRSS+"\\n"))', bin, 'verify', '--namespace', namespace, '--keys', keysFile, '--json', '--page-size', '5000'], {
    env: { ...process.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) =>
    child.once('close', (code) => {
      const rss = /maxrss (\d+)/.exec(stderr);
      if (code !== 0 || rss === null) return reject(new Error(`verify exited ${code}: ${stderr.slice(-2000)}`));
      const report = JSON.parse(stdout) as { summary: { seconds: number; records_per_second: number; findings: number } };
      resolve({ seconds: report.summary.seconds, rate: report.summary.records_per_second, maxRssMiB: Math.round(Number(rss[1]) / 1024), findings: report.summary.findings });
    }),
  );
}

try {
  await writeFile(keysFile, JSON.stringify({ 'bench-agent': key.publicPem }));
  console.log('verify (end to end): ci-audit verify as a process against Elasticsearch (one agent, checkpoint every 1000 records)');
  for (const count of [Math.max(1, Math.floor(total / 10)), total]) {
    const namespace = `benchverify${count}_${Date.now().toString(36)}`;
    const indexSeconds = await index(namespace, count);
    const m = await runVerify(namespace);
    console.log(
      `  ${count.toLocaleString('en')} records (indexed in ${indexSeconds.toFixed(0)} s): verified in ${m.seconds.toFixed(1)} s, ` +
        `${m.rate.toLocaleString('en')} records/s, peak RSS ${m.maxRssMiB} MiB, ${m.findings} findings`,
    );
    // The same in this process, the heap after a full GC every tenth of the way: flat when nothing accumulates.
    const marks: number[] = [];
    await verifyChains(
      es,
      `${parsed.protocol}//${parsed.host}`,
      { namespace, keys: new Map([['bench-agent', [key.publicPem]]]), pageSize: 5000, progressEvery: Math.max(1, Math.floor(count / 10)), onProgress: () => marks.push(heapMiB()) },
      { finding: () => undefined, notice: () => undefined },
    );
    console.log(`    heap after GC while verifying (MiB, every tenth): ${marks.join(' ')}`);
    await es.indices.deleteDataStream({ name: `logs-ci_audit.*-${namespace}` }).catch(async () => {
      const resolved = await es.indices.resolveIndex({ name: `logs-ci_audit.*-${namespace}`, expand_wildcards: 'all' });
      for (const s of resolved.data_streams) await es.indices.rollover({ alias: s.name });
      const after = await es.indices.resolveIndex({ name: `.ds-logs-ci_audit.*-${namespace}-*`, expand_wildcards: 'all' });
      const old = after.indices.map((i) => i.name).filter((n) => !n.endsWith('000002'));
      if (old.length > 0) await es.indices.delete({ index: old });
    });
  }
} finally {
  await rm(dir, { recursive: true, force: true });
  await es.close();
}
