// OpenSSH server messages (sshd, and sshd-session since OpenSSH 9.8). Actions follow Filebeat's
// system/auth module (`ssh_login` with `system.auth.ssh.event` Accepted/Failed/Invalid) and add
// the ones it leaves as plain messages (disconnects, too many failures).
import { AuthEvent } from './fields.ts';

// A user name is the client's choice and may hold spaces and ` from 203.0.113.9 port 22`: every
// pattern with a user name before the address is anchored at the END of the line, so the address
// taken is the one sshd wrote after the name, never one inside it. Where the tail after the
// address has a fixed shape (`port N`, `ssh2`, `[preauth]`), a lazy name is enough: a forged
// address inside the name is followed by the real one, which no tail can match up to the end.
// A login's tail ends in the key's description, free text for a certificate (`ID <key id> ...`):
// there the name is greedy (the last ` from ` whose tail matches), or a name holding
// `from X port 1 ssh2: A B ID` would forge any login line. Both scans try a tail only where
// ` from ` (or a space) stands: linear in the line.
const login = /^(Accepted|Failed) (\S+) for (invalid user )?(.*) from (\S+) port (\d+)(?: ssh2)?(?:: (\S+) (\S+)(?: .*)?)?(?: \[preauth\])?$/;
const invalid = /^Invalid user (.*?) from (\S+)(?: port (\d+))?\s*$/;
const tooMany = /^(?:Disconnecting(?: (?:invalid|authenticating))? user (.*?) (\S+) port (\d+): Too many authentication failures(?: \[preauth\])?|error: maximum authentication attempts exceeded for (invalid user )?(.*?) from (\S+) port (\d+)(?: ssh2)?(?: \[preauth\])?)$/;
const disconnected = /^(?:Disconnected from|Connection closed by|Connection reset by)(?: (invalid|authenticating) user| user)? (?:(.*?) )?(\S+) port (\d+)( \[preauth\])?$/;
const receivedDisconnect = /^Received disconnect from (\S+) port (\d+):(\d+): (.*?)(?: \[preauth\])?$/;
const noIdent = /^Did not receive identification string from (\S+)(?: port (\d+))?/;

export function parseSshd(message: string): AuthEvent | undefined {
  let m = login.exec(message);
  if (m !== null) {
    const accepted = m[1] === 'Accepted';
    // As Filebeat (8.x): an accepted login also starts a session; the outcome carries the result.
    const e = new AuthEvent('ssh_login', accepted ? ['authentication', 'session'] : ['authentication'], ['info'], accepted ? 'success' : 'failure');
    e.sshEvent = m[1] ?? '';
    e.sshMethod = m[2] ?? '';
    e.user(m[4]).source(m[5], m[6]);
    if (m[7] !== undefined && m[8] !== undefined) {
      e.sshSignature = `${m[7]} ${m[8]}`;
      e.keyHash = m[8];
    }
    return e;
  }
  m = invalid.exec(message);
  if (m !== null) {
    const e = new AuthEvent('ssh_login', ['authentication'], ['info'], 'failure');
    e.sshEvent = 'Invalid';
    return e.user(m[1]).source(m[2], m[3]);
  }
  m = tooMany.exec(message);
  if (m !== null) {
    return new AuthEvent('ssh_too_many_auth_failures', ['authentication'], ['end'], 'failure').user(m[1] ?? m[5]).source(m[2] ?? m[6], m[3] ?? m[7]);
  }
  m = receivedDisconnect.exec(message);
  if (m !== null) {
    const e = new AuthEvent('ssh_disconnect', ['network', 'session'], ['end', 'connection']).source(m[1], m[2]);
    e.reason = m[4] ?? '';
    return e;
  }
  m = disconnected.exec(message);
  if (m !== null) {
    const preauth = m[5] !== undefined;
    return new AuthEvent(preauth ? 'ssh_connection_closed_preauth' : 'ssh_disconnect', ['network', 'session'], ['end', 'connection']).user(m[2]).source(m[3], m[4]);
  }
  m = noIdent.exec(message);
  if (m !== null) {
    const e = new AuthEvent('ssh_dropped_connection', ['network'], ['connection', 'denied'], 'failure');
    e.sshDroppedIp = m[1] ?? '';
    return e.source(m[1], m[2]);
  }
  return undefined;
}
