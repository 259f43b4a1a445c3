// Signed checkpoints, the signing key and its rotation, with the real agent (startAgent), real
// files and a real HTTP endpoint decoding OTLP: signatures verify with the public key enrollment
// registers (core verifyCheckpoint), the key file is private, a rotation is announced with the old
// key and the chain goes on unbroken.
import assert from 'node:assert/strict';
import { appendFile, chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { test, type TestContext } from 'node:test';
import { runKeygen, runRotateKey } from '../../../../agent/chain/key-commands.ts';
import { ensureSigningKey, nextKeyPath, prepareRotation, readSigningKey } from '../../../../agent/chain/signing-key.ts';
import { Checkpointer } from '../../../../agent/chain/checkpointer.ts';
import type { ChainProcessor } from '../../../../agent/chain/chain-processor.ts';
import type { Attributes } from '@opentelemetry/api';
import { checkpointDocumentId } from '../../../../core/integrity/document.ts';
import { startAgent } from '../../../../agent/run.ts';
import type { DecodedLogRecord } from '../../../../aggregator/log-record.ts';
import { agentConfigSchema } from '../../../../config/schema.ts';
import { hasErrorCode } from '../../../../core/errors.ts';
import { verifyCheckpoint, type CheckpointType, type SignedCheckpoint } from '../../../../core/integrity/checkpoint.ts';
import { checkpointAttr, integrityDataset, recordAttr } from '../../../../core/wire.ts';
import { captureLogger, tempDir, waitFor } from '../helpers.ts';
import { assertChain, isCheckpoint, startCapture } from './capture.ts';

const agentId = 'signing-agent';

function config(dir: string, url: string, integrity: Record<string, unknown> = {}): ReturnType<typeof agentConfigSchema.parse> {
  return agentConfigSchema.parse({
    agent: { id: agentId, state_dir: `${dir}/state` },
    sources: [{ type: 'file', id: 'builds', include: [`${dir}/*.log`], dataset: 'ci', poll_interval_ms: 20 }],
    output: { url, batch: { max_records: 20, max_delay_ms: 10 } },
    buffer: { type: 'memory' },
    integrity,
  });
}

function text(value: unknown): string {
  assert.equal(typeof value, 'string');
  return value as string;
}

function checkpointOf(r: DecodedLogRecord): SignedCheckpoint {
  const a = r.attributes;
  return {
    type: a[checkpointAttr.type] as SignedCheckpoint['type'],
    agent: agentId,
    key: text(a[checkpointAttr.key]),
    seq: Number(a[checkpointAttr.seq]),
    hash: text(a[checkpointAttr.hash]),
    timeUnixNano: BigInt(text(a[checkpointAttr.time])),
    ...(a[checkpointAttr.nextKey] === undefined ? {} : { nextKey: text(a[checkpointAttr.nextKey]), nextPublicKey: text(a[checkpointAttr.nextPublicKey]) }),
    signature: text(a[checkpointAttr.signature]),
  };
}

async function lines(file: string, from: number, count: number): Promise<void> {
  await appendFile(file, Array.from({ length: count }, (_, i) => `line ${from + i}\n`).join(''));
}

async function run(t: TestContext, dir: string, url: string, integrity: Record<string, unknown> = {}): Promise<Awaited<ReturnType<typeof startAgent>>> {
  const agent = await startAgent(config(dir, url, integrity), captureLogger().logger, { pollIntervalMs: 20, shutdownTimeoutMs: 2000 });
  t.after(() => agent.stop());
  return agent;
}

void test('checkpoints every N records, every T ms and at stop, signed with the key whose public half enrollment sends; the key file is 0600', async (t) => {
  const dir = await tempDir(t);
  const capture = await startCapture(t);
  const log = `${dir}/build.log`;
  await writeFile(log, '');
  const agent = await run(t, dir, capture.url, { checkpoint_every_records: 10, checkpoint_interval_ms: 200 });
  const keyFile = `${dir}/state/signing-key.pem`;
  assert.equal((await stat(keyFile)).mode & 0o777, 0o600, 'the key generated at the first start is private');
  const key = await readSigningKey(keyFile);
  assert.ok(key !== undefined);

  await lines(log, 0, 35);
  await waitFor(() => capture.accepted.filter(isCheckpoint).length >= 3, 10_000, 'checkpoints after 10, 20, 30 records');
  const byCount = capture.accepted.filter(isCheckpoint).length;
  await lines(log, 35, 2);
  // Two records do not reach N: only the timer signs them.
  await waitFor(() => capture.accepted.filter(isCheckpoint).some((r) => Number(r.attributes[checkpointAttr.seq]) === 37), 10_000, 'a timed checkpoint of seq 37');
  assert.ok(capture.accepted.filter(isCheckpoint).length > byCount);
  await lines(log, 37, 1);
  await waitFor(() => capture.accepted.some((r) => r.body === 'line 37'), 10_000, 'the last line');
  await agent.stop();
  const checkpoints = capture.accepted.filter(isCheckpoint);
  const last = checkpointOf(checkpoints.at(-1)!);
  assert.equal(last.seq, 38, 'the stop signs the final head');
  const { bySeq } = assertChain(capture.accepted, agentId);
  for (const r of checkpoints) {
    const c = checkpointOf(r);
    assert.equal(r.attributes[recordAttr.dataset], integrityDataset);
    assert.equal(r.attributes[recordAttr.recordId], `checkpoint:${key.id}:${c.seq}`);
    assert.equal(c.key, key.id);
    assert.equal(c.hash, bySeq.get(c.seq)!.attributes['ci_audit.chain.hash'], `checkpoint of seq ${c.seq} vouches for its hash`);
    assert.ok(verifyCheckpoint(c, key.publicKeyPem), `checkpoint of seq ${c.seq} verifies with the public key`);
    assert.ok(!verifyCheckpoint({ ...c, seq: c.seq + 1 }, key.publicKeyPem), 'a changed statement does not');
  }
  assert.equal((JSON.parse(await readFile(`${dir}/state/chain.json`, 'utf8')) as { key: string }).key, key.id);
});

void test('a signing key group or others may read is refused: CIA_ERR_INTEGRITY_KEY, the agent does not start', async (t) => {
  const dir = await tempDir(t);
  const capture = await startCapture(t);
  const keyFile = `${dir}/state/signing-key.pem`;
  await ensureSigningKey(keyFile);
  await chmod(keyFile, 0o640);
  await assert.rejects(startAgent(config(dir, capture.url), captureLogger().logger), (err: unknown) => hasErrorCode(err, 'CIA_ERR_INTEGRITY_KEY') && err.message.includes(keyFile) && err.message.includes('chmod 600'));
  await writeFile(keyFile, 'not a key', { mode: 0o600 });
  await chmod(keyFile, 0o600);
  await assert.rejects(startAgent(config(dir, capture.url), captureLogger().logger), (err: unknown) => hasErrorCode(err, 'CIA_ERR_INTEGRITY_KEY') && !err.message.includes('not a key'));
});

void test('a corrupt chain.json: CIA_ERR_INTEGRITY_STATE with its path, the agent does not start and sends nothing', async (t) => {
  const dir = await tempDir(t);
  const capture = await startCapture(t);
  await writeFile(`${dir}/build.log`, 'a line\n');
  const first = await run(t, dir, capture.url);
  await waitFor(() => capture.accepted.length > 0, 5000, 'the line');
  await first.stop();
  const file = `${dir}/state/chain.json`;
  await writeFile(file, (await readFile(file, 'utf8')).slice(0, 20));
  const sent = capture.attempts.length;
  await assert.rejects(startAgent(config(dir, capture.url), captureLogger().logger), (err: unknown) => hasErrorCode(err, 'CIA_ERR_INTEGRITY_STATE') && err.message.includes(file));
  assert.equal(capture.attempts.length, sent);
});

void test('keygen is idempotent; rotate-key: a key_rotation signed by the old key names the new one, later checkpoints are signed by the new key, the chain is unbroken', async (t) => {
  const dir = await tempDir(t);
  const capture = await startCapture(t);
  const configFile = `${dir}/agent.yaml`;
  await writeFile(configFile, JSON.stringify({ agent: { id: agentId, state_dir: `${dir}/state` }, sources: [{ type: 'file', id: 'builds', dataset: 'ci', include: [`${dir}/*.log`] }], output: { url: capture.url } }));
  const created = await runKeygen(configFile);
  assert.match(created, /created the signing key/);
  const again = await runKeygen(configFile);
  assert.match(again, /exists; kept it/);
  const old = (await readSigningKey(`${dir}/state/signing-key.pem`))!;
  assert.ok(created.includes(old.id) && again.includes(old.id) && created.includes(old.publicKeyPem.trim()));
  assert.ok(!created.includes('PRIVATE'), 'only the public key is printed');

  const log = `${dir}/build.log`;
  await writeFile(log, '');
  const agent = await run(t, dir, capture.url, { checkpoint_every_records: 5, checkpoint_interval_ms: 100 });
  await lines(log, 0, 12);
  await waitFor(() => capture.accepted.filter(isCheckpoint).length >= 2, 10_000, 'checkpoints with the first key');

  const rotated = await runRotateKey(configFile);
  const next = (await readSigningKey(nextKeyPath(`${dir}/state/signing-key.pem`)))!;
  assert.ok(rotated.includes(next.id));
  assert.equal((await stat(nextKeyPath(`${dir}/state/signing-key.pem`))).mode & 0o777, 0o600);
  await waitFor(() => agent.checkpointer.key.id === next.id, 10_000, 'the agent to switch keys');
  await waitFor(() => agent.chain.keyId === next.id, 10_000, 'the rotation to be committed');
  await lines(log, 12, 12);
  await waitFor(() => capture.accepted.some((r) => r.body === 'line 23'), 10_000, 'the last line');
  await agent.stop();

  const checkpoints = capture.accepted.filter(isCheckpoint).map(checkpointOf);
  const rotation = checkpoints.find((c) => c.type === 'key_rotation');
  assert.ok(rotation !== undefined);
  assert.equal(rotation.key, old.id);
  assert.equal(rotation.nextKey, next.id);
  assert.equal(rotation.nextPublicKey, next.publicKeyPem);
  assert.ok(verifyCheckpoint(rotation, old.publicKeyPem), 'the rotation is signed by the old key');
  const after = checkpoints.slice(checkpoints.indexOf(rotation) + 1);
  assert.ok(after.length > 0);
  for (const c of after) {
    assert.equal(c.key, next.id);
    assert.ok(verifyCheckpoint(c, next.publicKeyPem), `checkpoint of seq ${c.seq} signed by the new key`);
  }
  for (const c of checkpoints.slice(0, checkpoints.indexOf(rotation))) assert.ok(verifyCheckpoint(c, old.publicKeyPem));
  const { head } = assertChain(capture.accepted, agentId);
  assert.equal(head.seq, 24, 'one chain across the rotation');
  assert.equal((await readSigningKey(`${dir}/state/signing-key.pem`))!.id, next.id, 'the new key replaced the old one');
  assert.equal((JSON.parse(await readFile(`${dir}/state/chain.json`, 'utf8')) as { key: string }).key, next.id);
});

void test('rotate-key while the chain stands still: the last checkpoint and the rotation share key and seq, not their record id or _id', async (t) => {
  const dir = await tempDir(t);
  const file = `${dir}/signing-key.pem`;
  const { key } = await ensureSigningKey(file);
  const chain = { head: { seq: 5, hash: 'a'.repeat(64) }, keyId: key.id } as unknown as ChainProcessor;
  const emitted: Attributes[] = [];
  const emit = (r: { attributes: Attributes }): void => void emitted.push(r.attributes);
  const logger = captureLogger().logger;
  // The agent stops at seq 5 (final checkpoint), rotate-key runs, the agent starts and stops again.
  new Checkpointer({ agentId, chain, key, emit, intervalMs: 1e9, logger }).stop();
  await prepareRotation(file);
  const second = new Checkpointer({ agentId, chain, key, emit, intervalMs: 1e9, logger });
  await second.start();
  second.stop();
  const statements = emitted.map((a) => [a[checkpointAttr.type], a[checkpointAttr.key], a[checkpointAttr.seq], a[recordAttr.recordId]]);
  const next = second.key.id;
  assert.deepEqual(statements, [
    ['checkpoint', key.id, 5, `checkpoint:${key.id}:5`],
    ['key_rotation', key.id, 5, `key_rotation:${key.id}:5`],
    ['checkpoint', next, 5, `checkpoint:${next}:5`],
  ]);
  const ids = emitted.map((a) => checkpointDocumentId(agentId, a[checkpointAttr.type] as CheckpointType, a[checkpointAttr.key] as string, a[checkpointAttr.seq] as number));
  assert.equal(new Set(ids).size, 3, 'three documents, none refused as a duplicate');
});
