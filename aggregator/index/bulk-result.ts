// What to do with each item of a bulk response: a pure function, tested on real Elasticsearch
// error bodies. The rules:
//   | item status                       | outcome    | why                                                   |
//   | 200, 201                          | created    |                                                       |
//   | 409 (version_conflict_engine_...) | duplicate  | `create` of an _id Elasticsearch already holds: a re-send, success |
//   | 408, 429, 5xx                     | retry      | Elasticsearch is busy or failing: the same item can succeed later |
//   | 401, 403, 404                     | retry      | privileges or auto-create settings of the cluster: an operator fixes them, the record is fine |
//   | other 4xx (400 mapping, parsing)  | rejected   | the document itself cannot be indexed: retrying cannot help |
//   | item missing from the response    | retry      |                                                       |

export type ItemOutcome =
  | { kind: 'created' }
  | { kind: 'duplicate' }
  | { kind: 'retry'; status: number; error: string }
  | { kind: 'rejected'; status: number; error: string };

export interface FailedItem {
  /** Position of the item in the bulk request. */
  index: number;
  status: number;
  /** `type: reason`, with the first cause (e.g. `document_parsing_exception: ... (caused by number_format_exception: ...)`). */
  error: string;
}

export interface BulkClassification {
  created: number;
  duplicates: number;
  retry: FailedItem[];
  rejected: FailedItem[];
}

/** The parts of an Elasticsearch bulk response item this module reads. */
export interface BulkItemLike {
  /** The concrete (backing) index of the item. */
  _index?: string;
  status?: number;
  error?: BulkErrorLike | string;
}

export interface BulkErrorLike {
  type?: string;
  reason?: string | null;
  caused_by?: BulkErrorLike;
}

export interface BulkResponseLike {
  errors?: boolean;
  items?: Array<Partial<Record<string, BulkItemLike>>>;
}

export function classifyItem(item: BulkItemLike | undefined): ItemOutcome {
  const status = item?.status;
  if (item === undefined || typeof status !== 'number') {
    return { kind: 'retry', status: 0, error: 'no result for this item in the bulk response' };
  }
  if (status === 200 || status === 201) return { kind: 'created' };
  if (status === 409) return { kind: 'duplicate' };
  const error = describeError(item.error, status);
  if (status === 408 || status === 429 || status >= 500 || status === 401 || status === 403 || status === 404) {
    return { kind: 'retry', status, error };
  }
  return { kind: 'rejected', status, error };
}

/** Classifies every item of a bulk response to a request of `itemCount` actions. */
export function classifyBulkResponse(response: BulkResponseLike, itemCount: number): BulkClassification {
  const result: BulkClassification = { created: 0, duplicates: 0, retry: [], rejected: [] };
  const items = response.items ?? [];
  for (let index = 0; index < itemCount; index++) {
    const wrapper = items[index];
    // Each item is `{ <action>: {...} }`; we only send `create`, but read whichever action it is.
    const item = wrapper === undefined ? undefined : Object.values(wrapper)[0];
    const outcome = classifyItem(item);
    switch (outcome.kind) {
      case 'created':
        result.created++;
        break;
      case 'duplicate':
        result.duplicates++;
        break;
      case 'retry':
        result.retry.push({ index, status: outcome.status, error: outcome.error });
        break;
      case 'rejected':
        result.rejected.push({ index, status: outcome.status, error: outcome.error });
        break;
    }
  }
  return result;
}

function describeError(error: BulkErrorLike | string | undefined, status: number): string {
  if (error === undefined) return `HTTP ${status}`;
  if (typeof error === 'string') return error;
  let text = `${error.type ?? 'error'}: ${error.reason ?? ''}`.trim();
  const cause = error.caused_by;
  if (cause !== undefined) text += ` (caused by ${cause.type ?? 'error'}: ${cause.reason ?? ''})`;
  return text;
}
