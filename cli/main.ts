// The `ci-audit` command line: one entry point with a subcommand per role.
import { Command, CommanderError } from 'commander';
import { hasErrorCode } from '../core/errors.ts';
import type { SearchCommandOptions as SearchOpts } from '../admin/search/commands.ts';
import type { VerifyCommandOptions as VerifyOpts } from '../admin/verify/command.ts';
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

  agent
    .command('enroll')
    .description('register this agent with the aggregator and store its credential in <agent.state_dir>/credentials.json (mode 0600)')
    .requiredOption('-c, --config <file>', 'agent configuration file (YAML): agent.id, agent.state_dir, output.url, output.tls')
    .option('--url <url>', 'base URL of the aggregator (default: output.url)')
    .option('--enrollment-token <token>', 'enrollment token from `ci-audit aggregator enrollment-token` (default: CI_AUDIT_ENROLLMENT_TOKEN, which keeps it out of ps)')
    .option('--ca-file <file>', 'PEM CA of the aggregator\'s certificate (default: output.tls.ca_file)')
    .option('--public-key-file <file>', 'the agent\'s Ed25519 PUBLIC signing key to register, PEM (SPKI); a private key is refused (default: the public half of integrity.signing_key, created if missing)')
    .action(async (opts: { config: string; url?: string; enrollmentToken?: string; caFile?: string; publicKeyFile?: string }) => {
      const { enroll } = await import('../agent/enroll/enroll.ts');
      const { CiAuditError } = await import('../core/errors.ts');
      const token = opts.enrollmentToken ?? process.env.CI_AUDIT_ENROLLMENT_TOKEN;
      if (token === undefined || token === '') throw new CiAuditError('CIA_ERR_CLI_USAGE', 'give --enrollment-token or set CI_AUDIT_ENROLLMENT_TOKEN');
      const result = await enroll({ configFile: opts.config, url: opts.url, enrollmentToken: token, caFile: opts.caFile, publicKeyFile: opts.publicKeyFile });
      process.stdout.write(`enrolled agent ${result.agentId} at ${result.url}; credential stored in ${result.credentialsFile}\n`);
    });

  program
    .command('status')
    .description('what the agent reads and sends: sources, offsets, lag, buffer use, last acknowledgement, chain head')
    .requiredOption('-c, --config <file>', 'agent configuration file (YAML)')
    .option('--json', 'print the status as JSON')
    .option('--url <url>', 'base URL of the running agent\'s endpoint (default: from http.listen)')
    .option('--require-running', 'fail (exit 1) when the running agent cannot be reached at http.listen')
    .action(async (opts: { config: string; json?: boolean; url?: string; requireRunning?: boolean }) => {
      const { runStatus } = await import('./status.ts');
      await runStatus({ configFile: opts.config, json: opts.json === true, requireRunning: opts.requireRunning === true, ...(opts.url === undefined ? {} : { url: opts.url }) });
    });

  agent
    .command('keygen')
    .description('create the agent\'s Ed25519 signing key (integrity.signing_key, default <agent.state_dir>/signing-key.pem, mode 0600) unless it exists; prints its id and public key')
    .requiredOption('-c, --config <file>', 'agent configuration file (YAML)')
    .action(async (opts: { config: string }) => {
      const { runKeygen } = await import('../agent/chain/key-commands.ts');
      process.stdout.write(await runKeygen(opts.config));
    });

  agent
    .command('rotate-key')
    .description('create the next signing key; the agent announces it in a key_rotation statement signed with the current key, then signs with it')
    .requiredOption('-c, --config <file>', 'agent configuration file (YAML)')
    .action(async (opts: { config: string }) => {
      const { runRotateKey } = await import('../agent/chain/key-commands.ts');
      process.stdout.write(await runRotateKey(opts.config));
    });

  // Batches the aggregator rejected as malformed, set aside by the agent (docs/operations.md).
  const rejected = agent.command('rejected').description('batches the aggregator rejected as malformed, set aside in <agent.state_dir>/rejected');
  rejected
    .command('list')
    .description('list the set-aside batches, oldest first: id, time, HTTP status, records, chain seqs, the aggregator\'s message')
    .requiredOption('-c, --config <file>', 'agent configuration file (YAML)')
    .option('--json', 'print the list as JSON')
    .action(async (opts: { config: string; json?: boolean }) => {
      const { runRejectedList } = await import('../agent/rejected/commands.ts');
      process.stdout.write(await runRejectedList(opts.config, opts.json === true));
    });
  rejected
    .command('resend <id>')
    .description('send a set-aside batch to output.url again, unchanged, and remove it once the aggregator accepts it')
    .requiredOption('-c, --config <file>', 'agent configuration file (YAML)')
    .option('--keep', 'keep the set-aside copy after the aggregator accepted it')
    .action(async (id: string, opts: { config: string; keep?: boolean }) => {
      const { runRejectedResend } = await import('../agent/rejected/commands.ts');
      process.stdout.write(await runRejectedResend(opts.config, id, { keep: opts.keep === true }));
    });

  // Run by the CI runner around each job (docs/runners.md); exits 0 with a warning when the agent
  // cannot be handed the context, unless --strict.
  const hook = program.command('hook').description('job hooks: hand a CI job\'s context to the local agent');
  for (const phase of ['started', 'completed'] as const) {
    hook
      .command(`job-${phase}`)
      .description(`call from the runner's job-${phase} hook (GitHub ACTIONS_RUNNER_HOOK_JOB_${phase.toUpperCase()}, GitLab ${phase === 'started' ? 'pre' : 'post'}_build_script, Buildkite, Jenkins)`)
      .option('--dir <folder>', 'the agent\'s job_hooks.spool_dir (default: CI_AUDIT_HOOK_DIR or /var/lib/ci-audit/job-hooks)')
      .option('--strict', 'fail (exit 1) when the context cannot be handed over')
      .option('--result <result>', 'the job\'s result on completion (success, failed, canceled or an exit status)')
      .action(async (opts: { dir?: string; strict?: boolean; result?: string }) => {
        const { runHook } = await import('../agent/sources/job-hook/hook-command.ts');
        process.exitCode = await runHook({
          phase,
          strict: opts.strict === true,
          ...(opts.dir === undefined ? {} : { dir: opts.dir }),
          ...(opts.result === undefined ? {} : { result: opts.result }),
        });
      });
  }

  const aggregator = program.command('aggregator').description('the central service that indexes into Elasticsearch');
  aggregator
    .command('run')
    .description('receive OTLP/HTTP logs from agents and index them into Elasticsearch')
    .option('-c, --config <file>', 'aggregator configuration file (YAML); without it, defaults and ES_URL apply')
    .action(async (opts: { config?: string }) => {
      const { runAggregator } = await import('../aggregator/run.ts');
      await runAggregator(opts.config === undefined ? {} : { configFile: opts.config });
    });

  aggregator
    .command('enrollment-token')
    .description('create an enrollment token for `ci-audit agent enroll` (printed once on stdout, stored hashed)')
    .option('-c, --config <file>', 'aggregator configuration file (YAML): auth.registry_file')
    .option('--uses <n>', 'how many agents may enroll with it', '1')
    .option('--ttl <duration>', 'how long it is valid: s, m, h or d, e.g. 1h', '1h')
    .action(async (opts: { config?: string; uses: string; ttl: string }) => {
      const { runCreateEnrollmentToken } = await import('../aggregator/auth/commands.ts');
      await runCreateEnrollmentToken({ ...(opts.config === undefined ? {} : { configFile: opts.config }), uses: opts.uses, ttl: opts.ttl });
    });
  const agents = aggregator.command('agents').description('the enrolled agents');
  agents
    .command('list')
    .description('list enrolled agents and enrollment tokens (no secrets, no hashes)')
    .option('-c, --config <file>', 'aggregator configuration file (YAML)')
    .action(async (opts: { config?: string }) => {
      const { runListAgents } = await import('../aggregator/auth/commands.ts');
      await runListAgents(opts.config === undefined ? {} : { configFile: opts.config });
    });
  agents
    .command('revoke <agent-id>')
    .description('revoke an agent\'s credential: its token (and client certificate) are refused from now on')
    .option('-c, --config <file>', 'aggregator configuration file (YAML)')
    .action(async (agentId: string, opts: { config?: string }) => {
      const { runRevokeAgent } = await import('../aggregator/auth/commands.ts');
      await runRevokeAgent({ ...(opts.config === undefined ? {} : { configFile: opts.config }), agentId });
    });

  program
    .command('setup')
    .description('install the index templates of every dataset with the configured retention (idempotent)')
    .option('-c, --config <file>', 'aggregator configuration file (YAML); without it, defaults and ES_URL apply')
    .option('--force', 'allow shortening the retention of a compliance-bound dataset')
    .option('--rollover', 'roll over the data streams whose write index predates the templates, so new mappings apply now')
    .option('--kibana <url>', 'also import the saved objects of deploy/kibana (data views, saved searches, dashboard) into this Kibana')
    .option('--kibana-only', 'with --kibana: import into Kibana only, leave the index templates alone')
    .option('--kibana-overwrite', 'replace saved objects that already exist (default: leave them unchanged)')
    .option('--kibana-space <id>', 'Kibana space to import into (default: the default space)')
    .option('--kibana-api-key <key>', 'Kibana API key (default: KIBANA_API_KEY, which keeps it out of ps)')
    .option('--kibana-user <name>', 'Kibana user for basic auth, password from KIBANA_PASSWORD (default: KIBANA_USERNAME)')
    .action(async (opts: { config?: string; force?: boolean; rollover?: boolean; kibana?: string; kibanaOnly?: boolean; kibanaOverwrite?: boolean; kibanaSpace?: string; kibanaApiKey?: string; kibanaUser?: string }) => {
      if (opts.kibanaOnly === true && opts.kibana === undefined) {
        const { CiAuditError } = await import('../core/errors.ts');
        throw new CiAuditError('CIA_ERR_CLI_USAGE', '--kibana-only needs --kibana <url>');
      }
      if (opts.kibanaOnly !== true) {
        const { runSetup } = await import('../aggregator/retention/commands.ts');
        await runSetup({ ...(opts.config === undefined ? {} : { configFile: opts.config }), force: opts.force === true, rollover: opts.rollover === true });
      }
      if (opts.kibana !== undefined) {
        const { runKibanaSetup } = await import('../admin/kibana/command.ts');
        await runKibanaSetup({ ...opts, kibana: opts.kibana });
      }
    });

  // Searching (docs/search.md): one command for any query, shortcuts for the common audit questions.
  const searchOptions = (cmd: Command): Command =>
    cmd
      .option('-c, --config <file>', 'aggregator configuration file (YAML) for the elasticsearch section; without it, defaults and ES_URL / ES_API_KEY apply')
      .option('--since <duration>', 'only events of the last s/m/h/d/w, e.g. 24h')
      .option('--from <time>', 'only events at or after this RFC 3339 time or date (or a duration back from now)')
      .option('--to <time>', 'only events at or before this time')
      .option('--dataset <name>', 'only this dataset: auth, ci, generic, integrity, deadletter, ...')
      .option('--namespace <name>', 'only this namespace (default: all)')
      .option('-o, --output <format>', 'table, jsonl or csv (default: table on a terminal, jsonl otherwise)')
      .option('--columns <list>', 'fields to show in table and csv output, comma-separated')
      .option('--size <n>', 'most events to print, newest first (default 100)')
      .option('--all', 'print every matching event (paged with search_after)')
      .option('--page-size <n>', 'events fetched per request (default 500)')
      .option('-f, --follow', 'keep polling for new events until interrupted (Ctrl-C)')
      .option('--interval <duration>', 'with --follow: time between polls (default 2s)')
      .option('--max-polls <n>', 'with --follow: stop after this many polls');
  searchOptions(
    program
      .command('search [query]')
      .description('search the audit trail: Lucene query_string syntax on message and ECS fields, e.g. \'user.name:alice AND event.outcome:failure\'')
      .option('--saved <id>', 'run a saved audit query: failed-ssh-logins, successful-logins, sudo-commands, account-changes, pipeline-runs, failed-jobs, integrity-alerts, unverified-sources'),
  ).action(async (query: string | undefined, opts: SearchOpts & { saved?: string }) => {
    const { runSearchCommand, searchSpec } = await import('../admin/search/commands.ts');
    await runSearchCommand(searchSpec(query, opts.saved), opts);
  });
  searchOptions(program.command('who').description('everything a user did or had done to them (user.name, user.effective.name, related.user)').requiredOption('--user <name>', 'the user')).action(
    async (opts: SearchOpts & { user: string }) => {
      const { runSearchCommand, whoSpec } = await import('../admin/search/commands.ts');
      await runSearchCommand(whoSpec(opts.user), opts);
    },
  );
  searchOptions(program.command('logins').description('successful SSH and su logins, or with --failed the failed SSH logins').option('--failed', 'failed logins only').option('--user <name>', 'only this user')).action(
    async (opts: SearchOpts & { failed?: boolean; user?: string }) => {
      const { runSearchCommand, loginsSpec } = await import('../admin/search/commands.ts');
      await runSearchCommand(loginsSpec(opts.failed === true, opts.user), opts);
    },
  );
  searchOptions(program.command('runs').description('pipeline runs with the person who triggered them').option('--repo <org/app>', 'only this repository (org/app or its URL)').option('--user <name>', 'only runs this user triggered')).action(
    async (opts: SearchOpts & { repo?: string; user?: string }) => {
      const { runSearchCommand, runsSpec } = await import('../admin/search/commands.ts');
      await runSearchCommand(runsSpec(opts.repo, opts.user), opts);
    },
  );

  // Verifying the trail (docs/integrity.md): hash chains, signed checkpoints, the anchor file.
  program
    .command('verify')
    .description('check every agent\'s hash chain in Elasticsearch: missing, altered, inserted or reordered records, checkpoints and anchors; exit 2 on any finding')
    .option('-c, --config <file>', 'aggregator configuration file (YAML) for the elasticsearch section and auth.registry_file; without it, defaults and ES_URL / ES_API_KEY apply')
    .option('--namespace <name>', 'only this namespace (default: all)')
    .option('--agent <id>', 'only this agent (repeatable)', (value: string, previous: string[] = []) => [...previous, value])
    .option('--since <duration>', 'only the chains\' records of the last s/m/h/d/w (their sequence numbers are checked from the first to the last in range)')
    .option('--from <time>', 'only records at or after this RFC 3339 time or date (or a duration back from now)')
    .option('--to <time>', 'only records at or before this time')
    .option('--anchor <file>', 'the aggregator\'s checkpoint anchor file: each anchored checkpoint must match the chain (default: integrity.anchor_file of --config, when it exists)')
    .option('--keys <file>', 'agents\' public keys as JSON {"<agent id>": "<PEM>" or a list} (default: the registry)')
    .option('--registry <file>', 'the aggregator\'s agent registry file for the public keys (default: auth.registry_file of --config, when it exists)')
    .option('--json', 'print one JSON document: findings, notices, summary')
    .option('--progress', 'show progress on stderr even when it is not a terminal')
    .option('--page-size <n>', 'records fetched per request (default 2000)')
    .action(async (opts: VerifyOpts) => {
      const { runVerifyCommand } = await import('../admin/verify/command.ts');
      const { exitCode } = await runVerifyCommand(opts);
      process.exitCode = exitCode;
    });

  const retention = program.command('retention').description('retention of the data streams');
  retention
    .command('show')
    .description('list the effective retention of every data stream and the mechanism that enforces it')
    .option('-c, --config <file>', 'aggregator configuration file (YAML)')
    .action(async (opts: { config?: string }) => {
      const { runRetentionShow } = await import('../aggregator/retention/commands.ts');
      await runRetentionShow(opts.config === undefined ? {} : { configFile: opts.config });
    });
  retention
    .command('apply')
    .description('apply the configured retention (idempotent); shortening a compliance-bound dataset needs --force')
    .option('-c, --config <file>', 'aggregator configuration file (YAML)')
    .option('--force', 'allow shortening the retention of a compliance-bound dataset')
    .action(async (opts: { config?: string; force?: boolean }) => {
      const { runSetup } = await import('../aggregator/retention/commands.ts');
      await runSetup({ ...(opts.config === undefined ? {} : { configFile: opts.config }), force: opts.force === true });
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    // A command may set its own exit code (the job hook in strict mode).
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version end here too, with exit code 0; commander already printed them.
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (hasErrorCode(err)) {
      process.stderr.write(`ci-audit: ${err.code}: ${err.message}\n`);
      if (err.code === 'CIA_ERR_CLI_USAGE') return EXIT_USAGE;
      return err.code.startsWith('CIA_ERR_CONFIG_') ? EXIT_CONFIG : EXIT_FAILURE;
    }
    process.stderr.write(`ci-audit: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT_FAILURE;
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv);
}
