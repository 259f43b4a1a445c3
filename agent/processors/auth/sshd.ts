// OpenSSH server messages (sshd, and sshd-session since OpenSSH 9.8). Actions follow Filebeat's
// system/auth module (`ssh_login` with `system.auth.ssh.event` Accepted/Failed/Invalid) and add
// the ones it leaves as plain messages (disconnects, too many failures).
import { ecsAttr } from '../../../core/wire.ts';
import { addSource, addUser, event, type Fields } from './fields.ts';

const login = /^(Accepted|Failed) (\S+) for (invalid user )?(.*?) from (\S+) port (\d+)(?: ssh2)?(?:: (\S+) (\S+))?/;
const invalid = /^Invalid user (.*?) from (\S+)(?: port (\d+))?\s*$/;
const tooMany = /^(?:Disconnecting(?: (?:invalid|authenticating))? user (.*?) (\S+) port (\d+): Too many authentication failures|error: maximum authentication attempts exceeded for (invalid user )?(.*?) from (\S+) port (\d+))/;
const disconnected = /^(?:Disconnected from|Connection closed by|Connection reset by)(?: (invalid|authenticating) user| user)? (?:(.*?) )?(\S+) port (\d+)(.*)$/;
const receivedDisconnect = /^Received disconnect from (\S+) port (\d+):(\d+): (.*?)(?: \[preauth\])?$/;
const noIdent = /^Did not receive identification string from (\S+)(?: port (\d+))?/;

export function parseSshd(message: string): Fields | undefined {
  let m = login.exec(message);
  if (m !== null) {
    const accepted = m[1] === 'Accepted';
    // As Filebeat (8.x): an accepted login also starts a session; the outcome carries the result.
    const fields = event('ssh_login', accepted ? ['authentication', 'session'] : ['authentication'], ['info'], accepted ? 'success' : 'failure');
    fields[ecsAttr.sshEvent] = m[1] ?? '';
    fields[ecsAttr.sshMethod] = m[2] ?? '';
    addUser(fields, ecsAttr.userName, m[4]);
    addSource(fields, m[5], m[6]);
    if (m[7] !== undefined && m[8] !== undefined) {
      fields[ecsAttr.sshSignature] = `${m[7]} ${m[8]}`;
      fields[ecsAttr.relatedHash] = [m[8]];
    }
    return fields;
  }
  m = invalid.exec(message);
  if (m !== null) {
    const fields = event('ssh_login', ['authentication'], ['info'], 'failure');
    fields[ecsAttr.sshEvent] = 'Invalid';
    addUser(fields, ecsAttr.userName, m[1]);
    addSource(fields, m[2], m[3]);
    return fields;
  }
  m = tooMany.exec(message);
  if (m !== null) {
    const fields = event('ssh_too_many_auth_failures', ['authentication'], ['end'], 'failure');
    addUser(fields, ecsAttr.userName, m[1] ?? m[5]);
    addSource(fields, m[2] ?? m[6], m[3] ?? m[7]);
    return fields;
  }
  m = receivedDisconnect.exec(message);
  if (m !== null) {
    const fields = event('ssh_disconnect', ['network', 'session'], ['end', 'connection']);
    addSource(fields, m[1], m[2]);
    fields[ecsAttr.eventReason] = m[4] ?? '';
    return fields;
  }
  m = disconnected.exec(message);
  if (m !== null) {
    const preauth = (m[5] ?? '').includes('[preauth]');
    const fields = event(preauth ? 'ssh_connection_closed_preauth' : 'ssh_disconnect', ['network', 'session'], ['end', 'connection']);
    addUser(fields, ecsAttr.userName, m[2]);
    addSource(fields, m[3], m[4]);
    return fields;
  }
  m = noIdent.exec(message);
  if (m !== null) {
    const fields = event('ssh_dropped_connection', ['network'], ['connection', 'denied'], 'failure');
    fields[ecsAttr.sshDroppedIp] = m[1] ?? '';
    addSource(fields, m[1], m[2]);
    return fields;
  }
  return undefined;
}
