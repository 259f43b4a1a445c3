// The real aggregator and agent processes of the end-to-end tests, started the way users start
// them (`ci-audit aggregator run`, `ci-audit agent run`) and stopped when the test ends.
import type { TestContext } from 'node:test';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CliProcess } from '../../scripts/lib/cli-process.ts';

/** An aggregator on a free loopback port writing into `namespace`; resolves once it listens. */
export async function startAggregatorProcess(
  t: TestContext,
  dir: string,
  namespace: string,
  esUrl: string,
): Promise<{ aggregator: CliProcess; url: string }> {
  const config = join(dir, 'aggregator.yaml');
  await writeFile(config, `listen:\n  host: 127.0.0.1\n  port: 0\nelasticsearch:\n  namespace: ${namespace}\nlog:\n  format: json\n`);
  const aggregator = new CliProcess(['aggregator', 'run', '--config', config], { ES_URL: esUrl });
  t.after(() => aggregator.stop());
  const url = String((await aggregator.waitForLog((l) => l.msg === 'receiver listening')).url);
  return { aggregator, url };
}

/**
 * An agent whose config is `head` (agent, sources, processors, ... as YAML lines) followed by an
 * output to `url` with small, quick batches and JSON logs; resolves once it has started.
 */
export async function startAgentProcess(t: TestContext, dir: string, head: string[], url: string): Promise<CliProcess> {
  const config = join(dir, 'agent.yaml');
  const tail = ['output:', `  url: ${url}`, '  batch:', '    max_records: 50', '    max_delay_ms: 100', 'log:', '  format: json', ''];
  await writeFile(config, [...head, ...tail].join('\n'));
  const agent = new CliProcess(['agent', 'run', '--config', config]);
  t.after(() => agent.stop());
  await agent.waitForLog((l) => l.msg === 'agent started');
  return agent;
}
