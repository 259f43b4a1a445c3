// `ci-audit agent rejected list` and `ci-audit agent rejected resend`: what the operator does with
// the batches the aggregator rejected as malformed (docs/operations.md). Both read the state folder
// only; `resend` posts a batch unchanged, with the agent's own credential and TLS settings.
import { ExportResultCode } from '@opentelemetry/core';
import { loadAgentConfig } from '../../config/loader.ts';
import { CiAuditError } from '../../core/errors.ts';
import { createLogger } from '../../core/logger.ts';
import { readCredential } from '../enroll/credentials.ts';
import { OtlpHttpLogExporter } from '../sinks/otlp-http-exporter.ts';
import { agentConnectOptions } from '../sinks/tls-connect.ts';
import { listRejected, readRejected, rejectedDir, removeRejected, type RejectedEntry } from './rejected-store.ts';

/** The set-aside batches, oldest first: a table, or JSON (one array) with `json`. */
export async function runRejectedList(configFile: string, json: boolean): Promise<string> {
  const { config } = await loadAgentConfig(configFile);
  const dir = rejectedDir(config.agent.state_dir);
  const entries = await listRejected(dir);
  if (json) return `${JSON.stringify(entries, null, 2)}\n`;
  if (entries.length === 0) return `no rejected batches in ${dir}\n`;
  const lines = [`${entries.length} rejected batches in ${dir} (oldest first):`];
  for (const e of entries) lines.push(`${e.id}  ${e.set_aside_at}  HTTP ${e.status}  ${e.records} records  seqs ${seqText(e)}  ${e.message}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Sends a set-aside batch to `output.url` again, as it was first sent, and removes it once the
 * aggregator accepted it (unless `keep`). A batch refused again stays where it is.
 */
export async function runRejectedResend(configFile: string, id: string, options: { keep: boolean }): Promise<string> {
  const { config } = await loadAgentConfig(configFile);
  const stateDir = config.agent.state_dir;
  const dir = rejectedDir(stateDir);
  const { entry, body } = await readRejected(dir, id);
  const credential = config.output.token === undefined ? await readCredential(stateDir) : undefined;
  const exporter = new OtlpHttpLogExporter({
    url: config.output.url,
    token: config.output.token ?? credential?.token,
    timeoutMs: config.output.timeout_ms,
    logger: createLogger({ name: 'agent', level: 'warn' }),
    tls: await agentConnectOptions(config.output.tls),
  });
  try {
    const result = await exporter.sendEncoded(body, entry.records);
    if (result.code !== ExportResultCode.SUCCESS) {
      const code = (result.error as { code?: unknown } | undefined)?.code === 'CIA_ERR_SHIP_REJECTED' ? 'CIA_ERR_SHIP_REJECTED' : 'CIA_ERR_SHIP_UNAVAILABLE';
      throw new CiAuditError(code, `${result.error?.message ?? 'export failed'}; the batch ${id} stays in ${dir}`, { details: { id } });
    }
  } finally {
    await exporter.shutdown();
  }
  if (!options.keep) await removeRejected(dir, id);
  return `sent ${entry.records} records of ${id} (seqs ${seqText(entry)}) to ${exporter.redactedEndpoint}; ${options.keep ? 'kept' : 'removed'} the set-aside copy\n`;
}

function seqText(e: RejectedEntry): string {
  if (e.seq_ranges.length === 0) return 'none';
  return e.seq_ranges.map((r) => (r.first === r.last ? String(r.first) : `${r.first}-${r.last}`)).join(',');
}
