// The aggregator's path for one request, Elasticsearch excluded, as bench/aggregator.ts and
// bench/instructions.ts measure it: gunzip, decode, the record bounds, the verify stage, mapToEcs,
// the bulk lines and the NDJSON body's bytes (bulkBody, what ElasticsearchWriter sends).
import { bulkLine } from '../../aggregator/index/bulk-line.ts';
import { bulkBody } from '../../aggregator/index/elasticsearch-writer.ts';
import { checkRecordBounds } from '../../aggregator/limits/record-bounds.ts';
import { mapToEcs } from '../../aggregator/map/ecs.ts';
import { decodeBody } from '../../aggregator/receiver/body.ts';
import { decodeProtobufLogs } from '../../aggregator/receiver/otlp-decode.ts';
import type { VerifyStage } from '../../aggregator/verify/stage.ts';

export const bounds = { maxAttributes: 1000, maxValueBytes: 1024 * 1024 };
/** The aggregator's default limits.max_decompressed_bytes. */
export const maxDecompressedBytes = 32 * 1024 * 1024;

/** One request the whole way; returns the records and the bulk body's length. */
export async function handleRequest(body: Buffer, stage: VerifyStage | undefined): Promise<{ records: number; bytes: number }> {
  const records = decodeProtobufLogs(decodeBody(body, 'gzip', maxDecompressedBytes));
  const problem = checkRecordBounds(records, bounds);
  if (problem !== undefined) throw new Error(problem);
  const verified = stage === undefined ? undefined : await stage.verify(records);
  if (verified !== undefined && verified.events.length > 0) throw new Error(`unexpected finding: ${verified.events[0]!.message}`);
  const ingested = new Date();
  const lines = records.map((record, i) => {
    const verdict = verified?.verdicts[i];
    return bulkLine(mapToEcs(record, { namespace: 'bench', ingested, chain: verdict?.chain, checkpointVerified: verdict?.checkpointVerified }));
  });
  return { records: records.length, bytes: bulkBody(lines, lines.map((_, i) => i)).byteLength };
}
