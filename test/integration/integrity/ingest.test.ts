// The aggregator's verify stage against the real Elasticsearch in ES_URL: chained OTLP records
// (protobuf, built the way the agent builds them with core/integrity) sent to a real in-process
// aggregator, then the indexed documents and integrity events read back.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogRecord } from '@opentelemetry/api';
import pino from 'pino';
import { aggregatorConfigSchema } from '../../../config/schema.ts';
import { chainHash, genesisHash } from '../../../core/integrity/chain.ts';
import { checkpointAttributes, keyId, publicKeyPem, signCheckpoint } from '../../../core/integrity/checkpoint.ts';
import type { CheckpointType } from '../../../core/integrity/checkpoint.ts';
import { canonicalRecord } from '../../../core/integrity/record.ts';
import { chainAttr, chainGapAttr, dataStreamName, recordAttr } from '../../../core/wire.ts';
import { AgentRegistry } from '../../../aggregator/auth/registry.ts';
import { startAggregator } from '../../../aggregator/run.ts';
import type { AggregatorHandle } from '../../../aggregator/run.ts';
import { agentResource, emitRecords, protobufBody } from '../../unit/aggregator/otlp-fixtures.ts';
import { cleanupNamespace, esClient, eventually, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';
import { startAgentProcess, startAggregatorProcess } from '../../helpers/pipeline-processes.ts';

type Source = Record<string, unknown> & {
  agent?: { id?: string };
  event?: { kind?: string; action?: string };
  ci_audit: Record<string, unknown> & {
    verified?: boolean;
    chain?: { seq: number; hash: string; prev_hash: string; record?: string };
    checkpoint?: Record<string, unknown>;
    integrity?: Record<string, unknown>;
  };
};
interface Hit {
  _index: string;
  _id: string;
  _source: Source;
}

/** One agent's side of the contract: a chain head, a key, records as the SDK emits them. */
class Agent {
  readonly id: string;
  readonly resource: Record<string, string>;
  head = { seq: 0, hash: genesisHash };
  key = newKey();

  constructor(id: string) {
    this.id = id;
    this.resource = agentResource(id);
  }

  /** The next chained record; `seq`/`prevHash` override the chain's own (forks, gaps), `hash` a forged one. */
  record(body: string, options: { seq?: number; prevHash?: string; hash?: string; attributes?: Record<string, string | number> } = {}): LogRecord {
    const seq = options.seq ?? this.head.seq + 1;
    const prevHash = options.prevHash ?? this.head.hash;
    const seconds = 1_795_688_521 + seq;
    const attributes = { [recordAttr.dataset]: 'auth', [recordAttr.recordId]: `r-${seq}`, 'user.name': 'deploy', ...options.attributes };
    const canonical = canonicalRecord({
      agent: this.id,
      seq,
      timeUnixNano: BigInt(seconds) * 1_000_000_000n + 482_113_789n,
      observedTimeUnixNano: BigInt(seconds) * 1_000_000_000n + 500_000_000n,
      severityNumber: 9,
      body,
      attributes,
      resource: this.resource,
    });
    const hash = chainHash(prevHash, canonical);
    this.head = { seq, hash };
    return {
      timestamp: [seconds, 482_113_789],
      observedTimestamp: [seconds, 500_000_000],
      severityNumber: 9,
      body,
      attributes: { ...attributes, [chainAttr.seq]: seq, [chainAttr.hash]: options.hash ?? hash, [chainAttr.prevHash]: prevHash },
    };
  }

  /** A checkpoint over the head, signed by `signer` (default: the agent's key) and naming `key`. */
  checkpoint(options: { type?: CheckpointType; next?: TestKey; signer?: TestKey; key?: TestKey } = {}): LogRecord {
    const key = options.key ?? this.key;
    const time = 1_795_688_600_000_000_000n + BigInt(this.head.seq);
    const signed = signCheckpoint(
      {
        type: options.type ?? 'checkpoint',
        agent: this.id,
        key: key.id,
        seq: this.head.seq,
        hash: this.head.hash,
        timeUnixNano: time,
        ...(options.next === undefined ? {} : { nextKey: options.next.id, nextPublicKey: options.next.pem }),
      },
      (options.signer ?? key).privateKey,
    );
    const attributes = checkpointAttributes(signed);
    return { timestamp: [Number(time / 1_000_000_000n), 0], body: `checkpoint ${this.head.seq}`, attributes };
  }
}

interface TestKey {
  privateKey: KeyObject;
  pem: string;
  id: string;
}

function newKey(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = publicKeyPem(publicKey);
  return { privateKey, pem, id: keyId(pem) };
}

interface Setup {
  namespace: string;
  dir: string;
  es: ReturnType<typeof esClient>;
  registryFile: string;
  anchorFile: string;
  aggregator?: AggregatorHandle;
  start(): Promise<AggregatorHandle>;
  /** Enrolls `agent` with its key; returns its bearer token. */
  enroll(agent: Agent): Promise<string>;
  send(agent: Agent, records: LogRecord[], token?: string): Promise<Response>;
  docs(agent: Agent): Promise<Hit[]>;
  events(agent: Agent): Promise<Hit[]>;
}

async function setup(t: TestContext, options: { auth?: boolean; graceMs?: number } = {}): Promise<Setup> {
  const url = requireEsUrl();
  const es = esClient(url);
  const namespace = uniqueNamespace('integrity');
  const dir = await mkdtemp(join(tmpdir(), 'integrity-it-'));
  const registryFile = join(dir, 'agents.json');
  const anchorFile = join(dir, 'anchors.jsonl');
  const s: Setup = {
    namespace,
    dir,
    es,
    registryFile,
    anchorFile,
    async start() {
      const config = aggregatorConfigSchema.parse({
        listen: { port: 0 },
        auth: options.auth === true ? { mode: 'token', registry_file: registryFile } : { mode: 'none' },
        elasticsearch: { url, namespace, bulk: { max_delay_ms: 0 } },
        // Long enough for a first request that creates the data streams to finish before its hole is due.
        integrity: { anchor_file: anchorFile, gap_grace_ms: options.graceMs ?? 1500 },
      });
      s.aggregator = await startAggregator(config, pino({ level: 'silent' }));
      const receiver = s.aggregator.url;
      await eventually(async () => (await fetch(`${receiver}/healthz`)).status === 200, 'the aggregator to report Elasticsearch ready');
      return s.aggregator;
    },
    async enroll(agent) {
      const registry = await AgentRegistry.open(registryFile);
      const { token } = await registry.createEnrollmentToken({ uses: 1, ttlSeconds: 600 });
      return (await registry.enroll(token, agent.id, agent.key.pem)).token;
    },
    async send(agent, records, token) {
      const body = protobufBody(await emitRecords({ resource: agent.resource, scope: { name: 'ci-audit.file', version: '0.1.0' }, records }));
      const headers: Record<string, string> = { 'content-type': 'application/x-protobuf' };
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      return fetch(`${s.aggregator!.url}/v1/logs`, { method: 'POST', headers, body });
    },
    async docs(agent) {
      await es.indices.refresh({ index: `logs-ci_audit.*-${namespace}`, ignore_unavailable: true, allow_no_indices: true });
      const result = await es.search({
        index: `logs-ci_audit.*-${namespace}`,
        size: 1000,
        query: { bool: { filter: [{ term: { 'agent.id': agent.id } }], must_not: [{ exists: { field: 'ci_audit.integrity' } }] } },
        sort: [{ 'ci_audit.chain.seq': { order: 'asc', unmapped_type: 'long' } }, { '@timestamp': 'asc' }],
      });
      return result.hits.hits as unknown as Hit[];
    },
    async events(agent) {
      const index = dataStreamName('integrity', namespace);
      await es.indices.refresh({ index, ignore_unavailable: true, allow_no_indices: true });
      const result = await es.search({
        index,
        ignore_unavailable: true,
        allow_no_indices: true,
        size: 1000,
        query: { bool: { filter: [{ term: { 'agent.id': agent.id } }, { exists: { field: 'event.action' } }] } },
        sort: [{ 'ci_audit.integrity.first_seq': { order: 'asc', unmapped_type: 'long' } }, { 'event.action': { order: 'asc', unmapped_type: 'keyword' } }],
      });
      return result.hits.hits as unknown as Hit[];
    },
  };
  // One hook, in order: a failing step must not leave a server listening.
  t.after(async () => {
    try {
      await s.aggregator?.close();
      await cleanupNamespace(es, namespace);
    } finally {
      await es.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
  return s;
}

const actions = (hits: Hit[]) => hits.map((h) => [h._source.event?.action, h._source.ci_audit.integrity?.first_seq, h._source.ci_audit.integrity?.last_seq]);

async function ok(response: Promise<Response>): Promise<void> {
  const r = await response;
  assert.equal(r.status, 200, await r.text());
}

void test('a clean chain is stored with its chain fields, canonical record and _id; a re-send is one document and no event', async (t) => {
  const s = await setup(t);
  await s.start();
  const agent = new Agent(`clean-${randomBytes(3).toString('hex')}`);
  const records = [agent.record('sshd: Accepted publickey for deploy'), agent.record('sudo: deploy : COMMAND=/usr/bin/id'), agent.record('sshd: session closed')];
  await ok(s.send(agent, records));
  await ok(s.send(agent, records));
  const docs = await s.docs(agent);
  assert.deepEqual(docs.map((d) => d._id), [1, 2, 3].map((n) => `${agent.id}:seq:${n}`));
  let prev = genesisHash;
  for (const [i, doc] of docs.entries()) {
    const chain = doc._source.ci_audit.chain!;
    assert.equal(chain.seq, i + 1);
    assert.equal(chain.prev_hash, prev);
    assert.equal(chainHash(prev, chain.record!), chain.hash, 'the stored canonical record re-hashes to the stored hash');
    assert.equal((JSON.parse(chain.record!) as { agent: string }).agent, agent.id);
    assert.equal(doc._source.ci_audit.verified, true);
    assert.equal((doc._source.ci_audit.attributes as Record<string, unknown> | undefined)?.[chainAttr.seq], undefined);
    prev = chain.hash;
  }
  assert.deepEqual(await s.events(agent), []);
});

void test('a hole is reported as chain_gap after the grace; a hole filled in time is not', async (t) => {
  const s = await setup(t);
  await s.start();
  const agent = new Agent(`gap-${randomBytes(3).toString('hex')}`);
  const [r1, r2, r3] = [agent.record('one'), agent.record('two'), agent.record('three')];
  // 3 overtakes 2 (a retry, another request in flight), 2 follows: no event.
  await ok(s.send(agent, [r1, r3]));
  await ok(s.send(agent, [r2]));
  // 4 and 5 never arrive.
  agent.record('four');
  agent.record('five');
  await ok(s.send(agent, [agent.record('six')]));
  let events: Hit[] = [];
  await eventually(async () => (events = await s.events(agent)).length > 0, 'the chain_gap event');
  assert.deepEqual(actions(events), [['chain_gap', 4, 5]]);
  const gap = events[0]!;
  assert.equal(gap._source.event?.kind, 'alert');
  assert.equal(gap._id, `${agent.id}:integrity:chain_gap:4-5`);
  assert.match(String(gap._source.message), /Records 4-5 of agent .* never arrived/);
  assert.deepEqual((await s.docs(agent)).map((d) => d._source.ci_audit.chain!.seq), [1, 2, 3, 6]);
});

void test('a declared gap is an event (not an alert) with its reason, and no chain_gap', async (t) => {
  const s = await setup(t);
  await s.start();
  const agent = new Agent(`declared-${randomBytes(3).toString('hex')}`);
  await ok(s.send(agent, [agent.record('one'), agent.record('two')]));
  const committed = agent.head;
  // The agent crashed with seqs up to 4096 reserved: the resume record links to the committed head.
  const resume = agent.record('agent resumed after an unclean stop', {
    seq: 4097,
    prevHash: committed.hash,
    attributes: { [chainGapAttr.firstSeq]: 3, [chainGapAttr.lastSeq]: 4096, [chainGapAttr.reason]: 'unclean_stop' },
  });
  await ok(s.send(agent, [resume, agent.record('after the resume')]));
  // A real gap behind it, as the marker that sweeps ran past the declared one.
  agent.record('lost');
  await ok(s.send(agent, [agent.record('after the loss')]));
  let events: Hit[] = [];
  await eventually(async () => (events = await s.events(agent)).some((e) => e._source.event?.action === 'chain_gap'), 'the chain_gap event');
  assert.deepEqual(actions(events), [['chain_gap_declared', 3, 4096], ['chain_gap', 4099, 4099]]);
  assert.equal(events[0]!._source.event?.kind, 'event');
  assert.equal(events[0]!._source.ci_audit.integrity?.reason, 'unclean_stop');
  assert.equal(events[0]!._source.ci_audit.integrity?.doc_id, `${agent.id}:seq:4097`);
});

void test('a second record at a held seq with another hash is a chain_fork; the stored one is kept and the other is in the event', async (t) => {
  const s = await setup(t);
  await s.start();
  const agent = new Agent(`fork-${randomBytes(3).toString('hex')}`);
  await ok(s.send(agent, [agent.record('one'), agent.record('two')]));
  const stored = agent.head;
  const other = agent.record('two, rewritten', { seq: 2, prevHash: (await s.docs(agent))[0]!._source.ci_audit.chain!.hash });
  await ok(s.send(agent, [other]));
  const events = await s.events(agent);
  assert.deepEqual(actions(events), [['chain_fork', 2, 2]]);
  const fork = events[0]!._source.ci_audit.integrity!;
  assert.equal(fork.stored_hash, stored.hash);
  assert.equal(fork.received_hash, agent.head.hash);
  assert.match(String(fork.received_record), /two, rewritten/);
  const docs = await s.docs(agent);
  assert.deepEqual(docs.map((d) => d._source.message), ['one', 'two']);
});

void test('a record id naming a chained record\'s _id gets an _id of its own: both records are stored, no event', async (t) => {
  const s = await setup(t);
  await s.start();
  const agent = new Agent(`planted-${randomBytes(3).toString('hex')}`);
  // The same agent (any holder of its credential) sends an unchained record first, whose record id is
  // what follows `<agent>:` in its chained record 2's _id; then its chain.
  const planted: LogRecord = { timestamp: [1_795_688_521, 0], body: 'planted', attributes: { [recordAttr.dataset]: 'auth', [recordAttr.recordId]: 'seq:2' } };
  await ok(s.send(agent, [planted]));
  await ok(s.send(agent, [agent.record('one'), agent.record('two')]));
  const docs = await s.docs(agent);
  assert.deepEqual(docs.map((d) => d._id).sort(), [`${agent.id}:id:seq:2`, `${agent.id}:seq:1`, `${agent.id}:seq:2`].sort());
  assert.deepEqual(docs.filter((d) => d._source.ci_audit.chain !== undefined).map((d) => d._source.message), ['one', 'two']);
  assert.deepEqual(await s.events(agent), []);
});

void test('a chained record whose _id a document without a chain holds is a chain_fork, never a quiet duplicate', async (t) => {
  const s = await setup(t);
  await s.start();
  const agent = new Agent(`taken-${randomBytes(3).toString('hex')}`);
  // Whatever wrote it (an unchained record before ids had kinds, a planted document): no chain hash at seq 2's _id.
  await s.es.create({
    index: dataStreamName('auth', s.namespace),
    id: `${agent.id}:seq:2`,
    document: { '@timestamp': new Date().toISOString(), message: 'planted', agent: { id: agent.id } },
    refresh: 'true',
  });
  await ok(s.send(agent, [agent.record('one'), agent.record('two')]));
  const events = await s.events(agent);
  assert.deepEqual(actions(events), [['chain_fork', 2, 2]]);
  const fork = events[0]!._source;
  assert.equal(fork.event?.kind, 'alert');
  assert.equal(fork.ci_audit.integrity?.doc_id, `${agent.id}:seq:2`);
  assert.equal(fork.ci_audit.integrity?.reason, 'not_chained');
  assert.equal(fork.ci_audit.integrity?.stored_hash, undefined);
  assert.equal(fork.ci_audit.integrity?.received_hash, agent.head.hash);
  assert.match(String(fork.ci_audit.integrity?.received_record), /"two"/);
  assert.match(String(fork.message), /not a chained record/);
  // The planted document was kept; record 2 is only in the event.
  assert.deepEqual((await s.docs(agent)).map((d) => [d._id, d._source.message]), [[`${agent.id}:seq:1`, 'one'], [`${agent.id}:seq:2`, 'planted']]);
});

void test('a record whose hash does not match is stored with verified false and a chain_hash_mismatch event', async (t) => {
  const s = await setup(t);
  await s.start();
  const agent = new Agent(`mismatch-${randomBytes(3).toString('hex')}`);
  await ok(s.send(agent, [agent.record('one'), agent.record('two', { hash: 'ab'.repeat(32) })]));
  const docs = await s.docs(agent);
  assert.deepEqual(docs.map((d) => [d._source.ci_audit.chain!.seq, d._source.ci_audit.verified]), [[1, true], [2, false]]);
  const events = await s.events(agent);
  assert.deepEqual(actions(events), [['chain_hash_mismatch', 2, 2]]);
  assert.equal(events[0]!._source.ci_audit.integrity?.claimed_hash, 'ab'.repeat(32));
  assert.equal(events[0]!._source.ci_audit.integrity?.doc_id, `${agent.id}:seq:2`);
});

void test('checkpoints: valid ones are verified and anchored, a rotation registers the next key, bad signatures and unknown keys are events', async (t) => {
  const s = await setup(t, { auth: true });
  const agent = new Agent(`cp-${randomBytes(3).toString('hex')}`);
  const token = await s.enroll(agent);
  await s.start();
  await ok(s.send(agent, [agent.record('one'), agent.checkpoint()], token));
  const next = newKey();
  const stranger = newKey();
  // Rotated while the chain stands still: the old key's checkpoint and its rotation at the same seq.
  await ok(s.send(agent, [agent.record('two'), agent.checkpoint(), agent.checkpoint({ type: 'key_rotation', next })], token));
  const oldKey = agent.key;
  agent.key = next;
  await ok(s.send(agent, [agent.record('three'), agent.checkpoint()], token));
  // Signed by a stranger in the name of the agent's key; and signed by a key nobody registered.
  await ok(s.send(agent, [agent.record('four'), agent.checkpoint({ signer: stranger }), agent.checkpoint({ key: stranger })], token));

  const checkpoints = (await s.docs(agent)).filter((d) => d._source.ci_audit.checkpoint !== undefined);
  assert.deepEqual(
    checkpoints.map((d) => [d._id, d._source.ci_audit.checkpoint!.type, d._source.ci_audit.checkpoint!.seq, d._source.ci_audit.checkpoint!.verified]).sort(),
    [
      [`${agent.id}:checkpoint:${oldKey.id}:1`, 'checkpoint', 1, true],
      [`${agent.id}:checkpoint:${oldKey.id}:2`, 'checkpoint', 2, true],
      [`${agent.id}:key_rotation:${oldKey.id}:2`, 'key_rotation', 2, true],
      [`${agent.id}:checkpoint:${next.id}:3`, 'checkpoint', 3, true],
      [`${agent.id}:checkpoint:${next.id}:4`, 'checkpoint', 4, false],
      [`${agent.id}:checkpoint:${stranger.id}:4`, 'checkpoint', 4, false],
    ].sort(),
  );
  const events = await s.events(agent);
  assert.deepEqual(actions(events), [['checkpoint_key_unknown', 4, 4], ['checkpoint_signature_invalid', 4, 4]]);

  const anchors = (await readFile(s.anchorFile, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(anchors.map((a) => [a.agent, a.type, a.key, a.seq]), [
    [agent.id, 'checkpoint', oldKey.id, 1],
    [agent.id, 'checkpoint', oldKey.id, 2],
    [agent.id, 'key_rotation', oldKey.id, 2],
    [agent.id, 'checkpoint', next.id, 3],
  ]);
  assert.equal(anchors[2]!.next_key, next.id);
  assert.equal(anchors[2]!.next_public_key, next.pem);
  const registry = JSON.parse(await readFile(s.registryFile, 'utf8')) as { agents: Array<{ id: string; signing_keys?: Array<{ id: string }> }> };
  assert.deepEqual(registry.agents.find((a) => a.id === agent.id)?.signing_keys?.map((k) => k.id), [next.id], 'the rotated key is persisted');
});

void test('an aggregator restart mid-chain reports no false gap and still checks the link to the last record before it', async (t) => {
  const s = await setup(t);
  await s.start();
  const agent = new Agent(`restart-${randomBytes(3).toString('hex')}`);
  await ok(s.send(agent, [agent.record('one'), agent.record('two'), agent.record('three')]));
  await s.aggregator!.close();
  await s.start();
  await ok(s.send(agent, [agent.record('four'), agent.record('five')]));
  // A broken link right after, and a real gap behind it as the marker that sweeps ran.
  await ok(s.send(agent, [agent.record('six', { prevHash: 'cd'.repeat(32) })]));
  agent.record('seven');
  await ok(s.send(agent, [agent.record('eight')]));
  let events: Hit[] = [];
  await eventually(async () => (events = await s.events(agent)).some((e) => e._source.event?.action === 'chain_gap'), 'the chain_gap event');
  assert.deepEqual(actions(events), [['chain_link_broken', 6, 6], ['chain_gap', 7, 7]]);
  assert.deepEqual((await s.docs(agent)).map((d) => [d._source.ci_audit.chain!.seq, d._source.ci_audit.verified]), [
    [1, true], [2, true], [3, true], [4, true], [5, true], [6, false], [8, true],
  ]);
});

void test('the real agent and aggregator agree: every record the agent chains verifies, and nothing is reported', async (t) => {
  const url = requireEsUrl();
  const es = esClient(url);
  const namespace = uniqueNamespace('integrity_e2e');
  const dir = await mkdtemp(join(tmpdir(), 'integrity-e2e-'));
  t.after(async () => {
    await cleanupNamespace(es, namespace);
    await es.close();
    await rm(dir, { recursive: true, force: true });
  });
  const authLog = join(dir, 'auth.log');
  const lines = [
    '2026-11-26T09:12:01.482113+00:00 runner-01 sshd[2811]: Accepted publickey for deploy from 203.0.113.17 port 52144 ssh2',
    '2026-11-26T09:13:44.019532+00:00 runner-01 sudo:   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/id',
    '2026-11-26T09:14:02.000001+00:00 runner-01 sshd[2811]: pam_unix(sshd:session): session closed for user deploy',
    'a line no parser knows, with ünïcödé and a tab\there',
  ];
  await writeFile(authLog, lines.map((l) => `${l}\n`).join(''));
  const { url: receiver } = await startAggregatorProcess(t, dir, namespace, url);
  await startAgentProcess(t, dir, ['agent:', '  id: integrity-e2e-01', '  state_dir: state', 'sources:', '  - type: file', '    id: auth', '    include: [auth.log]', '    dataset: auth'], receiver);
  const pattern = `logs-ci_audit.*-${namespace}`;
  let hits: Hit[] = [];
  await eventually(async () => {
    await es.indices.refresh({ index: pattern, allow_no_indices: true });
    const result = await es.search({ index: pattern, allow_no_indices: true, size: 100, query: { exists: { field: 'ci_audit.chain.seq' } }, sort: [{ 'ci_audit.chain.seq': 'asc' }] });
    hits = result.hits.hits as unknown as Hit[];
    return hits.length >= lines.length;
  }, `${lines.length} chained documents in ${pattern}`);
  assert.deepEqual(hits.map((h) => [h._id, h._source.ci_audit.verified]), lines.map((_, i) => [`integrity-e2e-01:seq:${i + 1}`, true]));
  const events = await es.search({ index: pattern, allow_no_indices: true, query: { exists: { field: 'ci_audit.integrity' } } });
  assert.deepEqual(events.hits.hits.map((h) => (h._source as Source).event?.action), []);
});
