// The OpenTelemetry Resource of the agent: who sent the records. Every record the agent ships
// carries it once per request (OTLP groups records by resource). Built from detectors, each a pure
// function of what it reads (the files' text is an argument), so they are tested on real inputs:
// host (name, id from /etc/machine-id, arch), os (type, description/name/version from
// /etc/os-release), service (name, version), the agent's id and runner type, and static labels.
// The schema URL of the pinned semantic conventions is the Resource's OTLP `schema_url` and, for
// readers that drop it, an attribute too.
import { readFileSync } from 'node:fs';
import { arch, hostname, platform } from 'node:os';
import type { AttributeValue } from '@opentelemetry/api';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { version } from '../core/version.ts';
import { agentServiceName, resourceAttr, resourceDetectAttr, semconvSchemaUrl } from '../core/wire.ts';

export interface AgentResourceOptions {
  agentId: string;
  /** Default: the host name of this machine. */
  hostName?: string;
  /** `agent.runner_type` from config. Default: none. */
  runnerType?: string;
  /** `processors.labels` from config, as `labels.<key>`. */
  labels?: Record<string, string>;
  /** Text of /etc/machine-id and /etc/os-release; default: read from the host (missing: left out). */
  machineId?: string | undefined;
  osRelease?: string | undefined;
}

export function agentResource(options: AgentResourceOptions): Resource {
  const attributes: Record<string, AttributeValue> = {
    [resourceAttr.hostName]: options.hostName ?? hostname(),
    [resourceAttr.serviceName]: agentServiceName,
    [resourceAttr.serviceVersion]: version,
    [resourceAttr.agentId]: options.agentId,
    [resourceDetectAttr.hostArch]: hostArch(arch()),
    [resourceDetectAttr.osType]: osType(platform()),
    [resourceDetectAttr.runnerType]: options.runnerType ?? 'none',
    [resourceDetectAttr.schemaUrl]: semconvSchemaUrl,
  };
  const id = machineId('machineId' in options ? options.machineId : readOptional('/etc/machine-id'));
  if (id !== undefined) attributes[resourceDetectAttr.hostId] = id;
  Object.assign(attributes, osAttributes('osRelease' in options ? options.osRelease : readOptional('/etc/os-release')));
  for (const [key, value] of Object.entries(options.labels ?? {})) attributes[`${resourceDetectAttr.labelPrefix}${key}`] = value;
  return resourceFromAttributes(attributes, { schemaUrl: semconvSchemaUrl });
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    // Not every host has it (containers, non-systemd): the attribute is left out.
    return undefined;
  }
}

/** /etc/machine-id holds 32 hex digits; anything else (empty, `uninitialized`) is no id. */
export function machineId(text: string | undefined): string | undefined {
  const id = text?.trim();
  return id !== undefined && /^[0-9a-f]{32}$/.test(id) ? id : undefined;
}

/** Node's arch names -> the semantic conventions' `host.arch` values. */
export function hostArch(nodeArch: string): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm32', ia32: 'x86', ppc64: 'ppc64', ppc: 'ppc32', s390x: 's390x' };
  return map[nodeArch] ?? nodeArch;
}

/** Node's platform -> `os.type` (linux, darwin, windows, freebsd, ...). */
export function osType(nodePlatform: string): string {
  return nodePlatform === 'win32' ? 'windows' : nodePlatform;
}

/** `os.name`, `os.version`, `os.description` from os-release (`NAME`, `VERSION_ID`, `PRETTY_NAME`). */
export function osAttributes(osRelease: string | undefined): Record<string, string> {
  if (osRelease === undefined) return {};
  const values: Record<string, string> = {};
  for (const line of osRelease.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m === null) continue;
    let v = m[2] ?? '';
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1).replace(/\\(["'$`\\])/g, '$1');
    values[m[1] ?? ''] = v;
  }
  const out: Record<string, string> = {};
  if (values.NAME) out[resourceDetectAttr.osName] = values.NAME;
  if (values.VERSION_ID) out[resourceDetectAttr.osVersion] = values.VERSION_ID;
  const description = values.PRETTY_NAME ?? values.NAME;
  if (description) out[resourceDetectAttr.osDescription] = description;
  return out;
}
