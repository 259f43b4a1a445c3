// `ci-audit status`: what the agent reads and sends. Asks the running agent (http.listen) for its
// status and falls back to the state folder when it cannot be reached, saying so.
import { request } from 'undici';
import { loadAgentConfig } from '../config/loader.ts';
import { CiAuditError } from '../core/errors.ts';
import { parseListen } from '../agent/http/server.ts';
import { collectAgentStatus, type AgentStatus } from '../agent/http/status.ts';

export interface StatusOptions {
  configFile: string;
  json?: boolean;
  /** Base URL of the running agent's endpoint; default: from http.listen. */
  url?: string;
  /** Exit 1 (CIA_ERR_AGENT_STATUS) when the running agent cannot be reached. */
  requireRunning?: boolean;
  write?: (text: string) => void;
}

export async function runStatus(options: StatusOptions): Promise<AgentStatus> {
  const write = options.write ?? ((text: string) => process.stdout.write(text));
  const { config } = await loadAgentConfig(options.configFile);
  let status: AgentStatus | undefined;
  let unreachable: string | undefined;
  const base = options.url ?? (config.http === undefined ? undefined : endpointOf(config.http.listen));
  if (base === undefined) {
    unreachable = 'http.listen is not configured';
  } else {
    try {
      const response = await request(new URL('/status', base), { headersTimeout: 5000, bodyTimeout: 5000 });
      if (response.statusCode !== 200) {
        await response.body.dump();
        unreachable = `GET /status answered ${response.statusCode}`;
      } else {
        status = (await response.body.json()) as AgentStatus;
      }
    } catch (err) {
      unreachable = `${base}: ${(err as Error).message}`;
    }
  }
  if (status === undefined) {
    if (options.requireRunning === true) {
      throw new CiAuditError('CIA_ERR_AGENT_STATUS', `the agent is not reachable (${unreachable ?? 'unknown'}); is it running? (systemctl status ci-audit-agent)`, { details: { option: 'http.listen' } });
    }
    status = await collectAgentStatus(config);
  }
  write(options.json === true ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status, unreachable));
  return status;
}

/** The URL to reach a `host:port` listener at: a wildcard address is reached on loopback. */
function endpointOf(listen: string): string {
  const { host, port } = parseListen(listen);
  const target = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${target}:${port}`;
}

export function formatStatus(status: AgentStatus, unreachable?: string): string {
  const lines: string[] = [];
  const { agent, output, buffer, chain } = status;
  lines.push(`agent ${agent.id} (${agent.runner_type}), ci-audit ${agent.version}`);
  lines.push(agent.running ? `  running: pid ${agent.pid ?? '?'} since ${agent.started_at ?? '?'}` : `  not reached (${unreachable ?? 'not running'}): read from ${agent.state_dir}`);
  lines.push(`  output: ${output.url}`);
  if (agent.running) {
    lines.push(`  last acknowledgement: ${output.last_ack_at ?? 'none since start'}; ${output.acked_records} records acknowledged, ${output.failed_exports} failed exports`);
    if (output.last_error !== undefined) lines.push(`  last export error: ${output.last_error}`);
  }
  const percent = (buffer.used_ratio * 100).toFixed(1);
  lines.push(buffer.type === 'disk' ? `  buffer: ${buffer.bytes} of ${buffer.max_bytes} bytes (${percent}%), ${buffer.segments} segments` : '  buffer: memory');
  lines.push(chain === null ? '  chain head: none yet' : `  chain head: seq ${chain.seq}, ${chain.hash}`);
  if (status.rejected.batches > 0) {
    lines.push(`  rejected batches set aside: ${status.rejected.batches} (${status.rejected.bytes} of ${status.rejected.max_bytes} bytes): ci-audit agent rejected list`);
  }
  lines.push('sources:');
  for (const source of status.sources) {
    const head = `  ${source.id} (${source.type}, dataset ${source.dataset})`;
    if (source.error !== undefined) {
      lines.push(`${head}: cannot read its state: ${source.error}`);
    } else if (source.type === 'journald') {
      lines.push(`${head}: ${source.cursor_saved === true ? 'cursor saved' : 'no cursor yet'}`);
    } else {
      lines.push(`${head}: ${source.files?.length ?? 0} files, lag ${source.lag_bytes ?? 0} bytes`);
      for (const file of source.files ?? []) {
        lines.push(`    ${file.path}  offset ${file.offset}${file.size === undefined ? ' (gone or replaced)' : ` of ${file.size}, lag ${file.lag_bytes ?? 0}`}`);
      }
    }
  }
  return `${lines.join('\n')}\n`;
}
