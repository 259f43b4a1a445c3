// The exporter of the in-process pipeline benchmarks: it acknowledges every batch (at once, or on
// the next turn of the event loop as a network answer would come) and counts the records.
import { ExportResultCode } from '@opentelemetry/core';
import type { LogRecordExporter } from '@opentelemetry/sdk-logs';

export function ackingExporter(o: { deferred: boolean }): { exporter: LogRecordExporter; exported: () => number } {
  let exported = 0;
  const exporter: LogRecordExporter = {
    export: (records, done) => {
      exported += records.length;
      if (o.deferred) setImmediate(() => done({ code: ExportResultCode.SUCCESS }));
      else done({ code: ExportResultCode.SUCCESS });
    },
    shutdown: () => Promise.resolve(),
    forceFlush: () => Promise.resolve(),
  };
  return { exporter, exported: () => exported };
}
