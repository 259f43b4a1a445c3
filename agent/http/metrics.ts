// The agent's Prometheus metrics, read from the same status the /status route shows, when scraped.
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { AgentStatus } from './status.ts';

/** A registry whose gauges are filled from `status()` at each scrape, plus Node's process metrics. */
export function agentMetrics(status: () => Promise<AgentStatus>): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ci_audit_agent_' });
  // One status per scrape, shared by the gauges that collect during it.
  let current: Promise<AgentStatus> | undefined;
  const scrape = (): Promise<AgentStatus> => {
    current ??= status().finally(() => {
      setImmediate(() => (current = undefined));
    });
    return current;
  };
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge, s: AgentStatus) => void): void => {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        fill(this, await scrape());
      },
    });
  };
  gauge('ci_audit_agent_acked_records', 'Records the aggregator acknowledged since the agent started.', [], (g, s) => g.set(s.output.acked_records));
  gauge('ci_audit_agent_failed_exports', 'Exports that failed (and are retried) since the agent started.', [], (g, s) => g.set(s.output.failed_exports));
  gauge('ci_audit_agent_last_ack_timestamp_seconds', 'Unix time of the last acknowledged batch; 0 before the first.', [], (g, s) =>
    g.set(s.output.last_ack_at === null ? 0 : Date.parse(s.output.last_ack_at) / 1000),
  );
  gauge('ci_audit_agent_source_lag_bytes', 'Bytes written to a file source\'s files but not yet past its checkpoint.', ['source'], (g, s) => {
    for (const source of s.sources) if (source.lag_bytes !== undefined) g.set({ source: source.id }, source.lag_bytes);
  });
  gauge('ci_audit_agent_source_files', 'Files with a checkpoint, per file source.', ['source'], (g, s) => {
    for (const source of s.sources) if (source.files !== undefined) g.set({ source: source.id }, source.files.length);
  });
  gauge('ci_audit_agent_buffer_bytes', 'Bytes of disk buffer segments (records not yet acknowledged).', [], (g, s) => g.set(s.buffer.bytes));
  gauge('ci_audit_agent_buffer_max_bytes', 'buffer.max_bytes.', [], (g, s) => g.set(s.buffer.max_bytes));
  gauge('ci_audit_agent_rejected_batches', 'Batches the aggregator rejected as malformed, set aside in <state_dir>/rejected (declared as chain gaps).', [], (g, s) => g.set(s.rejected.batches));
  gauge('ci_audit_agent_rejected_bytes', 'Bytes of set-aside rejected batches; output.rejected.max_bytes bounds them.', [], (g, s) => g.set(s.rejected.bytes));
  gauge('ci_audit_agent_chain_seq', 'Sequence number of the committed chain head; -1 before the first.', [], (g, s) => g.set(s.chain?.seq ?? -1));
  return registry;
}
