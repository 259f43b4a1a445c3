// Turns a line of a file into the record a source emits: body, wire attributes and a
// deterministic id, so that a line sent again after a restart carries the id it had the first time
// (the aggregator indexes with `create` on that id: a resend is not a duplicate).
import type { AnyValue } from '@opentelemetry/api';
import { recordAttr } from '../../../core/wire.ts';
import type { AckFn, RangeAcker, SourceRecord } from '../source.ts';
import type { Line } from './line-splitter.ts';

/**
 * `<file key>:<offset>`; the file key (identity.ts `fileKeyOf`) names agent, inode, generation and
 * contents. A line emitted early by the partial-line timeout gets `p<end>` appended: if the agent
 * stops before it is acknowledged, the whole line is read again after the restart and must not be
 * taken for a duplicate of its head.
 */
export function fileRecordId(fileKey: string, line: Pick<Line, 'offset' | 'end' | 'partial'>): string {
  // toFixed(0) writes an integer offset exactly as String() does. String() (and a template) would
  // put each new number's text in V8's number-to-string cache, which is allocated in the old
  // generation: at one new offset per line that was tens of MB of old garbage per million lines,
  // collected only by full GCs, and most of the tail's memory growth.
  const id = `${fileKey}:${line.offset.toFixed(0)}`;
  return line.partial === true ? `${id}p${line.end.toFixed(0)}` : id;
}

export interface FileRecordContext {
  dataset: string;
  path: string;
}

/**
 * A line's record, acknowledged as number `ackNumber` of `acker` (its file's offset tracker): the
 * pipeline acknowledges a batch's lines in one call, and `ack`, for whoever calls it, is made when asked for.
 */
class FileLineRecord implements SourceRecord {
  readonly body: AnyValue;
  readonly attributes: SourceRecord['attributes'];
  readonly observedAt: number;
  readonly acker: RangeAcker;
  readonly ackNumber: number;

  constructor(body: string, attributes: SourceRecord['attributes'], observedAt: number, acker: RangeAcker, ackNumber: number) {
    this.body = body;
    this.attributes = attributes;
    this.observedAt = observedAt;
    this.acker = acker;
    this.ackNumber = ackNumber;
  }

  get ack(): AckFn {
    const { acker, ackNumber } = this;
    return () => acker.ackRange(ackNumber, ackNumber);
  }
}

/**
 * `lines` is set on a multiline record (multiline.ts): how many lines it joins. Acknowledged as
 * number `ackNumber` of `acker` (OffsetTracker.trackLine).
 */
export function fileRecord(ctx: FileRecordContext, fileKey: string, line: Line & { lines?: number }, observedAt: number, acker: RangeAcker, ackNumber: number): SourceRecord {
  const attributes: SourceRecord['attributes'] = {
    [recordAttr.dataset]: ctx.dataset,
    [recordAttr.recordId]: fileRecordId(fileKey, line),
    [recordAttr.logFilePath]: ctx.path,
    [recordAttr.logOffset]: line.offset,
  };
  if (line.invalidUtf8) attributes[recordAttr.invalidUtf8] = true;
  if (line.truncatedFrom !== undefined) attributes[recordAttr.truncatedFrom] = line.truncatedFrom;
  if (line.split === true) attributes[recordAttr.split] = true;
  if (line.partial === true) attributes[recordAttr.partial] = true;
  if (line.continued === true) attributes[recordAttr.continued] = true;
  if (line.nulBytes === true) attributes[recordAttr.nulBytes] = true;
  if (line.lines !== undefined && line.lines > 1) attributes[recordAttr.lineCount] = line.lines;
  return new FileLineRecord(line.text, attributes, observedAt, acker, ackNumber);
}

/**
 * The integrity record for a checkpointed file that was gone at start-up (rotated away and pruned,
 * or deleted, while the agent was stopped): lines written after the checkpoint, if there were any,
 * are lost. The agent cannot tell whether there were (the file is gone), so it says "may".
 */
export function fileGapRecord(
  ctx: FileRecordContext & { sourceId: string },
  fileKey: string,
  offset: number,
  observedAt: number,
  ack: AckFn,
): SourceRecord {
  return {
    body:
      `file gap: ${ctx.path} (file source ${ctx.sourceId}) disappeared while the agent was stopped; ` +
      `lines written to it after byte ${offset} were not read and may be lost`,
    attributes: {
      [recordAttr.dataset]: ctx.dataset,
      [recordAttr.recordId]: `${fileKey}:gap:${offset}`,
      [recordAttr.logFilePath]: ctx.path,
      [recordAttr.logOffset]: offset,
      [recordAttr.gap]: true,
    },
    observedAt,
    ack,
  };
}
