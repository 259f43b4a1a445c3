// The most log records one request may hold: limits.max_in_flight_records, since a larger request
// could never be admitted with anything else in flight. Checked by the decoders as they go, record by
// record, not after: an empty LogRecord is 2 bytes of protobuf but about 200 bytes of heap decoded, so
// 32 MiB of them (max_decompressed_bytes) would be 16.7 million records, over 3 GB, before any count.
import { CiAuditError } from '../../core/errors.ts';

/** The error for a request found to hold record number `limit + 1`; the receiver answers 413. */
export function tooManyRecords(limit: number): CiAuditError {
  return new CiAuditError(
    'CIA_ERR_RECEIVER_TOO_LARGE',
    `request holds more than limits.max_in_flight_records (${limit}) log records: decoding stopped at record ${limit + 1}; send smaller batches`,
    { details: { limit } },
  );
}
