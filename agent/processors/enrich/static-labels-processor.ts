// Adds the configured static labels to every record as ECS `labels.<key>`.
import type { Attributes } from '@opentelemetry/api';
import type { LogRecordProcessor, ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import { resourceDetectAttr } from '../../../core/wire.ts';

export class StaticLabelsProcessor implements LogRecordProcessor {
  #set: (attributes: Attributes) => void;

  constructor(labels: Record<string, string>) {
    this.#set = compileSetter(Object.entries(labels).map(([k, v]) => [`${resourceDetectAttr.labelPrefix}${k}`, v]));
  }

  onEmit(record: ReadWriteLogRecord): void {
    // Straight onto the attributes, as the parse processor writes: the values are strings from
    // the validated configuration, so the SDK's setAttribute would check nothing.
    this.#set(record.attributes);
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A function that writes the labels, compiled once from the configured keys so that each key is a
 * literal in it. V8 keeps an object with many properties in fast mode only while they are added
 * under literal keys (see writeAuthEvent in auth/fields.ts); a label added under a computed key
 * after an auth line's 25 or so parsed fields turned a fifth of the records into hash tables, and
 * every later pass over them (redaction, the exporter) several times slower. The keys are quoted
 * by JSON.stringify (any string is safe); the values are passed in, never compiled.
 */
function compileSetter(labels: readonly (readonly [string, string])[]): (attributes: Attributes) => void {
  const values = labels.map(([, value]) => value);
  const body = labels.map(([key], i) => `attributes[${JSON.stringify(key)}] = values[${i}];`).join('\n');
  try {
    // eslint-disable-next-line @typescript-eslint/no-implied-eval -- literal keys, see above
    const set = new Function('attributes', 'values', body) as (attributes: Attributes, values: readonly string[]) => void;
    return (attributes) => set(attributes, values);
  } catch {
    // Code generation from strings is disallowed (node --disallow-code-generation-from-strings):
    // the same labels, written under computed keys.
    return (attributes) => {
      for (const [key, value] of labels) attributes[key] = value;
    };
  }
}
