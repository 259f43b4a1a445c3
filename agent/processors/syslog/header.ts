// Splits a syslog line (/var/log/auth.log, /var/log/secure, busybox /var/log/messages) into its
// header and message. Three shapes are known:
//   Feb  3 04:05:06 host sshd[123]: message                        (rsyslog traditional, RHEL, Debian < 12)
//   2024-02-03T04:05:06.123456+01:00 host sshd[123]: message       (rsyslog high precision, Debian 12+)
//   Feb  3 04:05:06 host authpriv.info sshd[123]: message          (busybox syslogd)
// An optional `<PRI>` prefix is skipped. Pure: never throws; undefined when the line is not syslog.
import { bsdTime, digitsAt, rfc3339Time, type ParsedTime, type TimeZoneResolver } from './time.ts';

export interface SyslogHeader {
  time: ParsedTime;
  hostname: string;
  program: string;
  pid?: number;
  message: string;
}

// Each pattern matches the whole header, tag included, and stops where the message starts: the
// line's tail is neither scanned nor copied before the message is cut out, and a line costs one
// match (the tag was a second, sticky pattern: a second match and its array on every line).
// The clock is one group (`hh:mm:ss`): its digits are read in place, with no string per number.
// The tag: `prog[pid]: msg` or `prog: msg` (busybox puts `facility.level ` before it); program
// names may hold '/', '-', '.', '(' (e.g. `(sd-pam)`).
const tag = String.raw`(?:[a-z]+\.[a-z]+ )?([^\s[\]:]{1,64})(?:\[(\d{1,10})\])?: *`;
const bsd = new RegExp(String.raw`^(?:<\d{1,3}>)?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))? (\S+) ${tag}`);
const iso = new RegExp(String.raw`^(?:<\d{1,3}>)?(\d{4}-\d{2}-\d{2}T\S+) (\S+) ${tag}`);

export function parseSyslog(line: string, observedMs: number, zone: TimeZoneResolver): SyslogHeader | undefined {
  let time: ParsedTime | undefined;
  let hostname: string;
  let program: string | undefined;
  let pid: string | undefined;
  let at: number;
  const b = bsd.exec(line);
  if (b !== null) {
    const clock = b[3] ?? '';
    const fraction = b[4] === undefined ? 0 : Number(b[4].padEnd(3, '0').slice(0, 3));
    time = bsdTime(b[1] ?? '', Number(b[2]), digitsAt(clock, 0, 2), digitsAt(clock, 3, 2), digitsAt(clock, 6, 2), fraction, observedMs, zone);
    hostname = b[5] ?? '';
    program = b[6];
    pid = b[7];
    at = b[0].length;
  } else {
    const i = iso.exec(line);
    if (i === null) return undefined;
    time = rfc3339Time(i[1] ?? '');
    hostname = i[2] ?? '';
    program = i[3];
    pid = i[4];
    at = i[0].length;
  }
  if (time === undefined) return undefined;
  // One shape for every header (pid present, maybe undefined): the readers see one kind of object.
  return { time, hostname, program: program ?? '', pid: pid === undefined ? undefined : digitsAt(pid, 0, pid.length), message: line.slice(at) };
}
