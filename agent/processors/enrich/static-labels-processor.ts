// Adds the configured static labels to every record as ECS `labels.<key>`.
import type { LogRecordProcessor, ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import { resourceDetectAttr } from '../../../core/wire.ts';

export class StaticLabelsProcessor implements LogRecordProcessor {
  #labels: [string, string][];

  constructor(labels: Record<string, string>) {
    this.#labels = Object.entries(labels).map(([k, v]) => [`${resourceDetectAttr.labelPrefix}${k}`, v]);
  }

  onEmit(record: ReadWriteLogRecord): void {
    for (const [key, value] of this.#labels) record.setAttribute(key, value);
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
