import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { parseRecord } from '../../../../agent/processors/parse-record.ts';
import { timeZoneResolver } from '../../../../agent/processors/syslog/time.ts';

type Expect = Record<string, unknown> & { '@status'?: string; '@time'?: string; '@parser'?: string };

function lines(name: string): string[] {
  return readFileSync(new URL(`../../../fixtures/auth/${name}`, import.meta.url), 'utf8').split('\n').filter((l) => l !== '');
}

// Read in March 2025, zone of the host: UTC.
const observed = Date.UTC(2025, 2, 4, 12, 0, 0);
const utc = timeZoneResolver('UTC');

function check(name: string, expectations: Expect[]): void {
  const all = lines(name);
  assert.equal(all.length, expectations.length, `${name}: one expectation per fixture line`);
  all.forEach((line, i) => {
    const want = expectations[i] ?? {};
    const got = parseRecord(line, {}, observed, utc);
    assert.equal(got.status, want['@status'] ?? 'parsed', `${name}:${i + 1} status: ${line}`);
    if (want['@parser'] !== undefined) assert.equal(got.parser, want['@parser'], `${name}:${i + 1} parser`);
    if (want['@time'] !== undefined) {
      assert.ok(got.time, `${name}:${i + 1} has a time`);
      assert.equal(new Date(got.time.ms).toISOString(), want['@time'], `${name}:${i + 1} time`);
    }
    for (const [key, value] of Object.entries(want)) {
      if (key.startsWith('@')) continue;
      assert.deepEqual(got.fields[key], value, `${name}:${i + 1} ${key}: ${line}`);
    }
  });
}

const authFail = ['info'];

test('Debian/Ubuntu auth.log (traditional timestamps): every ECS field', () => {
  check('debian-ubuntu.log', [
    { '@parser': 'sshd', '@time': '2025-03-04T09:15:02.000Z', 'event.kind': 'event', 'event.action': 'ssh_login', 'event.category': ['authentication', 'session'], 'event.type': ['info'], 'event.outcome': 'success', 'user.name': 'builder', 'source.ip': '198.51.100.23', 'source.port': 50122, 'process.name': 'sshd', 'process.pid': 40211, 'host.hostname': 'ci-runner-07', 'related.hosts': ['ci-runner-07'], 'related.user': ['builder'], 'related.ip': ['198.51.100.23'], 'system.auth.ssh.method': 'publickey', 'system.auth.ssh.signature': 'ED25519 SHA256:q1W2e3R4t5Y6u7I8o9P0a1S2d3F4g5H6j7K8l9Z0x1C', 'event.timezone': '+00:00' },
    { '@parser': 'pam', 'event.action': 'session_opened', 'event.category': ['session'], 'event.type': ['start'], 'user.name': 'builder', 'user.id': '1001', 'system.auth.pam.service': 'sshd' },
    { '@parser': 'systemd-logind', 'event.action': 'logind_new_session', 'user.name': 'builder', 'system.auth.session.id': '381', 'process.pid': 512 },
    { '@parser': 'sudo', 'event.action': 'sudo_command', 'event.outcome': 'success', 'user.name': 'builder', 'user.effective.name': 'root', 'system.auth.sudo.tty': 'pts/2', 'system.auth.sudo.pwd': '/srv/build', 'system.auth.sudo.command': '/usr/bin/apt-get install -y jq', 'related.user': ['builder', 'root'], 'process.pid': undefined, message: 'builder : TTY=pts/2 ; PWD=/srv/build ; USER=root ; COMMAND=/usr/bin/apt-get install -y jq' },
    { 'event.action': 'sudo_incorrect_password', 'event.outcome': 'failure', 'event.type': authFail, 'user.name': 'builder', 'system.auth.sudo.error': '3 incorrect password attempts', 'system.auth.sudo.command': '/bin/bash' },
    { 'event.action': 'sudo_not_in_sudoers', 'event.outcome': 'failure', 'user.name': 'mallory', 'user.effective.name': 'root', 'system.auth.sudo.error': 'user NOT in sudoers', 'system.auth.sudo.command': '/bin/cat /etc/shadow' },
    { 'event.action': 'ssh_login', 'system.auth.ssh.event': 'Invalid', 'event.outcome': 'failure', 'user.name': 'oracle', 'source.ip': '192.0.2.77', 'source.port': 41820 },
    { 'event.action': 'ssh_login', 'system.auth.ssh.event': 'Failed', 'system.auth.ssh.method': 'password', 'event.type': authFail, 'user.name': 'oracle', 'source.ip': '192.0.2.77' },
    { 'event.action': 'ssh_too_many_auth_failures', 'event.outcome': 'failure', 'user.name': 'oracle', 'source.ip': '192.0.2.77', 'source.port': 41820 },
    { 'event.action': 'ssh_connection_closed_preauth', 'user.name': 'root', 'source.ip': '192.0.2.77', 'source.port': 41900 },
    { 'event.action': 'ssh_disconnect', 'source.ip': '198.51.100.23', 'source.port': 50122, 'event.reason': 'disconnected by user' },
    { 'event.action': 'session_closed', 'event.type': ['end'], 'user.name': 'builder' },
    { 'event.action': 'logind_removed_session', 'system.auth.session.id': '381' },
    { '@parser': 'su', 'event.action': 'su', 'event.outcome': 'success', 'user.name': 'builder', 'user.effective.name': 'postgres' },
    { 'event.action': 'su', 'event.outcome': 'failure', 'user.name': 'builder', 'user.effective.name': 'root' },
    { '@parser': 'useradd', 'event.action': 'user_created', 'event.category': ['iam'], 'event.type': ['user', 'creation'], 'user.name': 'svc_deploy', 'user.id': '1002', 'group.id': '1002', 'system.auth.useradd.home': '/home/svc_deploy', 'system.auth.useradd.shell': '/bin/bash' },
    { 'event.action': 'group_created', 'event.type': ['group', 'creation'], 'group.name': 'docker', 'group.id': '998' },
    { 'event.action': 'group_member_added', 'group.name': 'docker', 'user.name': 'svc_deploy' },
    { 'event.action': 'group_member_added', 'group.name': 'docker', 'user.name': 'builder', 'user.effective.name': 'root' },
    { '@parser': 'pam', 'event.action': 'password_changed', 'user.name': 'svc_deploy', 'system.auth.pam.service': 'passwd' },
    { 'event.action': 'password_expiry_changed', 'user.name': 'svc_deploy' },
    { 'event.action': 'user_deleted', 'event.type': ['user', 'deletion'], 'user.name': 'olduser' },
    { 'event.action': 'group_deleted', 'group.name': 'oldgroup' },
    // A program no parser knows: header fields, the message, and a status that says so.
    { '@status': 'header_only', 'process.name': 'CRON', 'process.pid': 41200, message: '(root) CMD (run-parts /etc/cron.hourly)', 'event.action': undefined, 'event.kind': 'event', 'related.hosts': ['ci-runner-07'] },
  ]);
});

test('RHEL/Rocky secure (RFC 3339 timestamps with offsets, IPv6)', () => {
  check('rhel-rocky.log', [
    { '@time': '2025-03-04T09:15:02.481Z', 'event.outcome': 'success', 'system.auth.ssh.method': 'password', 'user.name': 'jenkins', 'source.ip': '10.20.30.40', 'event.timezone': '+00:00', 'host.hostname': 'rocky9-build' },
    { '@time': '2025-03-04T14:15:03.000Z', 'event.outcome': 'failure', 'system.auth.ssh.method': 'publickey', 'user.name': 'git', 'source.ip': '2001:db8::7', 'related.ip': ['2001:db8::7'], 'event.timezone': '-05:00' },
    { '@time': '2025-03-04T07:15:04.000Z', '@parser': 'pam', 'event.action': 'authentication_failure', 'user.name': 'root', 'source.ip': '203.0.113.50', 'system.auth.pam.service': 'sshd' },
    { 'event.action': 'su', 'event.outcome': 'success', 'user.name': 'jenkins', 'user.effective.name': 'root', 'system.auth.sudo.tty': 'pts/0' },
    { 'event.action': 'su', 'event.outcome': 'failure', 'user.name': 'jenkins', 'user.effective.name': 'root' },
    { 'event.action': 'ssh_too_many_auth_failures', 'user.name': 'root', 'source.port': 2222 },
    { '@parser': 'sshd', 'process.name': 'sshd-session', 'system.auth.ssh.method': 'keyboard-interactive/pam', 'user.name': 'ops', 'event.outcome': 'success' },
    { 'event.action': 'sudo_command', 'system.auth.sudo.tty': 'unknown', 'user.name': 'jenkins', 'system.auth.sudo.command': '/usr/bin/podman ps' },
    { 'event.action': 'ssh_dropped_connection', 'system.auth.ssh.dropped_ip': '198.51.100.200', 'source.ip': '198.51.100.200' },
  ]);
});

test('Alpine/busybox syslogd (facility.level after the host name)', () => {
  check('alpine-busybox.log', [
    { 'event.action': 'ssh_login', 'event.outcome': 'success', 'user.name': 'ci', 'host.hostname': 'alpine-ci', 'process.pid': 1201 },
    { '@parser': 'su', 'event.outcome': 'success', 'user.name': 'ci', 'user.effective.name': 'root', 'system.auth.sudo.tty': 'pts/0', 'process.pid': undefined },
    { 'event.outcome': 'failure', 'user.name': 'ci', 'user.effective.name': 'root' },
    { 'event.action': 'ssh_connection_closed_preauth', 'source.ip': '172.16.5.10', 'user.name': undefined },
  ]);
});

test('program names that are Object.prototype keys find no parser and do not throw', () => {
  for (const program of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    const got = parseRecord(`Mar  4 09:00:00 host ${program}[1]: Accepted password for x from 192.0.2.1 port 22 ssh2`, {}, observed, utc);
    assert.equal(got.status, 'header_only', program);
    assert.equal(got.fields['process.name'], program);
  }
});

test('a line no parser knows is kept whole and marked unparsed', () => {
  const got = parseRecord('kernel panic? no: just some text', {}, observed, utc);
  assert.deepEqual(got, { status: 'unparsed', fields: {} });
});

test('journal entries: fields from the journald source, time from __REALTIME_TIMESTAMP', () => {
  const got = parseRecord('ignored body', {
    'journald.MESSAGE': 'Accepted publickey for deploy from 192.0.2.10 port 2200 ssh2: ECDSA SHA256:zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz',
    'journald.SYSLOG_IDENTIFIER': 'sshd',
    'journald._PID': '4242',
    'journald._HOSTNAME': 'deb12',
    'journald.__REALTIME_TIMESTAMP': '1741079702123456',
  }, observed, utc);
  assert.equal(got.status, 'parsed');
  assert.equal(got.fields['user.name'], 'deploy');
  assert.equal(got.fields['process.pid'], 4242);
  assert.equal(got.fields['host.hostname'], 'deb12');
  assert.equal(got.time?.ms, 1741079702123);
  assert.equal(got.time?.subMsNanos, 456_000);
});

const line = (program: string, message: string) => parseRecord(`Mar  4 10:00:00 h ${program}[1]: ${message}`, {}, observed, utc);

test('sshd: a user name holding ` from <ip> port <n>` cannot forge source.ip (the address is the one after the name)', () => {
  const forged = 'admin from 203.0.113.9 port 22';
  const cases: [string, string | undefined][] = [
    [`Failed password for invalid user ${forged} from 198.51.100.7 port 40000 ssh2`, 'ssh_login'],
    [`Failed password for ${forged} from 198.51.100.7 port 40000 ssh2`, 'ssh_login'],
    [`Accepted publickey for ${forged} from 198.51.100.7 port 40000 ssh2: ED25519 SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG`, 'ssh_login'],
    [`Invalid user ${forged} from 198.51.100.7 port 40000`, 'ssh_login'],
    [`error: maximum authentication attempts exceeded for invalid user ${forged} from 198.51.100.7 port 40000 ssh2 [preauth]`, 'ssh_too_many_auth_failures'],
    ['Disconnecting invalid user admin 203.0.113.9 port 22: Too many authentication failures 198.51.100.7 port 40000: Too many authentication failures [preauth]', 'ssh_too_many_auth_failures'],
    ['Connection closed by invalid user admin 203.0.113.9 port 22 198.51.100.7 port 40000 [preauth]', 'ssh_connection_closed_preauth'],
    ['Disconnected from user admin 203.0.113.9 port 22 198.51.100.7 port 40000', 'ssh_disconnect'],
  ];
  for (const [message, action] of cases) {
    const got = line('sshd', message);
    assert.equal(got.fields['event.action'], action, message);
    assert.equal(got.fields['source.ip'], '198.51.100.7', message);
    assert.equal(got.fields['source.port'], 40000, message);
    assert.deepEqual(got.fields['related.ip'], ['198.51.100.7'], message);
  }
  assert.equal(line('sshd', cases[0]![0]).fields['user.name'], forged);
  assert.equal(line('sshd', cases[2]![0]).fields['system.auth.ssh.signature'], 'ED25519 SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG');
  // A certificate login: more after the key's fingerprint.
  const cert = line('sshd', 'Accepted publickey for git from 198.51.100.7 port 40000 ssh2: ED25519-CERT SHA256:abc ID ci-key (serial 7) CA ED25519 SHA256:def');
  assert.deepEqual([cert.fields['user.name'], cert.fields['source.ip'], cert.fields['system.auth.ssh.signature']], ['git', '198.51.100.7', 'ED25519-CERT SHA256:abc']);
});

test('sudo: CHROOT, GROUP, TSID and ENV are read past in their order; only COMMAND is required', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; TSID=000001 ; COMMAND=/bin/bash', { 'event.action': 'sudo_command', 'user.effective.name': 'root', 'system.auth.sudo.command': '/bin/bash' }],
    ['alice : TTY=pts/0 ; CHROOT=/srv ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls', { 'system.auth.sudo.pwd': '/home/alice', 'user.effective.name': 'root' }],
    ['alice : TTY=pts/0 ; PWD=/tmp ; USER=root ; GROUP=wheel ; TSID=00/00/01 ; ENV=A=1 B=2 ; COMMAND=/usr/bin/id -u', { 'user.effective.name': 'root', 'system.auth.sudo.command': '/usr/bin/id -u', 'process.working_directory': '/tmp' }],
    ['alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; TSID=000002 ; COMMAND=/bin/sh', { 'event.action': 'sudo_incorrect_password', 'system.auth.sudo.error': '3 incorrect password attempts' }],
    ['alice : PWD=/srv/a ; b ; USER=root ; COMMAND=/bin/true', { 'system.auth.sudo.pwd': '/srv/a ; b', 'system.auth.sudo.tty': undefined }],
    ['alice : COMMAND=/bin/true', { 'user.name': 'alice', 'user.effective.name': undefined, 'system.auth.sudo.command': '/bin/true' }],
  ];
  for (const [message, want] of cases) {
    const got = line('sudo', message);
    assert.equal(got.status, 'parsed', message);
    assert.equal(got.fields['user.name'], 'alice', message);
    for (const [key, value] of Object.entries(want)) assert.deepEqual(got.fields[key], value, `${key}: ${message}`);
  }
  assert.equal(line('sudo', 'alice : TTY=pts/0 ; PWD=/home/alice ; USER=root').status, 'header_only');
});

test('the auth parsers stay linear on 100 KB hostile messages', () => {
  // As the redaction rules' test: a deadline enforced by vm's timeout, which interrupts a runaway
  // regular expression. The sudo pattern took 1.2 s on 14 KB without COMMAND=, about cubic.
  const size = 100_000;
  const fill = (unit: string) => unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
  const messages: [string, string][] = [
    ['sudo', `alice : ${fill('x ; TTY=a ; PWD=b ; USER=c ; ENV=d ;')}`],
    ['sudo', `alice : ${fill(' ; ')}`],
    ['sudo', `alice : TTY=a ; PWD=${fill('b ; ')}`],
    ['sudo', `alice : TTY=a ; CHROOT=${fill('c ; PWD=')}`],
    ['sudo', `alice : ${fill('x ')}`],
    ['sshd', `Failed password for ${fill(' from 1.2.3.4 port 22')}`],
    ['sshd', `Failed password for ${fill('a from ')}`],
    ['sshd', `Invalid user ${fill(' from a')}`],
    ['sshd', `Connection closed by invalid user ${fill('a 1.2.3.4 port 22 ')}`],
    ['sshd', `Disconnecting invalid user ${fill('a 1.2.3.4 port 22: ')}`],
    ['sshd', `error: maximum authentication attempts exceeded for ${fill(' from 1.2.3.4 port 1')}`],
    ['sshd', `Accepted publickey for a from 1.2.3.4 port 22 ssh2: ${fill('A ')}`],
    ['sshd', fill(' ')],
  ];
  const context = vm.createContext({ messages, parse: (program: string, message: string) => line(program, message) });
  try {
    vm.runInContext('for (const [program, message] of messages) parse(program, message);', context, { timeout: 5_000 });
  } catch (error) {
    assert.fail((error as Error).message);
  }
});
