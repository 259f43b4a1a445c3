// The admin commands behind `ci-audit setup`, `ci-audit retention show` and `ci-audit retention apply`:
// load the aggregator configuration, connect, run, print one line per thing touched.
import { loadAggregatorConfig } from '../../config/loader.ts';
import type { AggregatorConfig } from '../../config/schema.ts';
import { createClient } from '../index/client.ts';
import { rolloverStale } from '../index/rollover.ts';
import { applyRetention, showRetention } from './apply.ts';

export interface CommandOptions {
  configFile?: string;
  force?: boolean;
  /** `setup --rollover`: roll over the data streams whose write index predates the templates. */
  rollover?: boolean;
  /** Where to print; default stdout. */
  out?: (line: string) => void;
}

/** `ci-audit setup` and `ci-audit retention apply`: templates for every dataset with the configured retention. */
export async function runSetup(options: CommandOptions, loaded?: AggregatorConfig): Promise<void> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const config = loaded ?? (await loadAggregatorConfig(options.configFile)).config;
  const { client, url } = createClient(config.elasticsearch);
  try {
    const report = await applyRetention({ client, url, config, force: options.force === true });
    out(`retention mechanism: ${report.mechanism}`);
    for (const t of report.templates) out(`${t.action.padEnd(9)} ${t.kind} ${t.name} (version ${t.version})`);
    for (const c of report.checks) {
      const from = c.from === undefined ? '' : `${c.from.max_age} -> `;
      out(`retention ${c.dataset}: ${from}${c.to.max_age}${c.to.compliance ? ' (compliance)' : ''} [${c.change}]`);
    }
    for (const r of report.requests) out(`sent      ${r.method} ${r.path}`);
    if (options.rollover === true) {
      for (const r of await rolloverStale(client, url)) {
        if (r.to === undefined) out(`unchanged data_stream ${r.dataStream} (write index ${r.from} has the current mappings)`);
        else out(`rolled    data_stream ${r.dataStream}: ${r.from} -> ${r.to} (${r.stale.length} fields newer than its write index, e.g. ${r.stale.slice(0, 3).join(', ')})`);
      }
    } else if (report.templates.some((t) => t.action === 'updated')) {
      // Existing data streams keep their write index's mappings until it rolls over.
      out('note      templates changed: existing data streams get them at their next rollover; `ci-audit setup --rollover` rolls them over now');
    }
  } finally {
    await client.close();
  }
}

/** `ci-audit retention show`. */
export async function runRetentionShow(options: CommandOptions): Promise<void> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const { config } = await loadAggregatorConfig(options.configFile);
  const { client, url } = createClient(config.elasticsearch);
  try {
    const shown = await showRetention(client, url, config);
    const offered = (a: boolean | 'unknown') => (a === 'unknown' ? 'unknown' : a ? 'yes' : 'no');
    out(`cluster offers: data stream lifecycle ${offered(shown.capabilities.lifecycle)}, ILM ${offered(shown.capabilities.ilm)}; mechanism: ${shown.mechanism}`);
    out(['data stream', 'max_age', 'compliance', 'mechanism', 'source', 'backing'].join('\t'));
    for (const s of shown.streams) {
      out([s.dataStream, s.maxAge, s.compliance ? 'yes' : 'no', s.mechanism, s.source === 'config' ? 'config (not applied)' : 'applied', String(s.backingIndices)].join('\t'));
    }
  } finally {
    await client.close();
  }
}
