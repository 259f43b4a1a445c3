// sudo and su. sudo logs `user : [problem ;] TTY=.. ; PWD=.. ; USER=.. ; [ENV=.. ;] COMMAND=..`;
// su logs differ by implementation: shadow-utils (Debian), util-linux (RHEL) and busybox (Alpine).
import { ecsAttr } from '../../../core/wire.ts';
import { addUser, event, type Fields } from './fields.ts';

const sudoLine = /^\s*(\S+) : (?:(.*?) ; )?TTY=(\S*) ; PWD=(.*?) ; USER=(\S+) ;(?: GROUP=\S+ ;)?(?: ENV=.*? ;)? COMMAND=(.*)$/;

export function parseSudo(message: string): Fields | undefined {
  const m = sudoLine.exec(message);
  if (m === null) return undefined;
  const problem = m[2];
  let fields: Fields;
  if (problem === undefined) {
    fields = event('sudo_command', ['process'], ['start'], 'success');
  } else if (/incorrect password attempt/.test(problem)) {
    fields = event('sudo_incorrect_password', ['authentication'], ['info'], 'failure');
  } else if (/NOT in sudoers|not allowed/.test(problem)) {
    fields = event('sudo_not_in_sudoers', ['authentication'], ['denied', 'info'], 'failure');
  } else {
    fields = event('sudo_denied', ['authentication'], ['denied', 'info'], 'failure');
  }
  if (problem !== undefined) fields[ecsAttr.sudoError] = problem;
  addUser(fields, ecsAttr.userName, m[1]);
  addUser(fields, ecsAttr.userEffectiveName, m[5]);
  fields[ecsAttr.sudoUser] = m[5] ?? '';
  fields[ecsAttr.sudoTty] = m[3] ?? '';
  fields[ecsAttr.sudoPwd] = m[4] ?? '';
  fields[ecsAttr.sudoCommand] = m[6] ?? '';
  fields[ecsAttr.processCommandLine] = m[6] ?? '';
  fields[ecsAttr.processWorkingDirectory] = m[4] ?? '';
  return fields;
}

const suShadow = /^(Successful|FAILED) su for (\S+) by (\S+)$/;
const suUtil = /^(FAILED SU )?\(to (\S+)\) (\S+) on (\S+)$/;
const suShort = /^([+-]) (\S+) (\S*?):(\S+)$/;

export function parseSu(message: string): Fields | undefined {
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
  const fields = success
    ? event('su', ['authentication', 'session'], ['start'], 'success')
    : event('su', ['authentication'], ['info'], 'failure');
  addUser(fields, ecsAttr.userName, by);
  addUser(fields, ecsAttr.userEffectiveName, target);
  if (tty !== undefined && tty !== '') fields[ecsAttr.sudoTty] = tty;
  return fields;
}
