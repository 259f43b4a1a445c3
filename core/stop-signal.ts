// The signals a long-running command (`agent run`, `aggregator run`) stops on, and the one it does
// not. SIGINT and SIGTERM start a graceful stop; the handlers go after the first, so a second one
// ends the process at once. SIGHUP is logged and ignored: left to Node.js's default it killed the
// process without a stop (no flush, no chain state saved), and systemd counts a death by SIGHUP
// as a clean exit, which `Restart=on-failure` does not restart. A configuration is read at start
// only, so SIGHUP has nothing to reload: restart the service for that.
import type { Logger } from './logger.ts';

export interface StopSignal {
  /** Resolves with the first SIGINT or SIGTERM. */
  received: Promise<NodeJS.Signals>;
  /** Removes the handlers (a start that failed: nothing to stop). */
  dispose(): void;
}

export function onStopSignal(logger: Logger): StopSignal {
  const { promise: received, resolve } = Promise.withResolvers<NodeJS.Signals>();
  const onHangup = (): void => logger.info({ signal: 'SIGHUP' }, 'SIGHUP ignored: the configuration is read at start only; restart to apply a change');
  const onStop = (signal: NodeJS.Signals): void => {
    dispose();
    resolve(signal);
  };
  const dispose = (): void => {
    process.off('SIGINT', onStop);
    process.off('SIGTERM', onStop);
    process.off('SIGHUP', onHangup);
  };
  process.on('SIGINT', onStop);
  process.on('SIGTERM', onStop);
  process.on('SIGHUP', onHangup);
  return { received, dispose };
}

/**
 * Starts with `start` and resolves, once SIGINT or SIGTERM comes, with the signal and what `start`
 * gave: the stop of `agent run` and `aggregator run`. The handlers are in place before `start`
 * runs (a signal during start-up stops it once started) and removed when `start` fails.
 */
export async function untilStopped<T>(logger: Logger, start: () => Promise<T>): Promise<{ signal: NodeJS.Signals; started: T }> {
  const stop = onStopSignal(logger);
  let started: T;
  try {
    started = await start();
  } catch (err) {
    stop.dispose();
    throw err;
  }
  return { signal: await stop.received, started };
}
