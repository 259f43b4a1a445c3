// PAM modules (pam_unix, for any service: sshd, sudo, su, login, cron, passwd) and systemd-logind.
import { ecsAttr } from '../../../core/wire.ts';
import { addSource, addUser, event, idOf, type Fields } from './fields.ts';

const pamPrefix = /^(pam_unix|pam_sss|pam_systemd|pam_succeed_if)\(([^:)]+):(\w+)\): (.*)$/;
const sessionOpened = /^session opened for user (\S+?)(?:\(uid=(\d+)\))? by (\S*?)(?:\(uid=(\d+)\))?$/;
const sessionClosed = /^session closed for user (\S+)$/;
const authFailure = /^authentication failure; (.*)$/;
const passwordChanged = /^password changed for (\S+)$/;
const requirementNotMet = /^requirement "(.*)" not met by user "([^"]*)"$/;

export function parsePam(message: string): Fields | undefined {
  const p = pamPrefix.exec(message);
  if (p === null) return undefined;
  const service = p[2] ?? '';
  const rest = p[4] ?? '';
  let m = sessionOpened.exec(rest);
  if (m !== null) {
    const fields = event('session_opened', ['session'], ['start'], 'success');
    // `for user root by alice(uid=1000)`: alice acts as root, as on sudo's own line (and as
    // Filebeat maps it). `for user builder(uid=1001) by (uid=0)` (sshd, cron): builder alone.
    const by = m[3];
    if (by !== undefined && by !== '') {
      addUser(fields, ecsAttr.userName, by);
      const byUid = idOf(m[4]);
      if (byUid !== undefined) fields[ecsAttr.userId] = byUid;
      addUser(fields, ecsAttr.userEffectiveName, m[1]);
    } else {
      addUser(fields, ecsAttr.userName, m[1]);
      const uid = idOf(m[2]);
      if (uid !== undefined) fields[ecsAttr.userId] = uid;
    }
    fields['system.auth.pam.service'] = service;
    return fields;
  }
  m = sessionClosed.exec(rest);
  if (m !== null) {
    const fields = event('session_closed', ['session'], ['end'], 'success');
    addUser(fields, ecsAttr.userName, m[1]);
    fields['system.auth.pam.service'] = service;
    return fields;
  }
  m = authFailure.exec(rest);
  if (m !== null) {
    const fields = event('authentication_failure', ['authentication'], ['info'], 'failure');
    const kv = keyValues(m[1] ?? '');
    addUser(fields, ecsAttr.userName, kv.user);
    const uid = idOf(kv.uid);
    if (uid !== undefined && kv.user === undefined) fields[ecsAttr.userId] = uid;
    addSource(fields, kv.rhost);
    if (kv.tty !== undefined && kv.tty !== '') fields[ecsAttr.sudoTty] = kv.tty;
    fields['system.auth.pam.service'] = service;
    return fields;
  }
  m = requirementNotMet.exec(rest);
  if (m !== null) {
    // pam_succeed_if refusing an account (e.g. root over ssh): Filebeat names only the user.
    const fields = event('pam_requirement_not_met', ['authentication'], ['denied', 'info'], 'failure');
    addUser(fields, ecsAttr.userName, m[2]);
    fields[ecsAttr.eventReason] = `requirement "${m[1] ?? ''}" not met`;
    fields['system.auth.pam.service'] = service;
    return fields;
  }
  m = passwordChanged.exec(rest);
  if (m !== null) {
    const fields = event('password_changed', ['iam'], ['user', 'change'], 'success');
    addUser(fields, ecsAttr.userName, m[1]);
    fields['system.auth.pam.service'] = service;
    return fields;
  }
  return undefined;
}

/** `logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=root` -> { uid: '0', ... }. */
function keyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/(\w+)=(\S*)/g)) out[m[1] ?? ''] = m[2] ?? '';
  return out;
}

const newSession = /^New session (\S+) of user (\S+?)\.?$/;
const removedSession = /^(?:Removed session (\S+?)\.|Session (\S+) logged out\. .*)$/;

export function parseLogind(message: string): Fields | undefined {
  let m = newSession.exec(message);
  if (m !== null) {
    const fields = event('logind_new_session', ['session'], ['start'], 'success');
    fields[ecsAttr.sessionId] = m[1] ?? '';
    addUser(fields, ecsAttr.userName, m[2]);
    return fields;
  }
  m = removedSession.exec(message);
  if (m !== null) {
    const fields = event(m[1] !== undefined ? 'logind_removed_session' : 'logind_session_logged_out', ['session'], ['end']);
    fields[ecsAttr.sessionId] = m[1] ?? m[2] ?? '';
    return fields;
  }
  return undefined;
}
