// One record -> what the parsers understood of it: ECS/CI fields, the event's own time and the
// message without its header. Journal entries (attributes from the journald source) and syslog
// lines go to the auth parsers by program name; other lines to the CI runner parsers. A record
// nothing understands is kept whole and marked `unparsed`. Pure; never throws.
import type { AnyValue, AttributeValue } from '@opentelemetry/api';
import { ecsAttr, journaldAttr, recordAttr } from '../../core/wire.ts';
import { parseAuth } from './auth/parse-auth.ts';
import { parseBuildkite } from './ci/buildkite.ts';
import type { CiParse } from './ci/ci-fields.ts';
import { parseGithubActions } from './ci/github-actions.ts';
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

// A Map, not an object: a program named `constructor` or `__proto__` must find nothing.
const ciByProgram = new Map<string, (message: string) => CiParse | undefined>([
  ['gitlab-runner', parseGitlabRunner],
  ['buildkite-agent', parseBuildkite],
]);

export function parseRecord(body: AnyValue, attributes: Record<string, AttributeValue>, observedMs: number, zone: TimeZoneResolver): RecordParse {
  const journalMessage = attributes[journaldAttr.message];
  if (typeof journalMessage === 'string') return parseJournal(journalMessage, attributes);
  if (typeof body !== 'string') return { status: 'unparsed', fields: {} };

  const header = parseSyslog(body, observedMs, zone);
  if (header !== undefined) {
    // The hot path (one auth line): the parser's own fresh object gets the header's fields, no copies.
    const auth = parseAuth(header);
    if (auth !== undefined) return { status: 'parsed', parser: auth.parser, fields: withHeader(auth.fields, header), time: header.time };
    const ci = ciByProgram.get(header.program)?.(header.message);
    if (ci !== undefined && Object.keys(ci.fields).length > 0) return { status: 'parsed', parser: ci.parser, fields: withHeader({ ...ci.fields }, header), time: header.time };
    return { status: 'header_only', fields: withHeader({}, header), time: header.time };
  }

  const path = attributes[recordAttr.logFilePath];
  const ci = parseCiLine(body, typeof path === 'string' ? path : undefined);
  if (ci !== undefined) {
    const fields: Record<string, AttributeValue> = { ...ci.fields };
    if (ci.message !== undefined && ci.message !== body) fields[ecsAttr.message] = ci.message;
    const known = ci.fields[ecsAttr.eventAction] !== undefined || Object.keys(ci.fields).some((k) => k.startsWith('cicd.') || k.startsWith('vcs.'));
    const result: RecordParse = { status: known ? 'parsed' : 'header_only', parser: ci.parser, fields };
    if (ci.time !== undefined) result.time = ci.time;
    return result;
  }
  return { status: 'unparsed', fields: {} };
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
  if (first >= 0x30 && first <= 0x39) return parseBuildkite(line);
  if (line.startsWith('time=')) return parseGitlabRunner(line);
  if (path !== undefined && path.endsWith('/log') && path.includes('/builds/')) return parseJenkins(line, path);
  if (line.startsWith('Started by ') || line.startsWith('Finished: ')) return parseJenkins(line, path);
  return undefined;
}

function parseJournal(message: string, attributes: Record<string, AttributeValue>): RecordParse {
  const program = stringOf(attributes[journaldAttr.identifier]) ?? stringOf(attributes[journaldAttr.comm]) ?? '';
  const pid = Number(stringOf(attributes[journaldAttr.pid]));
  const hostname = stringOf(attributes[journaldAttr.hostname]);
  const base: Record<string, AttributeValue> = { [ecsAttr.message]: message };
  if (program !== '') base[ecsAttr.processName] = program;
  if (Number.isSafeInteger(pid) && pid > 0) base[ecsAttr.processPid] = pid;
  if (hostname !== undefined) {
    base[ecsAttr.hostHostname] = hostname;
    base[ecsAttr.relatedHosts] = [hostname];
  }
  base[ecsAttr.eventKind] = 'event';
  let time: ParsedTime | undefined;
  const micros = stringOf(attributes[journaldAttr.realtimeTimestamp]);
  if (micros !== undefined && /^\d{1,17}$/.test(micros)) {
    const us = Number(micros);
    // The journal's time is UTC; its zone is not recorded, so `event.timezone` stays +00:00.
    time = { ms: Math.floor(us / 1000), subMsNanos: (us % 1000) * 1000, timezone: formatOffset(0) };
  }
  const entry = { program, message, ...(hostname === undefined ? {} : { hostname }), ...(Number.isSafeInteger(pid) && pid > 0 ? { pid } : {}) };
  const auth = parseAuth(entry);
  const ci = auth === undefined ? ciByProgram.get(program)?.(message) : undefined;
  const result: RecordParse =
    auth !== undefined ? { status: 'parsed', parser: auth.parser, fields: { ...base, ...auth.fields } }
    : ci !== undefined && Object.keys(ci.fields).length > 0 ? { status: 'parsed', parser: ci.parser, fields: { ...base, ...ci.fields } }
    : { status: 'header_only', fields: base };
  if (time !== undefined) result.time = time;
  return result;
}

function stringOf(value: AttributeValue): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number') return String(value);
  return undefined;
}
