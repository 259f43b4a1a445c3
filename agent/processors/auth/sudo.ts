// sudo and su. sudo logs `user : [problem ;] TTY=.. ; PWD=.. ; USER=.. ; [ENV=.. ;] COMMAND=..`;
// su logs differ by implementation: shadow-utils (Debian), util-linux (RHEL) and busybox (Alpine).
import { AuthEvent } from './fields.ts';

const sudoLine = /^\s*(\S+) : (?:(.*?) ; )?TTY=(\S*) ; PWD=(.*?) ; USER=(\S+) ;(?: GROUP=\S+ ;)?(?: ENV=.*? ;)? COMMAND=(.*)$/;

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
  e.user(m[1]).effectiveUser(m[5]);
  e.sudoUser = m[5] ?? '';
  e.tty = m[3] ?? '';
  e.sudoPwd = m[4] ?? '';
  e.sudoCommand = m[6] ?? '';
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
