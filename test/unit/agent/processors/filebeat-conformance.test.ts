// The kinds of lines in Filebeat's system/auth test corpus (elastic/beats,
// filebeat/module/system/auth/test), written anew here, with the fields Filebeat 8 produces for
// them. Where ci-audit deliberately differs, docs/parsing.md ("Conformance with Filebeat") says why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRecord } from '../../../../agent/processors/parse-record.ts';
import { timeZoneResolver } from '../../../../agent/processors/syslog/time.ts';

const observed = Date.UTC(2025, 5, 20, 12, 0, 0);
const utc = timeZoneResolver('UTC');

const cases: { line: string; want: Record<string, unknown> }[] = [
  {
    line: 'Jun 14 08:01:10 buildhost sshd[7001]: Accepted publickey for carol from 192.0.2.44 port 51000 ssh2: RSA SHA256:Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE',
    want: {
      'event.kind': 'event', 'event.action': 'ssh_login', 'event.category': ['authentication', 'session'], 'event.type': ['info'], 'event.outcome': 'success',
      'user.name': 'carol', 'source.ip': '192.0.2.44', 'source.port': 51000, 'process.name': 'sshd', 'process.pid': 7001, 'host.hostname': 'buildhost',
      'related.user': ['carol'], 'related.ip': ['192.0.2.44'], 'related.hosts': ['buildhost'],
      'system.auth.ssh.event': 'Accepted', 'system.auth.ssh.method': 'publickey', 'system.auth.ssh.signature': 'RSA SHA256:Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE',
    },
  },
  {
    line: 'Jun 14 08:02:11 buildhost sshd[7002]: Failed password for root from 198.51.100.61 port 4122 ssh2',
    want: { 'event.action': 'ssh_login', 'event.category': ['authentication'], 'event.type': ['info'], 'event.outcome': 'failure', 'user.name': 'root', 'source.ip': '198.51.100.61', 'source.port': 4122, 'system.auth.ssh.event': 'Failed', 'system.auth.ssh.method': 'password', 'related.hosts': ['buildhost'] },
  },
  {
    line: 'Jun 14 08:03:12 buildhost sshd[7003]: Invalid user scanner from 198.51.100.62',
    want: { 'event.action': 'ssh_login', 'event.outcome': 'failure', 'user.name': 'scanner', 'source.ip': '198.51.100.62', 'system.auth.ssh.event': 'Invalid', 'related.ip': ['198.51.100.62'] },
  },
  {
    line: 'Jun 14 08:04:13 buildhost sshd[7004]: Did not receive identification string from 203.0.113.90',
    want: { 'system.auth.ssh.dropped_ip': '203.0.113.90', 'source.ip': '203.0.113.90', 'event.kind': 'event' },
  },
  {
    line: 'Jun 14 08:05:14 buildhost sudo:    carol : TTY=pts/3 ; PWD=/home/carol ; USER=root ; COMMAND=/usr/bin/systemctl restart runner',
    want: {
      'user.name': 'carol', 'user.effective.name': 'root', 'related.user': ['carol', 'root'], 'process.name': 'sudo',
      'system.auth.sudo.tty': 'pts/3', 'system.auth.sudo.pwd': '/home/carol', 'system.auth.sudo.user': 'root', 'system.auth.sudo.command': '/usr/bin/systemctl restart runner',
    },
  },
  {
    line: 'Jun 14 08:06:15 buildhost sudo:     dave : user NOT in sudoers ; TTY=pts/4 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh',
    want: { 'user.name': 'dave', 'user.effective.name': 'root', 'system.auth.sudo.error': 'user NOT in sudoers', 'event.outcome': 'failure' },
  },
  {
    line: 'Jun 14 08:07:16 buildhost groupadd[7010]: new group: name=runners, GID=990',
    want: { 'group.name': 'runners', 'group.id': '990', 'event.category': ['iam'], 'event.type': ['group', 'creation'], 'event.outcome': 'success' },
  },
  {
    line: 'Jun 14 08:07:17 buildhost useradd[7011]: new user: name=runner, UID=990, GID=990, home=/var/lib/runner, shell=/usr/sbin/nologin',
    want: { 'user.name': 'runner', 'user.id': '990', 'group.id': '990', 'system.auth.useradd.home': '/var/lib/runner', 'system.auth.useradd.shell': '/usr/sbin/nologin', 'event.category': ['iam'], 'event.type': ['user', 'creation'], 'event.outcome': 'success', 'related.user': ['runner'] },
  },
  {
    // Filebeat's PAM user grok: the "by" user acts, the "for" user is the effective one.
    line: 'Jun 14 08:08:18 buildhost sudo: pam_unix(sudo-i:session): session opened for user root(uid=0) by carol(uid=1000)',
    want: { 'user.name': 'carol', 'user.id': '1000', 'user.effective.name': 'root', 'related.user': ['carol', 'root'], 'event.category': ['session'], 'event.type': ['start'] },
  },
  {
    line: 'Jun 14 08:09:19 buildhost sshd[7020]: pam_succeed_if(sshd:auth): requirement "uid >= 1000" not met by user "root"',
    want: { 'user.name': 'root', 'related.user': ['root'], 'event.outcome': 'failure', 'related.hosts': ['buildhost'] },
  },
];

test('lines of the kinds in Filebeat\'s system/auth corpus get the fields Filebeat gives them', () => {
  for (const { line, want } of cases) {
    const got = parseRecord(line, {}, observed, utc);
    assert.equal(got.status, 'parsed', line);
    for (const [key, value] of Object.entries(want)) assert.deepEqual(got.fields[key], value, `${key}: ${line}`);
  }
});
