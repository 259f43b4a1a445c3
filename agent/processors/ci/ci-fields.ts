// ECS + OpenTelemetry CI/CD fields of a CI event, shared by the runner parsers.
import type { AttributeValue } from '@opentelemetry/api';
import { cicdAttr, ecsAttr } from '../../../core/wire.ts';
import type { ParsedTime } from '../syslog/time.ts';

export type Fields = Record<string, AttributeValue>;

export interface CiParse {
  parser: string;
  fields: Fields;
  /** The event's own time, when the line carries one. */
  time?: ParsedTime;
  /** The message without the runner's line header. */
  message?: string;
}

export type CiAction = 'ci_job_assigned' | 'ci_job_started' | 'ci_job_finished' | 'ci_runner_registered' | 'ci_runner_online' | 'ci_checkout';

/** Semantic-conventions result (`cicd.pipeline.result` values) from the runners' own words. */
export function ciResult(word: string): string {
  const w = word.toLowerCase();
  if (/^(succeeded|success|passed|ok)$/.test(w)) return 'success';
  if (/^(failed|failure|unstable)$/.test(w)) return 'failure';
  if (/^(canceled|cancelled|aborted|canceling)$/.test(w)) return 'cancellation';
  if (/^(skipped|not_built)$/.test(w)) return 'skip';
  if (/^(timed_out|timeout)$/.test(w)) return 'timeout';
  return 'error';
}

export function ciEvent(action: CiAction, result?: string): Fields {
  const started = action === 'ci_job_started' || action === 'ci_job_assigned';
  const fields: Fields = {
    [ecsAttr.eventKind]: 'event',
    [ecsAttr.eventAction]: action,
    [ecsAttr.eventCategory]: action.startsWith('ci_runner') ? ['configuration'] : ['process'],
    [ecsAttr.eventType]: action.startsWith('ci_runner') ? ['change'] : [started ? 'start' : action === 'ci_job_finished' ? 'end' : 'info'],
  };
  if (result !== undefined) {
    fields[cicdAttr.taskRunResult] = result;
    fields[ecsAttr.eventOutcome] = result === 'success' ? 'success' : result === 'skip' ? 'unknown' : 'failure';
  }
  return fields;
}
