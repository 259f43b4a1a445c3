// An auth.log/secure/journal entry -> ECS fields: picks the parsers by program name, so each line
// runs at most a few regular expressions. Pure; never throws.
import { ecsAttr } from '../../../core/wire.ts';
import { parseAccount } from './accounts.ts';
import type { Fields } from './fields.ts';
import { parseLogind, parsePam } from './pam.ts';
import { parseSshd } from './sshd.ts';
import { parseSu, parseSudo } from './sudo.ts';

type Parser = (message: string) => Fields | undefined;

// A Map, not an object: a program named `constructor` or `__proto__` must find nothing.
const byProgram = new Map<string, Parser>([
  ['sshd', parseSshd],
  ['sshd-session', parseSshd],
  ['sudo', parseSudo],
  ['su', parseSu],
  ['systemd-logind', parseLogind],
  ['useradd', parseAccount],
  ['userdel', parseAccount],
  ['usermod', parseAccount],
  ['groupadd', parseAccount],
  ['groupdel', parseAccount],
  ['groupmod', parseAccount],
  ['gpasswd', parseAccount],
  ['passwd', parseAccount],
  ['chpasswd', parseAccount],
  ['chage', parseAccount],
  ['adduser', parseAccount],
  ['addgroup', parseAccount],
]);

export interface AuthEntry {
  program: string;
  pid?: number;
  hostname?: string;
  message: string;
}

/** ECS fields of the entry plus the parser's name, or undefined when no parser knows the message. */
export function parseAuth(entry: AuthEntry): { parser: string; fields: Fields } | undefined {
  const program = entry.program;
  let fields: Fields | undefined;
  let parser = program;
  // PAM lines come from every service; they start with `pam_`.
  if (entry.message.startsWith('pam_')) {
    fields = parsePam(entry.message);
    parser = 'pam';
  }
  if (fields === undefined) {
    parser = program;
    fields = byProgram.get(program)?.(entry.message);
  }
  if (fields === undefined) return undefined;
  fields[ecsAttr.processName] = program;
  if (entry.pid !== undefined) fields[ecsAttr.processPid] = entry.pid;
  if (entry.hostname !== undefined && entry.hostname !== '') fields[ecsAttr.hostHostname] = entry.hostname;
  return { parser: parser === 'sshd-session' ? 'sshd' : parser, fields };
}
