// Account changes logged by shadow-utils (useradd, userdel, usermod, groupadd, groupdel, gpasswd,
// passwd, chage) and busybox's adduser/addgroup. ECS: category `iam`, types user/group + creation,
// deletion or change.
import { AuthEvent, idOf } from './fields.ts';

type Rule = [RegExp, (m: RegExpExecArray) => AuthEvent];

function user(action: string, type: string, name: string | undefined): AuthEvent {
  return new AuthEvent(action, ['iam'], ['user', type], 'success').user(name);
}

function group(action: string, type: string, name: string | undefined, gid?: string, member?: string): AuthEvent {
  const e = new AuthEvent(action, ['iam'], ['group', type], 'success');
  e.groupName = name;
  e.groupId = idOf(gid);
  return e.user(member);
}

const rules: Rule[] = [
  [/^new user: name=([^,]+), UID=(\d+), GID=(\d+), home=([^,]*), shell=([^,]*)/, (m) => {
    const e = user('user_created', 'creation', m[1]);
    e.userId = m[2] ?? '';
    e.groupId = m[3] ?? '';
    e.userHome = m[4] ?? '';
    e.userShell = m[5] ?? '';
    return e;
  }],
  [/^(?:new group|group added to \S+): name=([^,]+), GID=(\d+)/, (m) => group('group_created', 'creation', m[1], m[2])],
  [/^delete user '([^']+)'/, (m) => user('user_deleted', 'deletion', m[1])],
  [/^removed (?:shadow )?group '([^']+)' owned by '([^']+)'/, (m) => group('group_deleted', 'deletion', m[1], undefined, m[2])],
  [/^group '([^']+)' removed(?: from \S+)?$/, (m) => group('group_deleted', 'deletion', m[1])],
  [/^add '([^']+)' to (?:shadow )?group '([^']+)'/, (m) => group('group_member_added', 'change', m[2], undefined, m[1])],
  [/^delete '([^']+)' from (?:shadow )?group '([^']+)'/, (m) => group('group_member_removed', 'change', m[2], undefined, m[1])],
  [/^user (\S+) added by (\S+) to group (\S+)$/, (m) => group('group_member_added', 'change', m[3], undefined, m[1]).effectiveUser(m[2])],
  [/^user (\S+) removed by (\S+) from group (\S+)$/, (m) => group('group_member_removed', 'change', m[3], undefined, m[1]).effectiveUser(m[2])],
  [/^members of group (\S+) set by (\S+) to (.*)$/, (m) => group('group_members_set', 'change', m[1]).effectiveUser(m[2])],
  [/^(change user|lock user|unlock user) '([^']+)' (.*)$/, (m) => {
    const e = user('user_changed', 'change', m[2]);
    e.reason = `${m[1]} ${m[3]}`;
    return e;
  }],
  [/^password for '([^']+)' changed by '([^']+)'/, (m) => user('password_changed', 'change', m[1]).effectiveUser(m[2])],
  [/^changed password expiry for (\S+)$/, (m) => user('password_expiry_changed', 'change', m[1])],
  [/^change (?:user '([^']+)' )?password expiry/, (m) => user('password_expiry_changed', 'change', m[1])],
];

export function parseAccount(message: string): AuthEvent | undefined {
  for (const [pattern, build] of rules) {
    const m = pattern.exec(message);
    if (m !== null) return build(m);
  }
  return undefined;
}
