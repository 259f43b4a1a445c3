// One record -> what the parsers understood of it: ECS/CI fields, the event's own time and the
// message without its header. Journal entries (attributes from the journald source) and syslog
// lines go to the auth parsers by program name; other lines to the CI runner parsers. A record
// nothing understands is kept whole and marked `unparsed`. Pure; never throws.
import type { AnyValue, AttributeValue, Attributes } from '@opentelemetry/api';
import { ecsAttr, journaldAttr, recordAttr } from '../../core/wire.ts';
import { writeAuthEvent, type EcsAttributes } from './auth/fields.ts';
import type { LinePieces } from './line-pieces.ts';
import { parseAuth } from './auth/parse-auth.ts';
import { parseBuildkite } from './ci/buildkite.ts';
import type { CiParse } from './ci/ci-fields.ts';
import { parseGithubActions, parseGithubStepLine } from './ci/github-actions.ts';
import { parseGitlabRunner } from './ci/gitlab-runner.ts';
import { parseJenkins } from './ci/jenkins.ts';
import { parseSyslog, type SyslogHeader } from './syslog/header.ts';
import type { ParsedTime, TimeZoneResolver } from './syslog/time.ts';
import { formatOffset } from './syslog/time.ts';

export type ParseStatus = 'parsed' | 'header_only' | 'unparsed';

export interface RecordParse {
  status: ParseStatus;
  parser?: string;
  fields: Record<string, AttributeValue>;
  time?: ParsedTime;
}

/** What parseRecordInto found besides the fields it wrote. */
export interface ParseOutcome {
  status: ParseStatus;
  parser: string | undefined;
  time: ParsedTime | undefined;
}

/** Where parseRecordInto writes: a record's attributes, or a fresh object. */
export type FieldSink = Attributes & EcsAttributes;

// A Map, not an object: a program named `constructor` or `__proto__` must find nothing.
const ciByProgram = new Map<string, (message: string) => CiParse | undefined>([
  ['gitlab-runner', parseGitlabRunner],
  ['buildkite-agent', parseBuildkite],
]);

const unparsed: ParseOutcome = Object.freeze({ status: 'unparsed', parser: undefined, time: undefined });

export function parseRecord(body: AnyValue, attributes: Record<string, AttributeValue>, observedMs: number, zone: TimeZoneResolver): RecordParse {
  const fields: Record<string, AttributeValue> = {};
  const outcome = parseRecordInto(body, attributes, observedMs, zone, fields);
  const result: RecordParse = { status: outcome.status, fields };
  if (outcome.parser !== undefined) result.parser = outcome.parser;
  if (outcome.time !== undefined) result.time = outcome.time;
  return result;
}

/**
 * As parseRecord, but writes the fields straight onto `out` (the record's own attributes, in the
 * parse processor: no object in between to build and copy). `attributes` may be `out`: it is read
 * before anything is written. `pieces`, when given, learns which fields are pieces of the body
 * (an auth line's; left as it was otherwise: the caller clears it).
 */
export function parseRecordInto(body: AnyValue, attributes: Attributes, observedMs: number, zone: TimeZoneResolver, out: FieldSink, pieces?: LinePieces): ParseOutcome {
  const journalMessage = attributes[journaldAttr.message];
  if (typeof journalMessage === 'string') return parseJournal(journalMessage, attributes, out);
  if (typeof body !== 'string') return unparsed;

  const header = parseSyslog(body, observedMs, zone);
  if (header !== undefined) {
    // The hot path: one auth line.
    const auth = parseAuth(header);
    if (auth !== undefined) {
      writeAuthEvent(auth, header, out);
      out['event.timezone'] = header.time.timezone;
      pieces?.recordAuth(body, auth, header, out);
      return { status: 'parsed', parser: auth.parser, time: header.time };
    }
    const ci = ciByProgram.get(header.program)?.(header.message);
    if (ci !== undefined && Object.keys(ci.fields).length > 0) {
      assign(out, withHeader({ ...ci.fields }, header));
      return { status: 'parsed', parser: ci.parser, time: header.time };
    }
    writeHeader(header, out);
    return { status: 'header_only', parser: undefined, time: header.time };
  }

  const path = attributes[recordAttr.logFilePath];
  const ci = parseCiLine(body, typeof path === 'string' ? path : undefined);
  if (ci !== undefined) {
    assign(out, ci.fields);
    if (ci.message !== undefined && ci.message !== body) out.message = ci.message;
    const known = ci.fields[ecsAttr.eventAction] !== undefined || Object.keys(ci.fields).some((k) => k.startsWith('cicd.') || k.startsWith('vcs.'));
    return { status: known ? 'parsed' : 'header_only', parser: ci.parser, time: ci.time };
  }
  return unparsed;
}

/** Copies the defined values of `fields` onto `out` (the rarer paths: CI runners, journal entries no auth parser knows). */
function assign(out: Attributes, fields: Attributes): void {
  for (const key in fields) {
    const value = fields[key];
    if (value !== undefined) out[key] = value;
  }
}

/** The syslog header's fields, as withHeader gives them on their own (literal keys: see writeAuthEvent). */
function writeHeader(header: SyslogHeader, out: EcsAttributes): void {
  out.message = header.message;
  out['event.timezone'] = header.time.timezone;
  out['process.name'] = header.program;
  out['host.hostname'] = header.hostname;
  if (header.pid !== undefined) out['process.pid'] = header.pid;
  out['event.kind'] = 'event';
  if (header.hostname !== '') out['related.hosts'] = [header.hostname];
}

/** Adds the syslog header's fields to `fields` (a parser's value for the same key wins) and returns it. */
function withHeader(fields: Record<string, AttributeValue>, header: SyslogHeader): Record<string, AttributeValue> {
  fields[ecsAttr.message] = header.message;
  fields[ecsAttr.eventTimezone] = header.time.timezone;
  fields[ecsAttr.processName] ??= header.program;
  fields[ecsAttr.hostHostname] ??= header.hostname;
  if (header.pid !== undefined) fields[ecsAttr.processPid] ??= header.pid;
  // As Filebeat: every auth.log line is an event, and its host is a related host.
  fields[ecsAttr.eventKind] ??= 'event';
  if (header.hostname !== '') fields[ecsAttr.relatedHosts] = [header.hostname];
  return fields;
}

function parseCiLine(line: string, path: string | undefined): CiParse | undefined {
  const first = line.charCodeAt(0);
  if (first === 0x5b /* [ */) return parseGithubActions(line);
  if (first >= 0x30 && first <= 0x39) return parseBuildkite(line) ?? parseGithubStepLine(line);
  if (line.startsWith('time=')) return parseGitlabRunner(line);
  if (path !== undefined && path.endsWith('/log') && path.includes('/builds/')) return parseJenkins(line, path);
  if (line.startsWith('Started by ') || line.startsWith('Finished: ')) return parseJenkins(line, path);
  return undefined;
}

function parseJournal(message: string, attributes: Attributes, out: FieldSink): ParseOutcome {
  const program = stringOf(attributes[journaldAttr.identifier]) ?? stringOf(attributes[journaldAttr.comm]) ?? '';
  const pidNumber = Number(stringOf(attributes[journaldAttr.pid]));
  const pid = Number.isSafeInteger(pidNumber) && pidNumber > 0 ? pidNumber : undefined;
  const hostname = stringOf(attributes[journaldAttr.hostname]);
  let time: ParsedTime | undefined;
  const micros = stringOf(attributes[journaldAttr.realtimeTimestamp]);
  if (micros !== undefined && /^\d{1,17}$/.test(micros)) {
    const us = Number(micros);
    // The journal's time is UTC; its zone is not recorded, so `event.timezone` stays +00:00.
    time = { ms: Math.floor(us / 1000), subMsNanos: (us % 1000) * 1000, timezone: formatOffset(0) };
  }
  const entry = { program, message, ...(hostname === undefined ? {} : { hostname }), ...(pid === undefined ? {} : { pid }) };
  const auth = parseAuth(entry);
  if (auth !== undefined) {
    writeAuthEvent(auth, entry, out);
    return { status: 'parsed', parser: auth.parser, time };
  }
  const base: Record<string, AttributeValue> = { [ecsAttr.message]: message };
  if (program !== '') base[ecsAttr.processName] = program;
  if (pid !== undefined) base[ecsAttr.processPid] = pid;
  if (hostname !== undefined) {
    base[ecsAttr.hostHostname] = hostname;
    base[ecsAttr.relatedHosts] = [hostname];
  }
  base[ecsAttr.eventKind] = 'event';
  assign(out, base);
  const ci = ciByProgram.get(program)?.(message);
  if (ci !== undefined && Object.keys(ci.fields).length > 0) {
    assign(out, ci.fields);
    return { status: 'parsed', parser: ci.parser, time };
  }
  return { status: 'header_only', parser: undefined, time };
}

function stringOf(value: AttributeValue): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number') return String(value);
  return undefined;
}
