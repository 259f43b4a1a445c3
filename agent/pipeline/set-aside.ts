// What the agent does with a batch the aggregator rejected as malformed (issue 5): retrying it
// would fail again, and holding it would stop its sources (and the disk buffer) for good. So the
// batch is written to `<state_dir>/rejected/` (agent/rejected/rejected-store.ts), and a record that
// declares its chain sequence numbers as a gap (reason `rejected`, naming the file) is emitted like
// the agent's other records. The rejected records are acknowledged only once that declaration is
// committed (acknowledged by the aggregator, or durable in the disk buffer): until then a stop
// leaves them unacknowledged, their lines are read again after the restart, and the chain resumes
// with an unclean-stop gap; so no sequence number is ever missing without a declaration.
import type { Attributes } from '@opentelemetry/api';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { Logger } from '../../core/logger.ts';
import { chainAttr, chainGapAttr, recordAttr, type ChainGapReason } from '../../core/wire.ts';
import type { RejectedStore } from '../rejected/rejected-store.ts';
import { requestBody } from '../sinks/otlp-http-exporter.ts';
import type { AckFn } from '../sources/source.ts';

/** Dataset of the agent's own notices (as the chain's resume record and the disk buffer's gaps). */
const noticeDataset = 'agent';
/** Record ids of the declarations start with this; a rejected batch of nothing else declares no more. */
const noticeIdPrefix = 'rejected:';
const reason: ChainGapReason = 'rejected';

/**
 * Called by the AuditBatchProcessor for a batch the aggregator rejected for good. Resolves once the
 * batch is durably set aside and its declaration handed on; `ack` acknowledges the batch's records
 * and is called when the declaration is committed. Rejects (CIA_ERR_REJECTED_IO) when the batch
 * could not be written: nothing was declared, and the processor tries again.
 */
export type RejectedBatchHandler = (records: readonly ReadableLogRecord[], error: Error | undefined, ack: AckFn) => Promise<void>;

export interface SetAsideOptions {
  store: RejectedStore;
  logger: Logger;
  /** Emits one of the agent's own records, chained, with an ack run once it is committed (Pipeline.emitAgentRecord). */
  emit: (record: { body: string; attributes: Attributes }, ack: AckFn) => void;
}

export function setAsideRejected(options: SetAsideOptions): RejectedBatchHandler {
  const { store, logger, emit } = options;
  return async (records, error, ack) => {
    const details = (error as { details?: { status?: unknown } } | undefined)?.details;
    const status = typeof details?.status === 'number' ? details.status : 0;
    const message = error?.message ?? 'rejected';
    const seqs = records.map((r) => r.attributes[chainAttr.seq]).filter((s): s is number => typeof s === 'number');
    const seqRanges = runs(seqs);
    const entry = await store.setAside(requestBody(records), {
      status,
      message,
      records: records.length,
      seqRanges,
      firstRecordId: recordIdOf(records[0]),
      lastRecordId: recordIdOf(records.at(-1)),
    });
    const file = `${store.dir}/${entry.data_file}`;
    logger.warn(
      { code: 'CIA_ERR_SHIP_REJECTED', records: records.length, status, seqRanges, id: entry.id, file, err: message },
      'aggregator rejected a batch as malformed; set it aside (ci-audit agent rejected list) and declared its records as a chain gap',
    );

    // The declarations: one per run of sequence numbers, and again each gap an earlier record of
    // the batch declared (that record is set aside too, so its declaration would not arrive).
    const declarations: { body: string; attributes: Attributes }[] = [];
    const where = `set aside as ${entry.id} in ${store.dir} on the agent's host (ci-audit agent rejected resend ${entry.id} sends it again)`;
    for (const [i, range] of seqRanges.entries()) {
      declarations.push({
        body: `rejected batch: the aggregator refused ${records.length} records (${message}); seqs ${range.first} to ${range.last} will not arrive unless re-sent: ${where}`,
        attributes: notice(`${entry.id}:${i}`, { first: range.first, last: range.last, reason }),
      });
    }
    for (const r of records) {
      const first = r.attributes[chainGapAttr.firstSeq];
      const last = r.attributes[chainGapAttr.lastSeq];
      const earlier = r.attributes[chainGapAttr.reason];
      if (typeof first !== 'number' || typeof last !== 'number' || typeof earlier !== 'string') continue;
      declarations.push({
        // As `rejected`: an `unclean_stop` declaration must directly follow its range, which a
        // later record does not.
        body: `declared again: seqs ${first} to ${last} may not arrive (${earlier}); the record that declared it was in a rejected batch, ${where}`,
        attributes: notice(`${entry.id}:again:${String(r.attributes[chainAttr.seq])}`, { first, last, reason }),
      });
    }
    if (declarations.length === 0) {
      // Unchained records: a notice without a declaration says where they went.
      declarations.push({ body: `rejected batch: the aggregator refused ${records.length} records (${message}); ${where}`, attributes: notice(entry.id, undefined) });
    }
    if (records.every((r) => String(r.attributes[recordAttr.recordId]).startsWith(noticeIdPrefix))) {
      // The aggregator refuses the agent's own notices: declaring again would loop. They are set
      // aside; `ci-audit verify` reports their numbers as missing.
      logger.error(
        { code: 'CIA_ERR_SHIP_REJECTED', id: entry.id, seqRanges },
        'aggregator rejected the agent\'s gap declarations themselves; set aside without declaring again',
      );
      ack();
      return;
    }
    let pending = declarations.length;
    const committed = (): void => {
      if (--pending === 0) ack();
    };
    for (const declaration of declarations) emit(declaration, committed);
  };
}

function notice(id: string, gap: { first: number; last: number; reason: string } | undefined): Attributes {
  const attributes: Attributes = { [recordAttr.dataset]: noticeDataset, [recordAttr.recordId]: noticeIdPrefix + id };
  if (gap !== undefined) {
    attributes[recordAttr.gap] = true;
    attributes[chainGapAttr.firstSeq] = gap.first;
    attributes[chainGapAttr.lastSeq] = gap.last;
    attributes[chainGapAttr.reason] = gap.reason;
  }
  return attributes;
}

/** Sorted contiguous runs of `seqs`. */
function runs(seqs: readonly number[]): { first: number; last: number }[] {
  const sorted = [...new Set(seqs)].sort((a, b) => a - b);
  const out: { first: number; last: number }[] = [];
  for (const seq of sorted) {
    const last = out.at(-1);
    if (last !== undefined && seq === last.last + 1) last.last = seq;
    else out.push({ first: seq, last: seq });
  }
  return out;
}

function recordIdOf(record: ReadableLogRecord | undefined): string | undefined {
  const id = record?.attributes[recordAttr.recordId];
  return typeof id === 'string' ? id : undefined;
}
