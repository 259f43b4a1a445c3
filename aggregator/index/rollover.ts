// `ci-audit setup --rollover`: after a template upgrade, roll over the ci-audit data streams whose
// write index predates it, so that the new mappings apply now rather than at the next rollover.
// A data stream is stale when a field the template maps today is missing from its write index's
// mapping, or mapped with another type (found by simulating the template for the stream's name, so
// the comparison is with what Elasticsearch itself would compose). Only stale streams are rolled
// over, so running it again changes nothing. Changes of mapping parameters other than `type` (e.g.
// `ignore_above`) are not detected: roll over by hand (`POST <stream>/_rollover`) for those.
// Rollover is safe: it only starts a new backing index; nothing is rewritten.
import type { Client } from '@elastic/elasticsearch';
import { toEsError } from './es-errors.ts';
import { templatePattern } from './templates.ts';

export interface RolloverResult {
  dataStream: string;
  /** The write index before. */
  from: string;
  /** The new write index; undefined when the stream was current and left alone. */
  to?: string;
  /** Fields of the template missing from (or of another type in) the old write index. */
  stale: string[];
}

interface MappingNode {
  type?: string;
  properties?: Record<string, MappingNode>;
}

/** Paths the desired mapping has that `actual` lacks or types differently. A pure function. */
export function staleFields(desired: Record<string, MappingNode> | undefined, actual: Record<string, MappingNode> | undefined, prefix = ''): string[] {
  const out: string[] = [];
  for (const [name, want] of Object.entries(desired ?? {})) {
    const path = `${prefix}${name}`;
    const have = actual?.[name];
    if (have === undefined) {
      out.push(path);
      continue;
    }
    // An object is reported without `type` in an index's mapping.
    const wantType = want.type ?? (want.properties === undefined ? undefined : 'object');
    const haveType = have.type ?? (have.properties === undefined ? undefined : 'object');
    if (wantType !== haveType) out.push(path);
    else if (want.properties !== undefined) out.push(...staleFields(want.properties, have.properties, `${path}.`));
  }
  return out;
}

/** The backing index of the highest generation (`.ds-<stream>-<date>-<generation>`): the write index. A pure function. */
export function writeIndexOf(backing: readonly string[]): string | undefined {
  const generation = (name: string): number => Number(/-(\d+)$/.exec(name)?.[1] ?? -1);
  return [...backing].sort((a, b) => generation(a) - generation(b)).at(-1);
}

/** Rolls over every stale ci-audit data stream (all namespaces). `url` is only for messages. */
export async function rolloverStale(client: Client, url: string): Promise<RolloverResult[]> {
  const call = async <T>(fn: () => Promise<T>, what: string): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw toEsError(err, what, url, 'CIA_ERR_ES_SETUP');
    }
  };
  // _resolve/index, not GET _data_stream: the minimal distribution lacks the latter.
  const resolved = await call(() => client.indices.resolveIndex({ name: templatePattern, expand_wildcards: 'all' }), `listing ${templatePattern}`);
  const results: RolloverResult[] = [];
  for (const stream of [...resolved.data_streams].sort((a, b) => a.name.localeCompare(b.name))) {
    const writeIndex = writeIndexOf(([] as string[]).concat(stream.backing_indices));
    if (writeIndex === undefined) continue;
    const simulated = await call(() => client.indices.simulateIndexTemplate({ name: stream.name }), `simulating the template of ${stream.name}`);
    const mapping = await call(() => client.indices.getMapping({ index: writeIndex, expand_wildcards: 'all' }), `reading the mapping of ${writeIndex}`);
    const desired = (simulated.template.mappings as { properties?: Record<string, MappingNode> } | undefined)?.properties;
    const actual = (mapping[writeIndex]?.mappings as { properties?: Record<string, MappingNode> } | undefined)?.properties;
    const stale = staleFields(desired, actual);
    if (stale.length === 0) {
      results.push({ dataStream: stream.name, from: writeIndex, stale });
      continue;
    }
    const rolled = await call(() => client.indices.rollover({ alias: stream.name }), `rolling over ${stream.name}`);
    results.push({ dataStream: stream.name, from: writeIndex, to: rolled.new_index, stale });
  }
  return results;
}
