// Starting and stopping the agent: sources -> pipeline (OpenTelemetry logs SDK + audit batch
// processor) -> OTLP/HTTP exporter. The stop order is what makes a graceful stop lose nothing and
// re-send little: stop reading, flush the pipeline (its acks move the checkpoints), then persist
// the checkpoints.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogRecordExporter } from '@opentelemetry/sdk-logs';
import { loadAgentConfig } from '../config/loader.ts';
import type { AgentConfig } from '../config/schema.ts';
import { CiAuditError } from '../core/errors.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { redactUrl } from '../core/secrets.ts';
import { DiskBuffer } from './buffer/disk-buffer.ts';
import { ExportStats } from './http/export-stats.ts';
import type { AgentHttpHandle } from './http/server.ts';
import { Pipeline } from './pipeline/pipeline.ts';
import { setAsideRejected } from './pipeline/set-aside.ts';
import { RejectedStore, rejectedDir } from './rejected/rejected-store.ts';
import { openChain, type ChainProcessor } from './chain/chain-processor.ts';
import { Checkpointer } from './chain/checkpointer.ts';
import { ensureSigningKey, signingKeyPath } from './chain/signing-key.ts';
import { buildProcessors } from './processors/build.ts';
import { agentResource } from './resource.ts';
import { readCredential } from './enroll/credentials.ts';
import { logsEndpoint, OtlpHttpLogExporter } from './sinks/otlp-http-exporter.ts';
import { agentConnectOptions } from './sinks/tls-connect.ts';
import { FileSource } from './sources/file/file-source.ts';
import { JobHookSource } from './sources/job-hook/job-hook-source.ts';
import { JobRegistry } from './sources/job-hook/job-registry.ts';
import { JournaldSource } from './sources/journald/journald-source.ts';
import type { Source } from './sources/source.ts';
import { untilStopped } from '../core/stop-signal.ts';

export interface StartAgentOptions {
  /** Replaces the OTLP/HTTP exporter (tests, or another transport). */
  exporter?: LogRecordExporter;
  /** Poll interval of file sources, in ms. Default: 1000. */
  pollIntervalMs?: number;
  /** How long a stop keeps trying to deliver queued records, in ms. Default: 5000. */
  shutdownTimeoutMs?: number;
}

export interface AgentHandle {
  readonly config: AgentConfig;
  readonly sources: readonly Source[];
  readonly pipeline: Pipeline;
  readonly chain: ChainProcessor;
  readonly checkpointer: Checkpointer;
  /** Stops reading, flushes, persists checkpoints. Safe to call twice. */
  stop(): Promise<void>;
}

/** Starts the agent in this process. Rejects (after undoing what it started) when a source cannot start. */
export async function startAgent(config: AgentConfig, logger: Logger, options: StartAgentOptions = {}): Promise<AgentHandle> {
  const agentId = config.agent.id;
  const stateDir = config.agent.state_dir;
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw new CiAuditError(
      'CIA_ERR_SOURCE_CHECKPOINT',
      `cannot create the state folder ${stateDir} (agent.state_dir): ${(cause as Error).message}; create it or pick a writable folder`,
      { cause, details: { option: 'agent.state_dir', path: stateDir } },
    );
  }

  // The chain: its key (generated at the first start), where it stood, and the checkpoints.
  const { key, created } = await ensureSigningKey(signingKeyPath(config));
  if (created) logger.info({ key: key.id, path: key.file }, 'generated the agent\'s signing key; register its public key with ci-audit agent enroll');
  const integrity = config.integrity;
  const chain = await openChain({
    stateDir,
    agentId,
    keyId: key.id,
    reserveBlock: integrity.reserve_block,
    everyRecords: integrity.checkpoint_every_records,
    logger,
  });
  const resume = chain.resume;
  if (resume !== undefined) {
    logger.warn(
      { committedSeq: resume.committed.seq, firstSeq: resume.firstSeq, lastSeq: resume.lastSeq },
      'the agent did not stop cleanly: the chain resumes with a gap record for the sequence numbers not committed; their lines are read again',
    );
  }
  // Batches the aggregator rejects as malformed are set aside here and declared as chain gaps.
  const rejected = await RejectedStore.open({ dir: rejectedDir(stateDir), maxBytes: config.output.rejected.max_bytes, logger });
  // Counted for /status and /metrics (http.listen).
  const exportStats = new ExportStats();
  const startedAt = new Date();
  const exporter = exportStats.wrap(
    options.exporter ??
    new OtlpHttpLogExporter({
      url: config.output.url,
      token: config.output.token ?? (await enrolledToken(stateDir, agentId)),
      timeoutMs: config.output.timeout_ms,
      compression: config.output.compression,
      compressionLevel: config.output.compression_level,
      logger,
      tls: await agentConnectOptions(config.output.tls),
    }),
  );
  const buffer = config.buffer;
  const diskBuffer =
    buffer.type === 'disk'
      ? await DiskBuffer.open({
          dir: join(stateDir, 'buffer'),
          maxBytes: buffer.max_bytes,
          segmentBytes: buffer.segment_bytes,
          fsync: buffer.fsync,
          fsyncIntervalMs: buffer.fsync_interval_ms,
          overflow: buffer.overflow,
          logger,
        })
      : undefined;
  const hooks = config.job_hooks;
  const registry = hooks === undefined ? undefined : new JobRegistry(hooks.max_job_seconds * 1000);
  const pipeline = new Pipeline({
    resource: agentResource({ agentId, runnerType: config.agent.runner_type, labels: config.processors.labels }),
    exporter,
    logger,
    processors: buildProcessors(config.processors, hooks === undefined || registry === undefined ? undefined : { registry, jobLogs: hooks.job_logs }),
    maxBatchRecords: config.output.batch.max_records,
    maxInFlight: config.output.max_in_flight,
    maxDelayMs: config.output.batch.max_delay_ms,
    diskBuffer,
    chain,
    onRejected: setAsideRejected({ store: rejected, logger, emit: (record, ack) => pipeline.emitAgentRecord(record, ack) }),
    ...(options.shutdownTimeoutMs === undefined ? {} : { shutdownTimeoutMs: options.shutdownTimeoutMs }),
  });

  const sources: Source[] = config.sources.map((source) =>
    source.type === 'journald'
      ? new JournaldSource({ config: source, agentId, stateDir, logger })
      : new FileSource({
          config: source,
          agentId,
          stateDir,
          logger,
          ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
        }),
  );

  if (hooks !== undefined && registry !== undefined) {
    sources.push(new JobHookSource({ spoolDir: hooks.spool_dir, trustedUids: hooks.trusted_uids, registry, agentId, logger, pollIntervalMs: hooks.poll_interval_ms }));
  }

  const checkpointer = new Checkpointer({
    agentId,
    chain,
    key,
    emit: (record, ack) => pipeline.emitAgentRecord(record, ack),
    intervalMs: integrity.checkpoint_interval_ms,
    logger,
  });
  pipeline.onCheckpointDue = () => checkpointer.checkpoint();
  const chained = { chain, checkpointer };
  const started: Source[] = [];
  try {
    await checkpointer.start();
    for (const source of sources) {
      await source.start(pipeline.sink);
      started.push(source);
    }
  } catch (err) {
    await stopAll(started, pipeline, chained, logger);
    throw err;
  }

  let stopping: Promise<void> | undefined;
  let http: AgentHttpHandle | undefined;
  if (config.http !== undefined) {
    try {
      // Loaded only when configured: prom-client and the endpoint are about 1.5 MB of the agent's memory.
      const [{ startAgentHttp }, { collectAgentStatus }] = await Promise.all([import('./http/server.ts'), import('./http/status.ts')]);
      http = await startAgentHttp({
        listen: config.http.listen,
        status: () => collectAgentStatus(config, { pid: process.pid, startedAt, exports: exportStats.snapshot() }),
        healthy: () => stopping === undefined,
        logger,
      });
    } catch (err) {
      await stopAll(sources, pipeline, chained, logger);
      throw err;
    }
  }

  logger.info(
    { agentId, sources: sources.map((s) => s.id), output: redactUrl(logsEndpoint(config.output.url)), stateDir },
    'agent started',
  );

  return {
    config,
    sources,
    pipeline,
    chain,
    checkpointer,
    stop() {
      stopping ??= stopAll(sources, pipeline, chained, logger)
        .finally(() => http?.close())
        .then(() => logger.info({ agentId }, 'agent stopped'));
      return stopping;
    },
  };
}

/** The token `ci-audit agent enroll` stored, if any; refused when it was issued to another agent id. */
async function enrolledToken(stateDir: string, agentId: string): Promise<string | undefined> {
  const credential = await readCredential(stateDir);
  if (credential === undefined) return undefined;
  if (credential.agent_id !== agentId) {
    throw new CiAuditError(
      'CIA_ERR_AUTH_CREDENTIALS',
      `the stored credential in ${stateDir} was issued to agent ${credential.agent_id}, but agent.id is ${agentId}; enroll again or fix agent.id`,
      { details: { option: 'agent.id', path: stateDir } },
    );
  }
  return credential.token;
}

async function stopAll(sources: readonly Source[], pipeline: Pipeline, chained: { chain: ChainProcessor; checkpointer: Checkpointer }, logger: Logger): Promise<void> {
  await Promise.all(sources.map((s) => s.stop()));
  // Nothing more is chained: the final checkpoint covers every record, then the pipeline delivers
  // what it can and the chain saves whether everything it handed out was committed.
  chained.checkpointer.stop();
  await pipeline.shutdown();
  try {
    const { clean } = await chained.chain.close();
    if (!clean) logger.warn({ committedSeq: chained.chain.committed.seq, lastSeq: chained.chain.head.seq }, 'stopping with chained records not committed; the chain resumes with a gap record after the restart');
  } catch (err) {
    logger.error({ code: 'CIA_ERR_INTEGRITY_STATE', err: (err as Error).message }, 'cannot save the chain state on stop; the chain resumes with a gap record after the restart');
  }
  const closed = await Promise.allSettled(sources.map((s) => s.close()));
  const failed = closed.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    logger.error({ err: (failed.reason as Error).message }, 'cannot persist source state on stop');
    throw failed.reason;
  }
}

/**
 * Runs the agent until SIGINT or SIGTERM, then stops it gracefully and resolves. A second signal
 * during the stop ends the process at once; SIGHUP is ignored (core/stop-signal.ts).
 * Configuration errors reject with a CiAuditError, which the command line prints.
 */
export async function runAgent(options: { configFile: string; logger?: Logger }): Promise<void> {
  const { config } = await loadAgentConfig(options.configFile);
  const logger = options.logger ?? createLogger({ name: 'agent', level: config.log.level, format: config.log.format });
  const { signal, started: agent } = await untilStopped(logger, () => startAgent(config, logger));
  logger.info({ signal }, 'stopping agent');
  await agent.stop();
}
