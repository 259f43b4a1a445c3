// PAM modules (pam_unix, for any service: sshd, sudo, su, login, cron, passwd) and systemd-logind.
import { AuthEvent, idOf } from './fields.ts';

const pamPrefix = /^(pam_unix|pam_sss|pam_systemd|pam_succeed_if)\(([^:)]+):(\w+)\): (.*)$/;
const sessionOpened = /^session opened for user (\S+?)(?:\(uid=(\d+)\))? by (\S*?)(?:\(uid=(\d+)\))?$/;
const sessionClosed = /^session closed for user (\S+)$/;
const authFailure = /^authentication failure; (.*)$/;
const passwordChanged = /^password changed for (\S+)$/;
const requirementNotMet = /^requirement "(.*)" not met by user "([^"]*)"$/;

export function parsePam(message: string): AuthEvent | undefined {
  const p = pamPrefix.exec(message);
  if (p === null) return undefined;
  const service = p[2] ?? '';
  const rest = p[4] ?? '';
  let m = sessionOpened.exec(rest);
  if (m !== null) {
    const e = new AuthEvent('session_opened', ['session'], ['start'], 'success');
    // `for user root by alice(uid=1000)`: alice acts as root, as on sudo's own line (and as
    // Filebeat maps it). `for user builder(uid=1001) by (uid=0)` (sshd, cron): builder alone.
    const by = m[3];
    if (by !== undefined && by !== '') {
      e.user(by);
      e.userId = idOf(m[4]);
      e.effectiveUser(m[1]);
    } else {
      e.user(m[1]);
      e.userId = idOf(m[2]);
    }
    e.pamService = service;
    return e;
  }
  m = sessionClosed.exec(rest);
  if (m !== null) {
    const e = new AuthEvent('session_closed', ['session'], ['end'], 'success').user(m[1]);
    e.pamService = service;
    return e;
  }
  m = authFailure.exec(rest);
  if (m !== null) {
    const e = new AuthEvent('authentication_failure', ['authentication'], ['info'], 'failure');
    const kv = keyValues(m[1] ?? '');
    e.user(kv.user);
    if (kv.user === undefined) e.userId = idOf(kv.uid);
    e.source(kv.rhost);
    if (kv.tty !== undefined && kv.tty !== '') e.tty = kv.tty;
    e.pamService = service;
    return e;
  }
  m = requirementNotMet.exec(rest);
  if (m !== null) {
    // pam_succeed_if refusing an account (e.g. root over ssh): Filebeat names only the user.
    const e = new AuthEvent('pam_requirement_not_met', ['authentication'], ['denied', 'info'], 'failure').user(m[2]);
    e.reason = `requirement "${m[1] ?? ''}" not met`;
    e.pamService = service;
    return e;
  }
  m = passwordChanged.exec(rest);
  if (m !== null) {
    const e = new AuthEvent('password_changed', ['iam'], ['user', 'change'], 'success').user(m[1]);
    e.pamService = service;
    return e;
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

export function parseLogind(message: string): AuthEvent | undefined {
  let m = newSession.exec(message);
  if (m !== null) {
    const e = new AuthEvent('logind_new_session', ['session'], ['start'], 'success');
    e.sessionId = m[1] ?? '';
    return e.user(m[2]);
  }
  m = removedSession.exec(message);
  if (m !== null) {
    const e = new AuthEvent(m[1] !== undefined ? 'logind_removed_session' : 'logind_session_logged_out', ['session'], ['end']);
    e.sessionId = m[1] ?? m[2] ?? '';
    return e;
  }
  return undefined;
}
