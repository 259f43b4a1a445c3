// Account changes logged by shadow-utils (useradd, userdel, usermod, groupadd, groupdel, gpasswd,
// passwd, chage) and busybox's adduser/addgroup. ECS: category `iam`, types user/group + creation,
// deletion or change.
import { ecsAttr } from '../../../core/wire.ts';
import { addUser, event, idOf, type Fields } from './fields.ts';

type Rule = [RegExp, (m: RegExpExecArray) => Fields];

function user(action: string, type: string, name: string | undefined, extra?: (f: Fields) => void): Fields {
  const fields = event(action, ['iam'], ['user', type], 'success');
  addUser(fields, ecsAttr.userName, name);
  extra?.(fields);
  return fields;
}

function group(action: string, type: string, name: string | undefined, gid?: string, member?: string): Fields {
  const fields = event(action, ['iam'], ['group', type], 'success');
  if (name !== undefined) fields[ecsAttr.groupName] = name;
  const id = idOf(gid);
  if (id !== undefined) fields[ecsAttr.groupId] = id;
  addUser(fields, ecsAttr.userName, member);
  return fields;
}

const rules: Rule[] = [
  [/^new user: name=([^,]+), UID=(\d+), GID=(\d+), home=([^,]*), shell=([^,]*)/, (m) =>
    user('user_created', 'creation', m[1], (f) => {
      f[ecsAttr.userId] = m[2] ?? '';
      f[ecsAttr.groupId] = m[3] ?? '';
      f[ecsAttr.userHome] = m[4] ?? '';
      f[ecsAttr.userShell] = m[5] ?? '';
    })],
  [/^(?:new group|group added to \S+): name=([^,]+), GID=(\d+)/, (m) => group('group_created', 'creation', m[1], m[2])],
  [/^delete user '([^']+)'/, (m) => user('user_deleted', 'deletion', m[1])],
  [/^removed (?:shadow )?group '([^']+)' owned by '([^']+)'/, (m) => group('group_deleted', 'deletion', m[1], undefined, m[2])],
  [/^group '([^']+)' removed(?: from \S+)?$/, (m) => group('group_deleted', 'deletion', m[1])],
  [/^add '([^']+)' to (?:shadow )?group '([^']+)'/, (m) => group('group_member_added', 'change', m[2], undefined, m[1])],
  [/^delete '([^']+)' from (?:shadow )?group '([^']+)'/, (m) => group('group_member_removed', 'change', m[2], undefined, m[1])],
  [/^user (\S+) added by (\S+) to group (\S+)$/, (m) => {
    const f = group('group_member_added', 'change', m[3], undefined, m[1]);
    addUser(f, ecsAttr.userEffectiveName, m[2]);
    return f;
  }],
  [/^user (\S+) removed by (\S+) from group (\S+)$/, (m) => {
    const f = group('group_member_removed', 'change', m[3], undefined, m[1]);
    addUser(f, ecsAttr.userEffectiveName, m[2]);
    return f;
  }],
  [/^members of group (\S+) set by (\S+) to (.*)$/, (m) => {
    const f = group('group_members_set', 'change', m[1]);
    addUser(f, ecsAttr.userEffectiveName, m[2]);
    return f;
  }],
  [/^(change user|lock user|unlock user) '([^']+)' (.*)$/, (m) => user('user_changed', 'change', m[2], (f) => { f[ecsAttr.eventReason] = `${m[1]} ${m[3]}`; })],
  [/^password for '([^']+)' changed by '([^']+)'/, (m) => user('password_changed', 'change', m[1], (f) => addUser(f, ecsAttr.userEffectiveName, m[2]))],
  [/^changed password expiry for (\S+)$/, (m) => user('password_expiry_changed', 'change', m[1])],
  [/^change (?:user '([^']+)' )?password expiry/, (m) => user('password_expiry_changed', 'change', m[1])],
];

export function parseAccount(message: string): Fields | undefined {
  for (const [pattern, build] of rules) {
    const m = pattern.exec(message);
    if (m !== null) return build(m);
  }
  return undefined;
}
