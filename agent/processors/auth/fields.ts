// The ECS fields an auth parser produces for one line, and how they are put together: the one
// place that keeps `related.user` / `related.ip` in step with the fields they relate to.
import { isIP } from 'node:net';
import type { AttributeValue } from '@opentelemetry/api';
import { ecsAttr } from '../../../core/wire.ts';

export type Fields = Record<string, AttributeValue>;

export type Outcome = 'success' | 'failure' | 'unknown';

/** Starts an ECS event: kind `event`, and the action, categories, types and outcome given. */
export function event(action: string, category: string[], type: string[], outcome?: Outcome): Fields {
  const fields: Fields = {
    [ecsAttr.eventKind]: 'event',
    [ecsAttr.eventAction]: action,
    [ecsAttr.eventCategory]: category,
    [ecsAttr.eventType]: type,
  };
  if (outcome !== undefined) fields[ecsAttr.eventOutcome] = outcome;
  return fields;
}

/** Adds a user name to `key` and to `related.user` (no duplicates). Empty names are skipped. */
export function addUser(fields: Fields, key: string, name: string | undefined): void {
  if (name === undefined || name === '') return;
  fields[key] = name;
  const related = (fields[ecsAttr.relatedUser] as string[] | undefined) ?? [];
  if (!related.includes(name)) fields[ecsAttr.relatedUser] = [...related, name];
}

/** Adds a source address: `source.ip` and `related.ip` when it is an IP, else `source.address`. */
export function addSource(fields: Fields, address: string | undefined, port?: string): void {
  if (address === undefined || address === '') return;
  if (isIP(address) !== 0) {
    fields[ecsAttr.sourceIp] = address;
    const related = (fields[ecsAttr.relatedIp] as string[] | undefined) ?? [];
    if (!related.includes(address)) fields[ecsAttr.relatedIp] = [...related, address];
  } else {
    fields[ecsAttr.sourceAddress] = address;
  }
  if (port !== undefined) {
    const n = Number(port);
    if (Number.isInteger(n) && n >= 0 && n <= 65_535) fields[ecsAttr.sourcePort] = n;
  }
}

/** A numeric id as ECS keeps it (a keyword string), when it is one. */
export function idOf(text: string | undefined): string | undefined {
  return text !== undefined && /^\d{1,10}$/.test(text) ? text : undefined;
}
