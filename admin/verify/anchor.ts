// The external anchor: the aggregator appends every verified checkpoint to a JSON-lines file
// outside Elasticsearch (integrity.anchor_file, aggregator/verify/anchor.ts), one statement per line:
//   {"v":1,"type":"checkpoint","agent":"..","key":"..","seq":n,"hash":"..","time":"<ns>","signature":"..",
//    "next_key"?:"..","next_public_key"?:".."}
// The same checkpoint anchored twice (a re-sent request) is the same line; it counts once.
// Someone who can rewrite the index cannot rewrite this file (kept on other storage, shipped
// elsewhere), so a chain rewritten or cut short in Elasticsearch no longer matches it.
// The file holds one line per checkpoint (by default one per 1000 records); verify keeps the lines
// of the agents it checks in memory, sorted by sequence number.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { CiAuditError } from '../../core/errors.ts';
import { statementFrom, type Attestation } from './checkpoints.ts';

/** The anchored statements per agent, in sequence order. */
export async function readAnchorFile(file: string, wanted: (agent: string) => boolean): Promise<Map<string, Attestation[]>> {
  const byAgent = new Map<string, Attestation[]>();
  const input = createReadStream(file, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', reject);
  });
  try {
    await opened;
  } catch (cause) {
    throw new CiAuditError('CIA_ERR_INTEGRITY_ANCHOR', `cannot read the anchor file ${file}: ${(cause as Error).message}`, { cause, details: { file } });
  }
  let line = 0;
  const seen = new Set<string>();
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    line++;
    if (text.trim() === '') continue;
    let fields: unknown;
    try {
      fields = JSON.parse(text);
    } catch {
      fields = undefined;
    }
    const object = typeof fields === 'object' && fields !== null && !Array.isArray(fields) ? (fields as Record<string, unknown>) : {};
    if (object.v !== undefined && object.v !== 1) {
      throw new CiAuditError('CIA_ERR_INTEGRITY_ANCHOR', `${file} line ${line} has anchor version ${JSON.stringify(object.v)}; this verify reads version 1`, { details: { file, line } });
    }
    const agent = object.agent;
    const statement = typeof agent === 'string' && agent !== '' ? statementFrom(object, agent) : undefined;
    if (statement === undefined) {
      throw new CiAuditError('CIA_ERR_INTEGRITY_ANCHOR', `${file} line ${line} is not a checkpoint statement (JSON with type, agent, key, seq, hash, time, signature)`, { details: { file, line } });
    }
    if (!wanted(statement.agent) || seen.has(text)) continue;
    seen.add(text);
    let list = byAgent.get(statement.agent);
    if (list === undefined) byAgent.set(statement.agent, (list = []));
    list.push({ origin: 'anchor', statement, line });
  }
  for (const list of byAgent.values()) list.sort((a, b) => a.statement.seq - b.statement.seq || (a.statement.timeUnixNano < b.statement.timeUnixNano ? -1 : a.statement.timeUnixNano > b.statement.timeUnixNano ? 1 : 0));
  return byAgent;
}
