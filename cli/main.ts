// The `ci-audit` command line: one entry point with a subcommand per role.
import { Command, CommanderError } from 'commander';
import { hasErrorCode } from '../core/errors.ts';
import { version } from '../core/version.ts';

// Exit codes after sysexits.h, so service managers and scripts can tell a bad config from a crash.
const EXIT_USAGE = 64;
const EXIT_CONFIG = 78;
const EXIT_FAILURE = 1;

export function buildProgram(): Command {
  const program = new Command('ci-audit')
    .description('Tamper-evident audit trail for CI/CD runners: agent, aggregator and admin commands.')
    .version(version, '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  const agent = program.command('agent').description('the agent that runs on a build runner');
  agent
    .command('run')
    .description('follow the configured sources and ship their records to the aggregator')
    .requiredOption('-c, --config <file>', 'agent configuration file (YAML)')
    .action(async (opts: { config: string }) => {
      const { runAgent } = await import('../agent/run.ts');
      await runAgent({ configFile: opts.config });
    });

  const aggregator = program.command('aggregator').description('the central service that indexes into Elasticsearch');
  aggregator
    .command('run')
    .description('receive OTLP/HTTP logs from agents and index them into Elasticsearch')
    .option('-c, --config <file>', 'aggregator configuration file (YAML); without it, defaults and ES_URL apply')
    .action(async (opts: { config?: string }) => {
      const { runAggregator } = await import('../aggregator/run.ts');
      await runAggregator(opts.config === undefined ? {} : { configFile: opts.config });
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version end here too, with exit code 0; commander already printed them.
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (hasErrorCode(err)) {
      process.stderr.write(`ci-audit: ${err.code}: ${err.message}\n`);
      return err.code.startsWith('CIA_ERR_CONFIG_') ? EXIT_CONFIG : EXIT_FAILURE;
    }
    process.stderr.write(`ci-audit: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT_FAILURE;
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv);
}
