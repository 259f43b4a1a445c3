// Turns a line of a file into the record a source emits: body, wire attributes and a
// deterministic id, so that a line sent again after a restart carries the id it had the first time
// (the aggregator indexes with `create` on that id: a resend is not a duplicate).
import { createHash } from 'node:crypto';
import { recordAttr } from '../../../core/wire.ts';
import type { AckFn, SourceRecord } from '../source.ts';
import type { FileIdentity } from './identity.ts';
import type { Line } from './line-splitter.ts';

/** Hex SHA-256 over (agent id, dev, inode, offset of the line), truncated to 32 hex characters. */
export function fileRecordId(agentId: string, file: FileIdentity, offset: number): string {
  // Newline-separated: none of the parts can contain one (agent ids are [A-Za-z0-9._-]).
  return createHash('sha256').update(`${agentId}\n${file.dev}\n${file.ino}\n${offset}`).digest('hex').slice(0, 32);
}

export interface FileRecordContext {
  agentId: string;
  dataset: string;
  path: string;
  identity: FileIdentity;
}

export function fileRecord(ctx: FileRecordContext, line: Line, observedAt: number, ack: AckFn): SourceRecord {
  const attributes: SourceRecord['attributes'] = {
    [recordAttr.dataset]: ctx.dataset,
    [recordAttr.recordId]: fileRecordId(ctx.agentId, ctx.identity, line.offset),
    [recordAttr.logFilePath]: ctx.path,
    [recordAttr.logOffset]: line.offset,
  };
  if (line.invalidUtf8) attributes[recordAttr.invalidUtf8] = true;
  return { body: line.text, attributes, observedAt, ack };
}
