// The aggregator's /metrics: requests by route and status, records by outcome, readiness.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { WriterState } from '../../../../aggregator/index/document-writer.ts';
import type { Ingest, IngestResult } from '../../../../aggregator/ingest.ts';
import type { DecodedLogRecord } from '../../../../aggregator/log-record.ts';
import { aggregatorMetrics } from '../../../../aggregator/metrics/metrics.ts';
import { createReceiver } from '../../../../aggregator/receiver/server.ts';
import { emitRecords, protobufBody } from '../otlp-fixtures.ts';

class CountingIngest implements Ingest {
  ready = true;
  state: WriterState = 'ready';
  retryAfterSeconds(): number {
    return 1;
  }
  ingest(records: DecodedLogRecord[]): Promise<IngestResult> {
    return Promise.resolve({ received: records.length, created: records.length - 1, duplicates: 1, rejected: 0 });
  }
}

void test('GET /metrics counts requests by route and status and records by outcome', async (t) => {
  const metrics = aggregatorMetrics();
  const ingest = new CountingIngest();
  const app = createReceiver({ ingest: metrics.wrap(ingest), limits: { maxBodyBytes: 65536, maxDecompressedBytes: 262144 }, logger: pino({ level: 'silent' }) });
  metrics.register(app);
  t.after(() => app.close());
  const records = await emitRecords({ resource: { 'host.name': 'h' }, records: [{ body: 'one' }, { body: 'two' }, { body: 'three' }] });
  const sent = await app.inject({ method: 'POST', url: '/v1/logs', headers: { 'content-type': 'application/x-protobuf' }, payload: protobufBody(records) });
  assert.equal(sent.statusCode, 200);
  assert.equal((await app.inject({ method: 'GET', url: '/no/such/path' })).statusCode, 404);
  ingest.ready = false;
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  assert.match(text, /^ci_audit_aggregator_requests_total\{route="\/v1\/logs",status="200"\} 1$/m);
  assert.match(text, /^ci_audit_aggregator_requests_total\{route="unknown",status="404"\} 1$/m);
  assert.match(text, /^ci_audit_aggregator_records_total\{outcome="created"\} 2$/m);
  assert.match(text, /^ci_audit_aggregator_records_total\{outcome="duplicate"\} 1$/m);
  assert.match(text, /^ci_audit_aggregator_elasticsearch_ready 0$/m);
  assert.match(text, /^ci_audit_aggregator_process_cpu_seconds_total/m);
});
