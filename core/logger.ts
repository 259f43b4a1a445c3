import pino from 'pino';
import type { Logger, LevelWithSilent } from 'pino';
import { loggerRedactPaths } from './secrets.ts';

export type { Logger };

export interface LoggerOptions {
  /** Minimum level. Default: `info`, or `LOG_LEVEL` from the environment. */
  level?: LevelWithSilent;
  /** `json` (one object per line) or `pretty` (human-readable). Default: `pretty` when stderr is a terminal. */
  format?: 'json' | 'pretty';
  /** Name of the component, e.g. `agent` or `aggregator`. */
  name: string;
}

/**
 * Our own operational log. It goes to stderr so that stdout stays free for command output
 * (search results, JSON reports) that users pipe into other tools.
 */
export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? (process.env.LOG_LEVEL as LevelWithSilent | undefined) ?? 'info';
  const format = options.format ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const base = { name: options.name, level, redact: { paths: loggerRedactPaths, censor: '[redacted]' } };
  if (format === 'pretty') {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { destination: 2, colorize: true } } });
  }
  return pino(base, pino.destination({ fd: 2, sync: true }));
}
