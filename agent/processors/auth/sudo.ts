// sudo and su. sudo logs `user : [problem ; ]TTY=.. ; [CHROOT=.. ; ]PWD=.. ; USER=.. ; [GROUP=.. ; ]
// [TSID=.. ; ][ENV=.. ; ]COMMAND=..`: the fields in that order, each optional but COMMAND.
// su logs differ by implementation: shadow-utils (Debian), util-linux (RHEL) and busybox (Alpine).
import { AuthEvent } from './fields.ts';

const sudoKeys = ['TTY', 'CHROOT', 'PWD', 'USER', 'GROUP', 'TSID', 'ENV', 'COMMAND'] as const;
/**
 * A value that may hold spaces and ` ; ` (a directory name, ENV): it ends at the first ` ; ` that
 * is followed by one of the keys that may come after `key`, as a lazy `.*?` would, but without
 * backtracking: where it ends is decided character by character, so a line that is no sudo line
 * costs one pass, not the cubic search of three lazy groups.
 */
const valueBefore = (key: (typeof sudoKeys)[number]): string => String.raw`((?:[^ ]| (?!; (?:${sudoKeys.slice(sudoKeys.indexOf(key) + 1).join('|')})=))*)`;
/** The problem (`3 incorrect password attempts`): not a field, and ends before the first one. */
const problem = String.raw`((?!(?:${sudoKeys.join('|')})=)(?:[^ ]| (?!; (?:${sudoKeys.join('|')})=))+)`;
const sudoLine = new RegExp(
  String.raw`^\s*(\S+) : (?:${problem} ; )?(?:TTY=(\S*) ; )?(?:CHROOT=${valueBefore('CHROOT')} ; )?(?:PWD=${valueBefore('PWD')} ; )?` +
    String.raw`(?:USER=(\S+) ; )?(?:GROUP=(\S+) ; )?(?:TSID=(\S+) ; )?(?:ENV=${valueBefore('ENV')} ; )?COMMAND=(.*)$`,
);

export function parseSudo(message: string): AuthEvent | undefined {
  const m = sudoLine.exec(message);
  if (m === null) return undefined;
  const problem = m[2];
  let e: AuthEvent;
  if (problem === undefined) {
    e = new AuthEvent('sudo_command', ['process'], ['start'], 'success');
  } else if (problem.includes('incorrect password attempt')) {
    e = new AuthEvent('sudo_incorrect_password', ['authentication'], ['info'], 'failure');
  } else if (problem.includes('NOT in sudoers') || problem.includes('not allowed')) {
    e = new AuthEvent('sudo_not_in_sudoers', ['authentication'], ['denied', 'info'], 'failure');
  } else {
    e = new AuthEvent('sudo_denied', ['authentication'], ['denied', 'info'], 'failure');
  }
  e.sudoError = problem;
  // m[4] CHROOT, m[7] GROUP, m[8] TSID, m[9] ENV: read past, not kept (no ECS field).
  e.user(m[1]).effectiveUser(m[6]);
  e.sudoUser = m[6];
  e.tty = m[3];
  e.sudoPwd = m[5];
  e.sudoCommand = m[10] ?? '';
  return e;
}

const suShadow = /^(Successful|FAILED) su for (\S+) by (\S+)$/;
const suUtil = /^(FAILED SU )?\(to (\S+)\) (\S+) on (\S+)$/;
const suShort = /^([+-]) (\S+) (\S*?):(\S+)$/;

export function parseSu(message: string): AuthEvent | undefined {
  let success: boolean;
  let target: string | undefined;
  let by: string | undefined;
  let tty: string | undefined;
  let m = suShadow.exec(message);
  if (m !== null) {
    success = m[1] === 'Successful';
    target = m[2];
    by = m[3];
  } else if ((m = suUtil.exec(message)) !== null) {
    success = m[1] === undefined;
    target = m[2];
    by = m[3];
    tty = m[4];
  } else if ((m = suShort.exec(message)) !== null) {
    success = m[1] === '+';
    tty = m[2];
    by = m[3];
    target = m[4];
  } else {
    return undefined;
  }
  const e = success
    ? new AuthEvent('su', ['authentication', 'session'], ['start'], 'success')
    : new AuthEvent('su', ['authentication'], ['info'], 'failure');
  e.user(by).effectiveUser(target);
  if (tty !== undefined && tty !== '') e.tty = tty;
  return e;
}
