// The admin commands on the agent registry: `ci-audit aggregator enrollment-token`, `agents list`,
// `agents revoke`. They change the same file the running aggregator reads (auth.registry_file); it
// notices within a second.
import { loadAggregatorConfig } from '../../config/loader.ts';
import { CiAuditError } from '../../core/errors.ts';
import { AgentRegistry } from './registry.ts';

type Print = (line: string) => void;
const stdout: Print = (line) => process.stdout.write(`${line}\n`);

async function openRegistry(configFile: string | undefined): Promise<AgentRegistry> {
  const { config } = await loadAggregatorConfig(configFile);
  return AgentRegistry.open(config.auth.registry_file);
}

/** `1h`, `30m`, `7d`, `45s` -> seconds. */
export function parseTtl(text: string): number {
  const match = /^([1-9][0-9]{0,6})(s|m|h|d)$/.exec(text);
  if (match === null) throw new CiAuditError('CIA_ERR_CLI_USAGE', `--ttl ${JSON.stringify(text)} is not a duration: a number and s, m, h or d, e.g. 1h`);
  return Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as 's' | 'm' | 'h' | 'd'];
}

export async function runCreateEnrollmentToken(options: { configFile?: string; uses: string; ttl: string; print?: Print }): Promise<void> {
  const uses = Number(options.uses);
  if (!Number.isInteger(uses) || uses < 1 || uses > 100_000) throw new CiAuditError('CIA_ERR_CLI_USAGE', `--uses ${JSON.stringify(options.uses)} must be a whole number from 1 to 100000`);
  const registry = await openRegistry(options.configFile);
  const created = await registry.createEnrollmentToken({ uses, ttlSeconds: parseTtl(options.ttl) });
  const print = options.print ?? stdout;
  // The one time the secret is shown: on stdout only, so it can be piped into a secret store.
  print(created.token);
  process.stderr.write(`enrollment token ${created.id}: ${uses} use(s), expires ${created.expiresAt}; it is not shown again\n`);
}

export async function runListAgents(options: { configFile?: string; print?: Print }): Promise<void> {
  const registry = await openRegistry(options.configFile);
  const { agents, enrollmentTokens } = await registry.list();
  const print = options.print ?? stdout;
  print(JSON.stringify({ agents, enrollment_tokens: enrollmentTokens }, null, 2));
}

export async function runRevokeAgent(options: { configFile?: string; agentId: string; print?: Print }): Promise<void> {
  const registry = await openRegistry(options.configFile);
  if (!(await registry.revoke(options.agentId))) {
    throw new CiAuditError('CIA_ERR_CLI_USAGE', `no agent ${options.agentId} is enrolled (see ci-audit aggregator agents list)`);
  }
  (options.print ?? stdout)(`revoked agent ${options.agentId}; its token is refused from now on (running aggregators notice within a second)`);
}
