// The aggregator process: receiver -> verify -> map -> index, wired from configuration.
import type { AddressInfo } from 'node:net';
import { loadAggregatorConfig } from '../config/loader.ts';
import type { AggregatorConfig } from '../config/schema.ts';
import { CiAuditError } from '../core/errors.ts';
import { createLogger } from '../core/logger.ts';
import type { Logger } from '../core/logger.ts';
import { version } from '../core/version.ts';
import { effectiveAuthMode } from './auth/authenticate.ts';
import { checkListenSecurity, isLoopbackHost } from './auth/listen-security.ts';
import { AgentRegistry } from './auth/registry.ts';
import { receiverTlsOptions } from './auth/tls-options.ts';
import { ElasticsearchWriter } from './index/elasticsearch-writer.ts';
import { aggregatorMetrics } from './metrics/metrics.ts';
import { Pipeline } from './pipeline.ts';
import { startRetentionSchedule } from './retention/schedule.ts';
import { Spool } from './spool/spool.ts';
import { SpoolingWriter } from './spool/spooling-writer.ts';
import { createReceiver } from './receiver/server.ts';
import type { ReceiverOptions } from './receiver/server.ts';
import { AnchorFile } from './verify/anchor.ts';
import { ElasticsearchChainStore } from './verify/chain-store.ts';
import { VerifyStage } from './verify/stage.ts';
import { untilStopped } from '../core/stop-signal.ts';

export interface AggregatorHandle {
  /** Base URL of the receiver with the port actually bound, e.g. `http://127.0.0.1:43127`. */
  url: string;
  /** Stops accepting, lets in-flight requests finish, closes the Elasticsearch client. Safe to call twice. */
  close(): Promise<void>;
}

export interface RunAggregatorOptions {
  /** Configuration file; without it, defaults and ES_URL / ES_API_KEY apply. */
  configFile?: string;
  /** Default: a logger built from the configuration's `log` section (JSON on stderr unless a terminal). */
  logger?: Logger;
}

/**
 * Starts the receiver and the Elasticsearch writer in this process. Resolves once the receiver
 * listens (Elasticsearch may still be unreachable: the receiver answers 503 until it is ready) and
 * logs `msg: 'receiver listening'` with field `url`.
 */
export async function startAggregator(config: AggregatorConfig, logger: Logger): Promise<AggregatorHandle> {
  // Transport security and auth first: a misconfiguration must fail before anything starts.
  const security = checkListenSecurity(config.listen);
  if (security.warning !== undefined) logger.warn({ code: 'CIA_ERR_TLS_CONFIG' }, security.warning);
  const https = config.listen.tls === undefined ? undefined : await receiverTlsOptions(config.listen.tls);
  const authMode = effectiveAuthMode(config.auth.mode, isLoopbackHost(config.listen.host), https !== undefined);
  if ((authMode === 'mtls' || authMode === 'token_or_mtls') && config.listen.tls?.client_ca_file === undefined) {
    throw new CiAuditError('CIA_ERR_TLS_CONFIG', `auth.mode ${authMode} needs listen.tls.client_ca_file (the CA of the agents' client certificates)`, { details: { option: 'auth.mode' } });
  }
  const registry = authMode === 'none' ? undefined : await AgentRegistry.open(config.auth.registry_file);
  const anchor = config.integrity.anchor_file === undefined ? undefined : await AnchorFile.open(config.integrity.anchor_file);
  const bulk = config.elasticsearch.bulk;
  // The writer reports forks (409 on a chained _id with another hash) to the pipeline, built below.
  const late: { pipeline?: Pipeline } = {};
  const esWriter = new ElasticsearchWriter({
    elasticsearch: config.elasticsearch,
    logger: logger.child({ component: 'elasticsearch' }),
    maxBulkItems: bulk.max_items,
    maxBulkBytes: bulk.max_bytes,
    maxConcurrentBulks: bulk.concurrency,
    maxBulkDelayMs: bulk.max_delay_ms,
    maxAttempts: bulk.max_attempts,
    retryDelayMs: bulk.retry_delay_ms,
    installTemplates: config.elasticsearch.setup === 'auto',
    onChainConflicts: (conflicts) => late.pipeline!.chainConflicts(conflicts),
  });
  // With a spool, records accepted while Elasticsearch is unavailable wait on disk (storage.md).
  const spooling =
    config.spool.dir === undefined
      ? undefined
      : new SpoolingWriter({ inner: esWriter, spool: await Spool.open({ dir: config.spool.dir, maxBytes: config.spool.max_bytes }), logger: logger.child({ component: 'spool' }) });
  const writer = esWriter;
  const retention = startRetentionSchedule({ config, client: esWriter.client, url: esWriter.url, ready: () => esWriter.ready, logger: logger.child({ component: 'retention' }) });
  const verify = new VerifyStage({
    logger: logger.child({ component: 'verify' }),
    gapGraceMs: config.integrity.gap_grace_ms,
    keys: registry,
    store: new ElasticsearchChainStore({ client: esWriter.client, url: esWriter.url, namespace: config.elasticsearch.namespace }),
    anchor,
  });
  const pipeline = new Pipeline({ namespace: config.elasticsearch.namespace, writer: spooling ?? esWriter, logger: logger.child({ component: 'pipeline' }), verify });
  late.pipeline = pipeline;
  const metrics = aggregatorMetrics();
  const app = createReceiver({
    ingest: metrics.wrap(pipeline),
    limits: receiverLimits(config.limits),
    logger: logger.child({ component: 'receiver' }),
    auth: { mode: authMode, registry },
    https,
  });
  metrics.register(app);
  writer.start();
  const { host, port } = config.listen;
  try {
    await app.listen({ host, port });
  } catch (cause) {
    await retention.stop();
    await pipeline.close();
    await spooling?.close();
    await writer.close();
    await anchor?.close();
    throw new CiAuditError(
      'CIA_ERR_RECEIVER_LISTEN',
      `cannot listen on ${host}:${port} (listen.host, listen.port): ${(cause as Error).message}`,
      { cause, details: { host, port } },
    );
  }
  const url = urlOf(app.server.address() as AddressInfo, https !== undefined);
  logger.info({ url, auth: authMode, tls: https !== undefined }, 'receiver listening');
  let closing: Promise<void> | undefined;
  return {
    url,
    close: () => {
      closing ??= (async () => {
        try {
          await app.close();
        } finally {
          await retention.stop();
          await pipeline.close();
          await spooling?.close();
          await writer.close();
          await anchor?.close();
        }
      })();
      return closing;
    },
  };
}

/** Runs the aggregator until SIGINT or SIGTERM, then shuts down gracefully and resolves; SIGHUP is ignored (core/stop-signal.ts). */
export async function runAggregator(options: RunAggregatorOptions = {}): Promise<void> {
  const { config, file } = await loadAggregatorConfig(options.configFile);
  const logger = options.logger ?? createLogger({ name: 'aggregator', level: config.log.level, ...(config.log.format ? { format: config.log.format } : {}) });
  logger.info({ version, config: file }, 'aggregator starting');
  const { signal, started: handle } = await untilStopped(logger, () => startAggregator(config, logger));
  logger.info({ signal }, 'shutting down: finishing in-flight requests');
  await handle.close();
  logger.info('aggregator stopped');
}

function receiverLimits(limits: AggregatorConfig['limits']): ReceiverOptions['limits'] {
  return {
    maxBodyBytes: limits.max_body_bytes,
    maxDecompressedBytes: limits.max_decompressed_bytes,
    requestTimeoutMs: limits.request_timeout_ms,
    inFlight: { maxRequests: limits.max_in_flight_requests, maxRecords: limits.max_in_flight_records, maxBytes: limits.max_in_flight_bytes },
    rate: { requestsPerSecond: limits.rate.requests_per_second, recordsPerSecond: limits.rate.records_per_second, burstSeconds: limits.rate.burst_seconds },
    record: { maxAttributes: limits.max_attributes_per_record, maxValueBytes: limits.max_attribute_value_bytes },
  };
}

function urlOf(address: AddressInfo, tls: boolean): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${tls ? 'https' : 'http'}://${host}:${address.port}`;
}
