// The aggregator's Prometheus metrics on GET /metrics of the receiver's port: requests by route
// and status, records by outcome, Elasticsearch readiness, and Node's process metrics.
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Ingest, IngestResult } from '../ingest.ts';
import type { DecodedLogRecord } from '../log-record.ts';

export const metricsPath = '/metrics';

export interface AggregatorMetrics {
  readonly registry: Registry;
  /** The same ingest, with its results counted. */
  wrap(ingest: Ingest): Ingest;
  /** Adds GET /metrics and the request counter to the receiver (before it listens). */
  register(app: FastifyInstance): void;
}

export function aggregatorMetrics(): AggregatorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ci_audit_aggregator_' });
  const requests = new Counter({
    name: 'ci_audit_aggregator_requests_total',
    help: 'HTTP requests answered, by route and status code.',
    labelNames: ['route', 'status'],
    registers: [registry],
  });
  const records = new Counter({
    name: 'ci_audit_aggregator_records_total',
    help: 'Records of accepted requests, by outcome: created, duplicate (already held) or rejected by Elasticsearch.',
    labelNames: ['outcome'],
    registers: [registry],
  });
  let ingestRef: Ingest | undefined;
  new Gauge({
    name: 'ci_audit_aggregator_elasticsearch_ready',
    help: '1 when Elasticsearch takes writes (the receiver accepts requests), else 0.',
    registers: [registry],
    collect() {
      this.set(ingestRef?.ready === true ? 1 : 0);
    },
  });
  return {
    registry,
    wrap(ingest) {
      ingestRef = ingest;
      return {
        get ready() {
          return ingest.ready;
        },
        get state() {
          return ingest.state;
        },
        retryAfterSeconds: () => ingest.retryAfterSeconds(),
        async ingest(batch: DecodedLogRecord[]): Promise<IngestResult> {
          const result = await ingest.ingest(batch);
          records.inc({ outcome: 'created' }, result.created);
          records.inc({ outcome: 'duplicate' }, result.duplicates);
          records.inc({ outcome: 'rejected' }, result.rejected);
          return result;
        },
      };
    },
    register(app) {
      app.addHook('onResponse', async (request, reply) => {
        // The route pattern, not the URL: unknown paths must not grow the label set.
        requests.inc({ route: request.routeOptions.url ?? 'unknown', status: String(reply.statusCode) });
      });
      app.get(metricsPath, async (_request, reply) => reply.header('content-type', registry.contentType).send(await registry.metrics()));
    },
  };
}
