// An auth.log/secure/journal entry -> ECS fields: picks the parsers by program name, so each line
// runs at most a few regular expressions. Pure; never throws.
import { parseAccount } from './accounts.ts';
import type { AuthEntry, AuthEvent } from './fields.ts';
import { parseLogind, parsePam } from './pam.ts';
import { parseSshd } from './sshd.ts';
import { parseSu, parseSudo } from './sudo.ts';

type Parser = (message: string) => AuthEvent | undefined;

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

/**
 * The event in the entry's message, its `parser` set, or undefined when no parser knows the
 * message. writeAuthEvent puts it and the entry's program, pid and host on a record.
 */
export function parseAuth(entry: AuthEntry): AuthEvent | undefined {
  const program = entry.program;
  // PAM lines come from every service; they start with `pam_`.
  if (entry.message.startsWith('pam_')) {
    const pam = parsePam(entry.message);
    if (pam !== undefined) {
      pam.parser = 'pam';
      return pam;
    }
  }
  const event = byProgram.get(program)?.(entry.message);
  if (event !== undefined) event.parser = program === 'sshd-session' ? 'sshd' : program;
  return event;
}
