// Runs ci-audit's own retention enforcement in the aggregator every `retention.interval`, when the
// cluster offers neither the data stream lifecycle nor ILM (or `retention.mechanism: own`). Several
// aggregators may run it: the leader lock in enforce.ts lets one act per run. A failed run is logged
// and retried at the next interval; it never stops the aggregator.
// With `retention.elasticsearch` set, the runs use those credentials (the narrower ci_audit_retention
// role: it may delete expired backing indices, the writer may not), on a client of their own.
import type { Client } from '@elastic/elasticsearch';
import type { AggregatorConfig } from '../../config/schema.ts';
import { hasErrorCode } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { createClient } from '../index/client.ts';
import type { ConnectionConfig } from '../index/client.ts';
import { builtInDatasets } from '../index/templates.ts';
import { detectCapabilities } from './apply.ts';
import { enforceRetention } from './enforce.ts';
import { chooseMechanism, durationMs, resolvePolicies } from './policy.ts';

export interface RetentionScheduleOptions {
  config: AggregatorConfig;
  /** The aggregator's client: used unless `retention.elasticsearch` names credentials of their own. */
  client: Client;
  url: string;
  /** Whether Elasticsearch is reachable now; runs are skipped while it is not. */
  ready: () => boolean;
  logger: Logger;
}

export interface RetentionSchedule {
  stop(): Promise<void>;
}

/** The connection of the retention runs: the aggregator's URL with `retention.elasticsearch`'s credentials, or undefined to share the aggregator's client. */
export function retentionConnection(config: AggregatorConfig): ConnectionConfig | undefined {
  const own = config.retention.elasticsearch;
  if (own === undefined || (own.api_key === undefined && own.username === undefined)) return undefined;
  // The URL's user info would be the writer's: strip it, so only the retention credentials apply.
  const url = new URL(config.elasticsearch.url);
  url.username = '';
  url.password = '';
  return {
    url: url.toString(),
    request_timeout_ms: config.elasticsearch.request_timeout_ms,
    ...(own.api_key === undefined ? {} : { api_key: own.api_key }),
    ...(own.username === undefined ? {} : { username: own.username }),
    ...(own.password === undefined ? {} : { password: own.password }),
  };
}

export function startRetentionSchedule(options: RetentionScheduleOptions): RetentionSchedule {
  const { config, logger } = options;
  if (!config.retention.enforce) return { stop: async () => {} };
  const connection = retentionConnection(config);
  const own = connection === undefined ? undefined : createClient(connection).client;
  const client = own ?? options.client;
  // setInterval holds at most 2^31-1 ms (~24.8 days).
  const intervalMs = Math.min(durationMs(config.retention.interval), 2 ** 31 - 1);
  let running: Promise<void> | undefined;
  let stopped = false;
  const runOnce = async (): Promise<void> => {
    if (stopped || !options.ready()) return;
    try {
      const mechanism = chooseMechanism(config.retention.mechanism, await detectCapabilities(client));
      if (mechanism !== 'own') return; // Elasticsearch enforces it (lifecycle / ILM), set by `retention apply`.
      const policies = resolvePolicies(config.retention, [...builtInDatasets]);
      const defaultAge = config.retention.default_max_age;
      const report = await enforceRetention({
        client,
        url: options.url,
        namespace: config.elasticsearch.namespace,
        policies,
        fallback: { dataset: '', maxAge: defaultAge, maxAgeMs: durationMs(defaultAge), compliance: false },
        rolloverMaxAgeMs: durationMs(config.retention.rollover_max_age),
        logger,
        lockTtlMs: Math.max(intervalMs, 60_000),
      });
      if (report.leader) logger.info({ rolled_over: report.rolledOver.length, blocked: report.blocked.length, deleted: report.deleted.length, skipped: report.skipped.length }, 'retention run done');
    } catch (err) {
      if (hasErrorCode(err, 'CIA_ERR_RETENTION_UNDETERMINED')) {
        // A transient error while asking what the cluster offers: not a reason to enforce on our own.
        logger.warn({ code: err.code, error: err.message }, 'retention run skipped: cannot tell whether Elasticsearch enforces retention itself; retrying at the next interval');
        return;
      }
      logger.error({ code: (err as { code?: string }).code, error: (err as Error).message }, 'retention run failed; retrying at the next interval');
    }
  };
  // The first run waits one interval: an aggregator that restarts in a loop does not hammer the cluster.
  const timer = setInterval(() => {
    running ??= runOnce().finally(() => {
      running = undefined;
    });
  }, intervalMs);
  timer.unref();
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
      await own?.close();
    },
  };
}
