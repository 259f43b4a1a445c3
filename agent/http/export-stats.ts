// Counts what the aggregator acknowledged, for /status and /metrics: a pass-through around the
// exporter that looks at each export's result and changes nothing of it.
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';

export interface ExportStatsSnapshot {
  lastAckAt: Date | undefined;
  ackedRecords: number;
  failedExports: number;
  /** Message of the last failed export (no secrets: the exporter's errors carry redacted URLs). */
  lastError: string | undefined;
}

export class ExportStats {
  #lastAckAt: Date | undefined;
  #ackedRecords = 0;
  #failedExports = 0;
  #lastError: string | undefined;

  snapshot(): ExportStatsSnapshot {
    return { lastAckAt: this.#lastAckAt, ackedRecords: this.#ackedRecords, failedExports: this.#failedExports, lastError: this.#lastError };
  }

  /** The same exporter, counted. */
  wrap(exporter: LogRecordExporter): LogRecordExporter {
    return {
      export: (logs: ReadableLogRecord[], resultCallback: (result: ExportResult) => void): void => {
        exporter.export(logs, (result) => {
          if (result.code === ExportResultCode.SUCCESS) {
            this.#lastAckAt = new Date();
            this.#ackedRecords += logs.length;
          } else {
            this.#failedExports += 1;
            this.#lastError = result.error?.message;
          }
          resultCallback(result);
        });
      },
      shutdown: () => exporter.shutdown(),
      forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
    };
  }
}
