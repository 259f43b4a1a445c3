// output.compression end to end: the agent (startAgent, following a real file) ships to the
// aggregator's own receiver over real HTTP, which decodes the body as the Content-Encoding says.
// Only the receiver's index stage is a stand-in that keeps the records it is handed.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import pino from 'pino';
import type { CompressionCodec } from '../../../agent/sinks/compression.ts';
import { startAgent } from '../../../agent/run.ts';
import { createReceiver } from '../../../aggregator/receiver/server.ts';
import { agentConfigSchema } from '../../../config/schema.ts';
import { MemoryIngest } from '../../helpers/memory-ingest.ts';
import { captureLogger, tempDir, waitFor } from './helpers.ts';

/** The aggregator's receiver on a free port; keeps the records and each request's Content-Encoding. */
async function receiver(t: TestContext): Promise<{ url: string; ingest: MemoryIngest; encodings: (string | undefined)[] }> {
  const ingest = new MemoryIngest();
  const app = createReceiver({ ingest, limits: { maxBodyBytes: 4 * 1024 * 1024, maxDecompressedBytes: 32 * 1024 * 1024 }, logger: pino({ level: 'silent' }) });
  const encodings: (string | undefined)[] = [];
  app.addHook('onRequest', (request, _reply, done) => {
    encodings.push(request.headers['content-encoding']);
    done();
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, ingest, encodings };
}

for (const [compression, encoding] of [['zstd', 'zstd'], ['none', undefined], ['gzip', 'gzip']] as const satisfies readonly [CompressionCodec, string | undefined][]) {
  void test(`output.compression ${compression}: the agent's lines reach the aggregator's receiver, sent with Content-Encoding ${encoding ?? '(none)'}`, async (t) => {
    const dir = await tempDir(t);
    const lines = Array.from({ length: 1500 }, (_, i) => `sshd[${3000 + (i % 40)}]: Accepted publickey for deploy from 203.0.113.${i % 250} port ${40000 + i} ssh2`);
    await writeFile(`${dir}/auth.log`, `${lines.join('\n')}\n`);
    const aggregator = await receiver(t);
    const config = agentConfigSchema.parse({
      agent: { id: 'runner-z', state_dir: `${dir}/state` },
      sources: [{ type: 'file', id: 'auth', include: [`${dir}/auth.log`], dataset: 'auth' }],
      output: { url: aggregator.url, compression, compression_level: compression === 'zstd' ? 19 : 1, batch: { max_records: 500, max_delay_ms: 20 } },
      buffer: { type: 'memory' },
    });
    const agent = await startAgent(config, captureLogger().logger, { pollIntervalMs: 50 });
    const arrived = (): Set<string> => new Set(aggregator.ingest.records.map((r) => r.body).filter((body) => typeof body === 'string'));
    const missing = (): string[] => {
      const bodies = arrived();
      return lines.filter((line) => !bodies.has(line));
    };
    try {
      await waitFor(() => missing().length === 0, 10_000, `${lines.length} lines at the receiver`);
    } finally {
      // Here rather than in an after hook: those run in the order they were added, the test's folder removed first.
      await agent.stop();
    }
    assert.ok(aggregator.encodings.length >= 3, `${aggregator.encodings.length} requests for 1,500 lines in batches of 500`);
    assert.deepEqual(new Set(aggregator.encodings), new Set([encoding]));
  });
}
