// The chain checker on chains built with the real hashing, signing and mapping: a clean chain has no
// findings, and each kind of tampering is reported as the kind it is, naming the record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { genesisHash } from '../../../core/integrity/chain.ts';
import { chainGapAttr, recordAttr } from '../../../core/wire.ts';
import { ChainChecker, type RecordHit } from '../../../admin/verify/chain-check.ts';
import { attestationFromDocument, type Attestation } from '../../../admin/verify/checkpoints.ts';
import type { Finding, Notice } from '../../../admin/verify/findings.ts';
import type { PublicKeys } from '../../../admin/verify/keys.ts';
import { asHit, buildChain, chainRecord, checkpoint, lineRecord, newSigningKey, type Chain } from './chain-fixture.ts';

const ns = 'unit';

interface Input {
  hits: RecordHit[];
  atts: Attestation[];
  keys: PublicKeys;
}

function inputOf(...chains: Chain[]): Input {
  return {
    hits: chains.flatMap((c) => c.records.map((r) => asHit(r.doc))),
    atts: chains.flatMap((c) => c.checkpoints.map((cp) => ({ origin: 'index' as const, statement: cp.statement, _id: cp.doc._id, _index: `.ds-${cp.doc.stream}-x` }))),
    keys: new Map(chains.map((c) => [c.agent, [c.key.publicPem]])),
  };
}

function seqOf(hit: RecordHit): number {
  return ((hit._source?.ci_audit as { chain: { seq: number } }).chain.seq);
}
function agentOf(hit: RecordHit): string {
  return (hit._source?.agent as { id: string }).id;
}

/** Feeds the checker in the reader's order: by agent, seq; records before checkpoints of the same seq. */
function check(input: Input, options: { fromStart?: boolean; toEnd?: boolean; historySize?: number; onRecord?: (c: ChainChecker) => void } = {}): { findings: Finding[]; notices: Notice[] } {
  const findings: Finding[] = [];
  const notices: Notice[] = [];
  const checker = new ChainChecker({ finding: (f) => findings.push(f), notice: (n) => notices.push(n) }, { keys: input.keys, fromStart: options.fromStart ?? true, toEnd: options.toEnd ?? true, ...(options.historySize === undefined ? {} : { historySize: options.historySize }) });
  type Item = { agent: string; seq: number; kind: number; go: () => void };
  const items: Item[] = [
    ...input.hits.map((h) => ({ agent: agentOf(h), seq: seqOf(h), kind: 0, go: () => { checker.record(h); options.onRecord?.(checker); } })),
    ...input.atts.map((a) => ({ agent: a.statement.agent, seq: a.statement.seq, kind: a.origin === 'index' ? 1 : 2, go: () => checker.attestation(a) })),
  ];
  items.sort((a, b) => (a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : a.seq - b.seq || a.kind - b.kind));
  for (const item of items) item.go();
  checker.end();
  return { findings, notices };
}

function brief(f: Finding): string {
  return `${f.kind} ${f.agent} ${f.seq}${f.last_seq === undefined ? '' : `..${f.last_seq}`} ${f._id ?? ''}`;
}

test('a clean chain of two agents has no findings and no notices', () => {
  const a = buildChain('agent-a', ns, 30, 10);
  const b = buildChain('agent-b', ns, 25, 5);
  const { findings, notices } = check(inputOf(a, b));
  assert.deepEqual(findings, []);
  assert.deepEqual(notices, []);
});

test('a changed searchable field is altered, naming the field and the document', () => {
  const a = buildChain('agent-a', ns, 30, 10);
  const input = inputOf(a);
  const hit = input.hits[16]!;
  (hit._source!.user as { name: string }).name = 'mallory';
  const { findings } = check(input);
  assert.deepEqual(findings.map(brief), ['altered agent-a 17 agent-a:seq:17']);
  assert.deepEqual(findings[0]!.fields, ['user.name']);
  assert.equal(findings[0]!['@timestamp'], (hit._source!['@timestamp'] as string));
});

test('a changed canonical record is altered (its hash no longer holds)', () => {
  const a = buildChain('agent-a', ns, 12, 10);
  const input = inputOf(a);
  const chain = (input.hits[3]!._source!.ci_audit as { chain: { record: string } }).chain;
  chain.record = chain.record.replace('user4', 'userX');
  const { findings } = check(input);
  assert.deepEqual(findings.map(brief), ['altered agent-a 4 agent-a:seq:4']);
  // The hash, and the fields the changed record would have mapped to.
  assert.deepEqual(findings[0]!.fields, ['ci_audit.chain.record', 'user.name']);
});

test('a deleted record is missing, one finding per range, named by the record after it', () => {
  const a = buildChain('agent-a', ns, 30, 10);
  const input = inputOf(a);
  input.hits = input.hits.filter((h) => ![12, 22, 23, 24].includes(seqOf(h)));
  const { findings } = check(input);
  assert.deepEqual(findings.map(brief), ['missing agent-a 12 agent-a:seq:13', 'missing agent-a 22..24 agent-a:seq:25']);
  assert.match(findings[0]!.detail, /between agent-a:seq:11 .* and agent-a:seq:13/);
});

test('records missing at the start of a chain read from its start are missing', () => {
  const a = buildChain('agent-a', ns, 12, 10);
  const input = inputOf(a);
  input.hits = input.hits.slice(3);
  assert.deepEqual(check(input).findings.map(brief), ['missing agent-a 1..3 agent-a:seq:4']);
  // Read from a time onwards, the chain starts where the range does.
  assert.deepEqual(check(input, { fromStart: false }).findings.map(brief), []);
});

test('a forged document at an existing seq is inserted; the genuine one is kept', () => {
  const a = buildChain('agent-a', ns, 30, 10);
  const forged = chainRecord('agent-a', ns, 15, a.records[13]!.hash, lineRecord('agent-a', 15, { user: 'root' }));
  const input = inputOf(a);
  const hit = { ...asHit(forged.doc), _id: 'Xq3forged' };
  input.hits.splice(14, 0, hit);
  const { findings } = check(input);
  assert.deepEqual(findings.map(brief), ['inserted agent-a 15 Xq3forged']);
});

test('two records whose seqs were swapped are reordered, and nothing else', () => {
  const a = buildChain('agent-a', ns, 30, 10);
  const input = inputOf(a);
  const h5 = input.hits[4]!;
  const h6 = input.hits[5]!;
  (h5._source!.ci_audit as { chain: { seq: number } }).chain.seq = 6;
  (h6._source!.ci_audit as { chain: { seq: number } }).chain.seq = 5;
  const { findings } = check(input);
  assert.deepEqual(findings.map(brief).sort(), ['reordered agent-a 5 agent-a:seq:6', 'reordered agent-a 6 agent-a:seq:5']);
});

test('a tail rewritten with recomputed hashes is caught by the signed checkpoints after it', () => {
  const a = buildChain('agent-a', ns, 30, 10);
  const input = inputOf(a);
  let prev = a.records[23]!.hash;
  for (let seq = 25; seq <= 30; seq++) {
    const r = chainRecord('agent-a', ns, seq, prev, lineRecord('agent-a', seq, { user: 'nobody' }));
    input.hits[seq - 1] = asHit(r.doc);
    prev = r.hash;
  }
  const { findings } = check(input);
  assert.deepEqual(findings.map(brief), ['checkpoint_mismatch agent-a 30 agent-a:seq:30']);
  assert.match(findings[0]!.detail, /rewritten at or before seq 30/);
});

test('a deleted tail is caught by a checkpoint beyond the end of the chain', () => {
  const a = buildChain('agent-a', ns, 30, 10);
  const input = inputOf(a);
  input.hits = input.hits.slice(0, 20);
  assert.deepEqual(check(input).findings.map(brief), ['tail_missing agent-a 21..30 agent-a:seq:20']);
  // Read up to a time, the chain ends where the range does.
  assert.deepEqual(check(input, { toEnd: false }).findings.map(brief), []);
  // Checkpoints of an agent with no record left at all.
  input.hits = [];
  assert.deepEqual(check(input).findings.map(brief), ['tail_missing agent-a 1..30 ']);
});

test('a checkpoint signed by an unknown key or with a bad signature is signature_invalid', () => {
  const a = buildChain('agent-a', ns, 30, 10);
  const input = inputOf(a);
  const other = newSigningKey();
  input.atts[1] = { origin: 'index', statement: checkpoint('agent-a', ns, other, 20, a.records[19]!.hash).statement, _id: 'cp-20' };
  input.atts[2] = { ...input.atts[2]!, statement: { ...input.atts[2]!.statement, seq: 29 } };
  const { findings } = check(input);
  assert.deepEqual(findings.map((f) => `${f.kind} ${f.seq}`), ['signature_invalid 20', 'signature_invalid 29']);
  assert.match(findings[0]!.detail, /neither registered nor introduced/);
  assert.match(findings[1]!.detail, /does not verify/);
});

test('a key rotation signed by the old key lets the new key sign from then on', () => {
  const old = newSigningKey();
  const next = newSigningKey();
  const a = buildChain('agent-a', ns, 30, 100, old);
  const cp = (key: typeof old, seq: number, options = {}): Attestation => ({ origin: 'anchor', line: seq, statement: checkpoint('agent-a', ns, key, seq, a.records[seq - 1]!.hash, options).statement });
  const input = inputOf(a);
  input.atts = [cp(old, 10), cp(old, 20, { type: 'key_rotation', next }), cp(next, 30)];
  assert.deepEqual(check(input), { findings: [], notices: [] });
  // Without the rotation the new key is unknown.
  input.atts = [cp(old, 10), cp(next, 30)];
  assert.deepEqual(check(input).findings.map((f) => `${f.kind} ${f.seq}`), ['signature_invalid 30']);
});

test('after a key rotation at seq S the old key signs only up to S and the new key only from S; at S, the rotation counts whatever the order', () => {
  const old = newSigningKey();
  const next = newSigningKey();
  const evil = newSigningKey();
  const a = buildChain('agent-a', ns, 30, 100, old);
  const cp = (key: typeof old, seq: number, options = {}, origin: 'index' | 'anchor' = 'anchor'): Attestation => ({ origin, line: seq, statement: checkpoint('agent-a', ns, key, seq, a.records[seq - 1]!.hash, options).statement });
  const input = inputOf(a);
  // Rotated while idle: the old key's last checkpoint, the rotation and the new key's first checkpoint
  // all at seq 20; the new key's is read first (from the index; the rotation only in the anchor).
  input.atts = [cp(old, 10), cp(next, 20, {}, 'index'), cp(old, 20), cp(old, 20, { type: 'key_rotation', next }), cp(next, 30)];
  assert.deepEqual(check(input), { findings: [], notices: [] });
  // Whoever kept the old key: a checkpoint beyond the rotation, and a rotation to a key of theirs.
  input.atts = [cp(old, 10), cp(old, 20, { type: 'key_rotation', next }), cp(old, 25), cp(next, 15), cp(old, 28, { type: 'key_rotation', next: evil }), cp(evil, 30)];
  const { findings } = check(input);
  assert.deepEqual(findings.map((f) => `${f.kind} ${f.seq}`), ['signature_invalid 15', 'signature_invalid 25', 'signature_invalid 28', 'signature_invalid 30']);
  // At seq 15 the stream has not reached the rotation: the new key is not known yet.
  assert.match(findings[0]!.detail, /neither registered nor introduced/);
  assert.match(findings[1]!.detail, /retired: it is valid only up to seq 20/);
  // The same rotation announced again (the agent crashed before it switched keys) is accepted.
  input.atts = [cp(old, 10), cp(old, 20, { type: 'key_rotation', next }), cp(next, 25), cp(old, 28, { type: 'key_rotation', next }), cp(next, 30)];
  assert.deepEqual(check(input), { findings: [], notices: [] });
});

test('keys learned from rotations in the registry are valid from their rotation\'s seq', () => {
  const old = newSigningKey();
  const next = newSigningKey();
  const a = buildChain('agent-a', ns, 30, 100, old);
  const cp = (key: typeof old, seq: number): Attestation => ({ origin: 'anchor', line: seq, statement: checkpoint('agent-a', ns, key, seq, a.records[seq - 1]!.hash).statement });
  const input = { ...inputOf(a), keys: new Map([['agent-a', [old.publicPem, { publicKey: next.publicPem, rotation: { from: old.id, seq: 20 } }]]]) };
  input.atts = [cp(old, 10), cp(next, 20), cp(next, 30)];
  assert.deepEqual(check(input), { findings: [], notices: [] });
  input.atts = [cp(next, 10), cp(old, 30)];
  assert.deepEqual(check(input).findings.map((f) => `${f.kind} ${f.seq}`), ['signature_invalid 10', 'signature_invalid 30']);
});

test('without a public key the checkpoints are still compared, and a notice says the signatures were not checked', () => {
  const a = buildChain('agent-a', ns, 30, 10);
  const input = { ...inputOf(a), keys: new Map() };
  const { findings, notices } = check(input);
  assert.deepEqual(findings, []);
  assert.deepEqual(notices.map((n) => n.kind), ['no_public_key', 'not_signed']);
});

test('records after the last checkpoint are a not_signed notice', () => {
  const a = buildChain('agent-a', ns, 27, 10);
  const { findings, notices } = check(inputOf(a));
  assert.deepEqual(findings, []);
  assert.deepEqual(notices.map((n) => `${n.kind} ${n.seq}..${n.last_seq}`), ['not_signed 21..27']);
});

test('an unclean stop declared by the resume record is a notice, with the superseded records', () => {
  const agent = 'agent-u';
  const key = newSigningKey();
  const records = [];
  let prev = genesisHash;
  for (let seq = 1; seq <= 12; seq++) {
    const r = chainRecord(agent, ns, seq, prev, lineRecord(agent, seq));
    records.push(r);
    prev = r.hash;
  }
  // Handed out 11..14 before the crash; 11 and 12 reached the index. The resume record is seq 15 and links to seq 10.
  const resume = chainRecord(agent, ns, 15, records[9]!.hash, lineRecord(agent, 15, { body: 'agent restarted after an unclean stop', extra: { [chainGapAttr.firstSeq]: 11, [chainGapAttr.lastSeq]: 14, [chainGapAttr.reason]: 'unclean_stop', [recordAttr.gap]: true } }));
  const after = chainRecord(agent, ns, 16, resume.hash, lineRecord(agent, 16));
  const chain: Chain = { agent, namespace: ns, key, records: [...records, resume, after], checkpoints: [checkpoint(agent, ns, key, 16, after.hash)] };
  const { findings, notices } = check(inputOf(chain));
  assert.deepEqual(findings, []);
  assert.deepEqual(notices.map((n) => `${n.kind} ${n.seq}..${n.last_seq}`), ['superseded 11..12', 'declared_gap 11..14']);
});

test('records the disk buffer dropped, declared by a gap record, are a notice, not missing', () => {
  const agent = 'agent-d';
  const a = buildChain(agent, ns, 20, 20);
  const last = a.records[19]!;
  const gap = chainRecord(agent, ns, 21, last.hash, lineRecord(agent, 21, { body: 'disk buffer full: dropped records', extra: { [chainGapAttr.firstSeq]: 8, [chainGapAttr.lastSeq]: 10, [chainGapAttr.reason]: 'buffer_dropped' } }));
  a.records.push(gap);
  a.checkpoints.push(checkpoint(agent, ns, a.key, 21, gap.hash));
  const input = inputOf(a);
  input.hits = input.hits.filter((h) => ![8, 9, 10].includes(seqOf(h)));
  const { findings, notices } = check(input);
  assert.deepEqual(findings, []);
  assert.deepEqual(notices.map((n) => `${n.kind} ${n.seq}..${n.last_seq}`), ['declared_gap 8..10']);
});

test('a batch the aggregator rejected, declared by a rejected gap record, is a notice that says where it was set aside', () => {
  const agent = 'agent-r';
  const a = buildChain(agent, ns, 20, 20);
  const last = a.records[19]!;
  const gap = chainRecord(agent, ns, 21, last.hash, lineRecord(agent, 21, { body: 'rejected batch: set aside', extra: { [chainGapAttr.firstSeq]: 12, [chainGapAttr.lastSeq]: 15, [chainGapAttr.reason]: 'rejected' } }));
  a.records.push(gap);
  a.checkpoints.push(checkpoint(agent, ns, a.key, 21, gap.hash));
  const input = inputOf(a);
  input.hits = input.hits.filter((h) => ![12, 13, 14, 15].includes(seqOf(h)));
  const { findings, notices } = check(input);
  assert.deepEqual(findings, []);
  assert.deepEqual(notices.map((n) => `${n.kind} ${n.seq}..${n.last_seq}`), ['declared_gap 12..15']);
  assert.match(notices[0]!.detail, /^rejected: declared by .*ci-audit agent rejected list/);
});

test('what the checker holds stays bounded however many records it reads', () => {
  const a = buildChain('agent-big', ns, 20_000, 1000);
  let most = 0;
  const { findings } = check(inputOf(a), { historySize: 500, onRecord: (c) => (most = Math.max(most, c.held)) });
  assert.deepEqual(findings, []);
  assert.ok(most <= 500 + 5, `held ${most}`);
});

test('a checkpoint document without a well-formed statement is signature_invalid and counts as a finding', () => {
  const findings: Finding[] = [];
  const checker = new ChainChecker({ finding: (f) => findings.push(f), notice: () => undefined }, { keys: new Map(), fromStart: true, toEnd: true });
  const doc = checkpoint('agent-m', ns, newSigningKey(), 10, 'a'.repeat(64)).doc;
  const hit = asHit(doc);
  delete (hit._source.ci_audit as { checkpoint: Record<string, unknown> }).checkpoint.signature;
  const att = attestationFromDocument(hit);
  assert.ok('malformed' in att);
  checker.malformedCheckpoint(att.agent, att.where, att.malformed);
  checker.end();
  assert.deepEqual(findings.map((f) => `${f.kind} ${f.agent} ${f._id ?? ''}`), [`signature_invalid agent-m ${doc._id}`]);
  assert.equal(checker.stats.findings, 1);
});
