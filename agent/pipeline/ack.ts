// How a record's ack travels from the sink to the processor. Records go through the SDK's
// `Logger.emit`, which builds the LogRecord itself, so the ack cannot be attached to the record
// object beforehand. It rides in the emit's OpenTelemetry Context instead: the SDK hands that
// Context to `LogRecordProcessor.onEmit` unchanged and never exports it, so there is no attribute
// to strip and nothing of it reaches the wire. The Pipeline's own sink no longer uses it (a
// Context per record cost a few percent of the hand-off): it hands the record being emitted to the
// batch processor directly (`currentAck`). This stays for records emitted through the SDK by other code.
import { createContextKey, ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import type { AckFn } from '../sources/source.ts';

const ackKey = createContextKey('ci-audit record ack');

/** A Context carrying `ack`, to pass as `context` to `Logger.emit`. */
export function contextWithAck(ack: AckFn, parent: Context = ROOT_CONTEXT): Context {
  return parent.setValue(ackKey, ack);
}

/** The ack carried by `context`, if any (records emitted by other code have none). */
export function ackFromContext(context: Context | undefined): AckFn | undefined {
  const value = context?.getValue(ackKey);
  return typeof value === 'function' ? (value as AckFn) : undefined;
}
