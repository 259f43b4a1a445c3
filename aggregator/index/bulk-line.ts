// One mapped record as the two NDJSON lines of a bulk `create`: the action and the document.
import type { MappedRecord } from '../map/ecs.ts';
import type { BatchLine } from './bulk-batcher.ts';

/**
 * The action line is written as text: the same bytes as JSON.stringify of
 * `{ create: { _index, _id } }`, without building that object for every record. The index's part
 * is kept for the last index seen: the records of a request nearly all go to one data stream.
 */
export function createAction(index: string, id: string | undefined): string {
  if (index !== lastIndex) {
    lastIndex = index;
    lastIndexText = `{"create":{"_index":${JSON.stringify(index)}`;
  }
  return id === undefined ? `${lastIndexText}}}` : `${lastIndexText},"_id":${JSON.stringify(id)}}}`;
}

let lastIndex: string | undefined;
let lastIndexText = '';

/** The record's bulk lines, serialized once: the client passes strings through as NDJSON lines. */
export function bulkLine(record: MappedRecord): BatchLine {
  return { action: createAction(record.dataStream, record.id), document: JSON.stringify(record.document) };
}
