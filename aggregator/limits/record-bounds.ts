// Bounds on what one record may carry: how many attributes, and how large one value. A body under the
// byte limits can still hold 500,000 tiny attributes or one 30 MB string; such a record is refused
// whole (400, naming the record) rather than indexed as a document Elasticsearch would choke on.
import type { AttributeValue, Attributes, DecodedLogRecord } from '../log-record.ts';

export interface RecordBounds {
  /** Attributes of one record, counting its resource's and scope's and nested key-value lists. */
  maxAttributes: number;
  /** Bytes of one string or bytes value (the body included), UTF-8. */
  maxValueBytes: number;
}

/** Undefined when every record is within bounds, else a message naming the first one that is not. */
export function checkRecordBounds(records: readonly DecodedLogRecord[], bounds: RecordBounds): string | undefined {
  // Resource and scope are shared by many records: each object is walked once. A record's own
  // attributes are its own, so they are walked without being remembered.
  const shared = new Map<object, number>();
  const walkShared = (attrs: Attributes): number | string => {
    let n = shared.get(attrs);
    if (n === undefined) {
      const walked = walkAttributes(attrs, bounds.maxValueBytes);
      if (typeof walked === 'string') return walked;
      n = walked;
      shared.set(attrs, n);
    }
    return n;
  };
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    const resource = walkShared(record.resource);
    if (typeof resource === 'string') return `record ${i}: resource attribute ${resource}`;
    const scope = walkShared(record.scope.attributes);
    if (typeof scope === 'string') return `record ${i}: scope attribute ${scope}`;
    const own = walkAttributes(record.attributes, bounds.maxValueBytes);
    if (typeof own === 'string') return `record ${i}: record attribute ${own}`;
    const count = resource + scope + own;
    if (count > bounds.maxAttributes) {
      return `record ${i}: ${count} attributes (resource, scope and record together) exceed limits.max_attributes_per_record (${bounds.maxAttributes})`;
    }
    const body = walkValue(record.body, bounds.maxValueBytes);
    if (typeof body === 'string') return `record ${i}: body${body}`;
    if (record.body !== undefined && count + body > bounds.maxAttributes) {
      return `record ${i}: body holds ${body} key-value entries, beyond limits.max_attributes_per_record (${bounds.maxAttributes})`;
    }
  }
  return undefined;
}

/** The number of attributes (nested ones included), or a description of the first oversized value. */
function walkAttributes(attrs: Attributes, maxValueBytes: number): number | string {
  // Object.values, not Object.entries (an entry array per attribute was most of this check's cost)
  // nor Object.keys and `attrs[key]` (a keyed load with a different key each time is megamorphic):
  // the key is only needed to name an oversized value, and Object.keys has it at the same position.
  const values = Object.values(attrs);
  let count = values.length;
  for (let i = 0; i < values.length; i++) {
    const inner = walkValue(values[i], maxValueBytes);
    if (typeof inner === 'string') {
      const key = Object.keys(attrs)[i]!;
      return `${JSON.stringify(key.length > 60 ? `${key.slice(0, 60)}...` : key)}${inner}`;
    }
    count += inner;
  }
  return count;
}

function walkValue(value: AttributeValue, maxValueBytes: number): number | string {
  if (typeof value === 'string') {
    // length * 3 bounds the UTF-8 size; only count exactly when that bound is over the limit.
    if (value.length * 3 > maxValueBytes && Buffer.byteLength(value, 'utf8') > maxValueBytes) {
      return ` is a string of ${Buffer.byteLength(value, 'utf8')} bytes, beyond limits.max_attribute_value_bytes (${maxValueBytes})`;
    }
    return 0;
  }
  if (value instanceof Uint8Array) {
    return value.byteLength > maxValueBytes ? ` is ${value.byteLength} bytes, beyond limits.max_attribute_value_bytes (${maxValueBytes})` : 0;
  }
  if (Array.isArray(value)) {
    let count = 0;
    for (const v of value) {
      const inner = walkValue(v, maxValueBytes);
      if (typeof inner === 'string') return ` (array element)${inner}`;
      count += 1 + inner;
    }
    return count;
  }
  if (typeof value === 'object' && value !== null) return walkAttributes(value, maxValueBytes);
  return 0;
}
