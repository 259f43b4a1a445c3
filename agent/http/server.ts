// The agent's own HTTP endpoint (`http.listen`): GET /healthz for service managers and probes,
// GET /metrics for Prometheus, GET /status for `ci-audit status`. Read-only, no secrets, no
// authentication: it listens on loopback unless configured otherwise.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CiAuditError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { agentMetrics } from './metrics.ts';
import type { AgentStatus } from './status.ts';

export interface AgentHttpHandle {
  /** e.g. `http://127.0.0.1:8318`, with the port actually bound. */
  readonly url: string;
  close(): Promise<void>;
}

/** Splits `host:port` (`[::1]:8318` for IPv6). */
export function parseListen(listen: string): { host: string; port: number } {
  const at = listen.lastIndexOf(':');
  const host = listen.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(listen.slice(at + 1)) };
}

export async function startAgentHttp(options: { listen: string; status: () => Promise<AgentStatus>; healthy: () => boolean; logger: Logger }): Promise<AgentHttpHandle> {
  const registry = agentMetrics(options.status);
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?', 1)[0];
    const send = (code: number, type: string, body: string): void => {
      response.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' }).end(request.method === 'HEAD' ? undefined : body);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      send(405, 'text/plain', 'use GET\n');
      return;
    }
    const answer = async (): Promise<void> => {
      switch (path) {
        case '/healthz': {
          const ok = options.healthy();
          send(ok ? 200 : 503, 'application/json', `${JSON.stringify({ status: ok ? 'ok' : 'stopping' })}\n`);
          return;
        }
        case '/metrics':
          send(200, registry.contentType, await registry.metrics());
          return;
        case '/status':
          send(200, 'application/json', `${JSON.stringify(await options.status(), null, 2)}\n`);
          return;
        default:
          send(404, 'text/plain', 'routes: /healthz, /metrics, /status\n');
      }
    };
    answer().catch((err: unknown) => {
      options.logger.warn({ err: (err as Error).message, path }, 'agent http request failed');
      if (!response.headersSent) send(500, 'text/plain', 'internal error\n');
    });
  });
  const { host, port } = parseListen(options.listen);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (cause) {
    throw new CiAuditError('CIA_ERR_AGENT_HTTP_LISTEN', `cannot listen on ${options.listen} (http.listen): ${(cause as Error).message}; pick a free port or remove http`, {
      cause,
      details: { option: 'http.listen' },
    });
  }
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  options.logger.info({ url }, 'agent http listening');
  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
