// `ci-audit verify`: options -> keys, anchor, Elasticsearch client -> verifyChains -> report.
// Exit status: 0 no findings, 2 findings (CIA_ERR_VERIFY_FINDINGS), 1 (or 64/78) when verify
// itself could not run.
import { access } from 'node:fs/promises';
import { loadAggregatorConfig } from '../../config/loader.ts';
import { createClient } from '../../aggregator/index/client.ts';
import { CiAuditError } from '../../core/errors.ts';
import { indexPattern, timeRange } from '../search/request.ts';
import { readAnchorFile } from './anchor.ts';
import { keysFromFile, keysFromRegistry, type PublicKeys } from './keys.ts';
import { jsonReport, progressLine, textReport, type Writer } from './report.ts';
import { verifyChains, type VerifySummary } from './verify.ts';

export interface VerifyCommandOptions {
  config?: string;
  namespace?: string;
  agent?: string[];
  since?: string;
  from?: string;
  to?: string;
  anchor?: string;
  keys?: string;
  registry?: string;
  json?: boolean;
  progress?: boolean;
  pageSize?: string;
}

/** Exit status of a verification that ran and found something. */
export const exitFindings = 2;

export interface CommandIo {
  out: Writer;
  err: NodeJS.WriteStream;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

export async function runVerifyCommand(options: VerifyCommandOptions, io: CommandIo = { out: process.stdout, err: process.stderr }): Promise<{ exitCode: number; summary: VerifySummary }> {
  // Every option is checked before connecting.
  const range = timeRange(options, new Date());
  indexPattern(undefined, options.namespace);
  if (options.keys !== undefined && options.registry !== undefined) throw new CiAuditError('CIA_ERR_CLI_USAGE', 'give either --keys or --registry, not both');
  let pageSize = 2000;
  if (options.pageSize !== undefined) {
    if (!/^\d+$/.test(options.pageSize) || Number(options.pageSize) < 1 || Number(options.pageSize) > 10_000) {
      throw new CiAuditError('CIA_ERR_CLI_USAGE', `--page-size ${JSON.stringify(options.pageSize)} must be a whole number from 1 to 10000`);
    }
    pageSize = Number(options.pageSize);
  }
  const agents = options.agent ?? [];

  const { config } = await loadAggregatorConfig(options.config);
  let keys: PublicKeys = new Map();
  if (options.keys !== undefined) keys = await keysFromFile(options.keys);
  else if (options.registry !== undefined) keys = await keysFromRegistry(options.registry);
  // Without either, the aggregator's own registry when it is there (verify runs on the aggregator's host).
  else if (await exists(config.auth.registry_file)) keys = await keysFromRegistry(config.auth.registry_file);
  const wanted = (agent: string): boolean => agents.length === 0 || agents.includes(agent);
  // Without --anchor, the aggregator's own anchor file when its config names one that exists.
  const configured = config.integrity.anchor_file;
  const anchorFile = options.anchor ?? (configured !== undefined && (await exists(configured)) ? configured : undefined);
  const anchor = anchorFile === undefined ? undefined : await readAnchorFile(anchorFile, wanted);

  const report = options.json === true ? jsonReport(io.out) : textReport(io.out);
  const showProgress = options.progress === true || io.err.isTTY;
  const progress = progressLine(io.err, io.err.isTTY);
  const { client, url } = createClient(config.elasticsearch);
  let summary: VerifySummary;
  try {
    summary = await verifyChains(
      client,
      url,
      {
        ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
        agents,
        ...(range.gte === undefined ? {} : { from: range.gte }),
        ...(range.lte === undefined ? {} : { to: range.lte }),
        keys,
        ...(anchor === undefined ? {} : { anchor }),
        pageSize,
        ...(showProgress ? { onProgress: (read: number, estimate: number) => progress.update(read, estimate) } : {}),
      },
      report,
    );
  } finally {
    progress.done();
    await client.close();
  }
  report.end(summary);
  if (summary.findings === 0) return { exitCode: 0, summary };
  io.err.write(`ci-audit: CIA_ERR_VERIFY_FINDINGS: ${summary.findings} finding${summary.findings === 1 ? '' : 's'}: the stored trail differs from what the agents attested (listed on stdout)\n`);
  return { exitCode: exitFindings, summary };
}
