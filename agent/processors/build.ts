// The agent's processors from configuration (`processors.order`): each a LogRecordProcessor that
// the LoggerProvider runs, in this order, before the AuditBatchProcessor.
import type { LogRecordProcessor } from '@opentelemetry/sdk-logs';
import type { ProcessorsConfig } from '../../config/schema.ts';
import { JobContextProcessor, type JobLogConfig } from '../sources/job-hook/job-context-processor.ts';
import { JobRegistry } from '../sources/job-hook/job-registry.ts';
import { StaticLabelsProcessor } from './enrich/static-labels-processor.ts';
import { UserContextProcessor } from './enrich/user-context-processor.ts';
import { LinePieces } from './line-pieces.ts';
import { ParseProcessor } from './parse-processor.ts';
import { createRedactor, customRule } from './redaction/redact.ts';
import { RedactionProcessor } from './redaction-processor.ts';
import { timeZoneResolver } from './syslog/time.ts';

export interface JobContextOptions {
  /** What the job hooks reported (agent/sources/job-hook); without it `job_context` adds nothing. */
  registry: JobRegistry;
  jobLogs: readonly JobLogConfig[];
}

export function buildProcessors(config: ProcessorsConfig, jobs?: JobContextOptions): LogRecordProcessor[] {
  // Shared by this chain's parse and redaction processors only: each chain runs one record at a time.
  const pieces = new LinePieces();
  return config.order.map((name): LogRecordProcessor => {
    switch (name) {
      case 'parse':
        return new ParseProcessor({ zone: timeZoneResolver(config.timezone), pieces });
      case 'job_context':
        return new JobContextProcessor(jobs?.registry ?? new JobRegistry(1), jobs?.jobLogs ?? []);
      case 'user_context':
        return new UserContextProcessor({ passwdPath: config.passwd_file });
      case 'static_labels':
        return new StaticLabelsProcessor(config.labels);
      case 'redact':
        return new RedactionProcessor(createRedactor(config.redaction.rules.map((r) => customRule(r.name, r.pattern, r.group))), pieces);
    }
  });
}
