// The OpenTelemetry Resource of the agent: who sent the records. Every record the agent ships
// carries it once per request (OTLP groups records by resource).
import { hostname } from 'node:os';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { version } from '../core/version.ts';
import { agentServiceName, resourceAttr } from '../core/wire.ts';

export interface AgentResourceOptions {
  agentId: string;
  /** Default: the host name of this machine. */
  hostName?: string;
}

export function agentResource(options: AgentResourceOptions): Resource {
  return resourceFromAttributes({
    [resourceAttr.hostName]: options.hostName ?? hostname(),
    [resourceAttr.serviceName]: agentServiceName,
    [resourceAttr.serviceVersion]: version,
    [resourceAttr.agentId]: options.agentId,
  });
}
