// Runs ci-audit's own retention enforcement in the aggregator every `retention.interval`, when the
// cluster offers neither the data stream lifecycle nor ILM (or `retention.mechanism: own`). Several
// aggregators may run it: the leader lock in enforce.ts lets one act per run. A failed run is logged
// and retried at the next interval; it never stops the aggregator.
import type { Client } from '@elastic/elasticsearch';
import type { AggregatorConfig } from '../../config/schema.ts';
import type { Logger } from '../../core/logger.ts';
import { builtInDatasets } from '../index/templates.ts';
import { detectCapabilities } from './apply.ts';
import { enforceRetention } from './enforce.ts';
import { chooseMechanism, durationMs, resolvePolicies } from './policy.ts';

export interface RetentionScheduleOptions {
  config: AggregatorConfig;
  client: Client;
  url: string;
  /** Whether Elasticsearch is reachable now; runs are skipped while it is not. */
  ready: () => boolean;
  logger: Logger;
}

export interface RetentionSchedule {
  stop(): Promise<void>;
}

export function startRetentionSchedule(options: RetentionScheduleOptions): RetentionSchedule {
  const { config, logger } = options;
  if (!config.retention.enforce) return { stop: async () => {} };
  // setInterval holds at most 2^31-1 ms (~24.8 days).
  const intervalMs = Math.min(durationMs(config.retention.interval), 2 ** 31 - 1);
  let running: Promise<void> | undefined;
  let stopped = false;
  const runOnce = async (): Promise<void> => {
    if (stopped || !options.ready()) return;
    try {
      const mechanism = chooseMechanism(config.retention.mechanism, await detectCapabilities(options.client));
      if (mechanism !== 'own') return; // Elasticsearch enforces it (lifecycle / ILM), set by `retention apply`.
      const policies = resolvePolicies(config.retention, [...builtInDatasets]);
      const defaultAge = config.retention.default_max_age;
      const report = await enforceRetention({
        client: options.client,
        url: options.url,
        namespace: config.elasticsearch.namespace,
        policies,
        fallback: { dataset: '', maxAge: defaultAge, maxAgeMs: durationMs(defaultAge), compliance: false },
        rolloverMaxAgeMs: durationMs(config.retention.rollover_max_age),
        logger,
        lockTtlMs: Math.max(intervalMs, 60_000),
      });
      if (report.leader) logger.info({ rolled_over: report.rolledOver.length, blocked: report.blocked.length, deleted: report.deleted.length }, 'retention run done');
    } catch (err) {
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
    },
  };
}
