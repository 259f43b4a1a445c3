// What an auth parser understood of one message (AuthEvent), and how it becomes ECS attributes
// (writeAuthEvent): the one place that keeps `related.user` / `related.ip` in step with the fields
// they relate to, and the one place that names the auth fields on the wire.
import { isIP } from 'node:net';
import type { AttributeValue } from '@opentelemetry/api';
import type { ecsAttr } from '../../../core/wire.ts';

export type Outcome = 'success' | 'failure' | 'unknown';

/** Filebeat's name for the PAM service; not an ECS field, so not in core/wire.ts. */
export const pamServiceAttr = 'system.auth.pam.service';

/**
 * Attributes named by their wire keys, written out literally below: a typo, or a key renamed in
 * core/wire.ts, fails the type check.
 */
export type EcsAttributes = { [K in (typeof ecsAttr)[keyof typeof ecsAttr] | typeof pamServiceAttr]?: AttributeValue };

/** An ECS auth event: kind `event`, an action, categories, types and (mostly) an outcome. */
export class AuthEvent {
  /** Which parser understood it (`sshd`, `pam`, `sudo`, ...); set by parseAuth. */
  parser = '';
  readonly action: string;
  readonly category: string[];
  readonly type: string[];
  readonly outcome: Outcome | undefined;
  reason: string | undefined = undefined;
  userName: string | undefined = undefined;
  userId: string | undefined = undefined;
  effectiveName: string | undefined = undefined;
  groupName: string | undefined = undefined;
  groupId: string | undefined = undefined;
  sourceIp: string | undefined = undefined;
  sourceAddress: string | undefined = undefined;
  sourcePort: number | undefined = undefined;
  /** Every user named above, in the order they were added, without duplicates. */
  relatedUser: string[] | undefined = undefined;
  sshEvent: string | undefined = undefined;
  sshMethod: string | undefined = undefined;
  sshSignature: string | undefined = undefined;
  sshDroppedIp: string | undefined = undefined;
  /** The key's hash of a public-key login (`related.hash`). */
  keyHash: string | undefined = undefined;
  sudoError: string | undefined = undefined;
  sudoUser: string | undefined = undefined;
  tty: string | undefined = undefined;
  sudoPwd: string | undefined = undefined;
  /** sudo's COMMAND, also `process.command_line`; its PWD is also `process.working_directory`. */
  sudoCommand: string | undefined = undefined;
  userHome: string | undefined = undefined;
  userShell: string | undefined = undefined;
  sessionId: string | undefined = undefined;
  pamService: string | undefined = undefined;

  constructor(action: string, category: string[], type: string[], outcome?: Outcome) {
    this.action = action;
    this.category = category;
    this.type = type;
    this.outcome = outcome;
  }

  /** Sets `user.name` and adds it to `related.user`. Empty names are skipped. */
  user(name: string | undefined): this {
    if (name === undefined || name === '') return this;
    this.userName = name;
    this.#relate(name);
    return this;
  }

  /** Sets `user.effective.name` and adds it to `related.user`. Empty names are skipped. */
  effectiveUser(name: string | undefined): this {
    if (name === undefined || name === '') return this;
    this.effectiveName = name;
    this.#relate(name);
    return this;
  }

  /** A source address: `source.ip` (and `related.ip`) when it is an IP, else `source.address`. */
  source(address: string | undefined, port?: string): this {
    if (address === undefined || address === '') return this;
    if (isIP(address) !== 0) this.sourceIp = address;
    else this.sourceAddress = address;
    if (port !== undefined) {
      const n = Number(port);
      if (Number.isInteger(n) && n >= 0 && n <= 65_535) this.sourcePort = n;
    }
    return this;
  }

  #relate(name: string): void {
    if (this.relatedUser === undefined) this.relatedUser = [name];
    else if (!this.relatedUser.includes(name)) this.relatedUser.push(name);
  }
}

/** The entry an event was parsed from: its program, pid and host are fields of the event too. */
export interface AuthEntry {
  program: string;
  pid?: number;
  hostname?: string;
  message: string;
}

/**
 * Writes the event and its entry onto `out` (a record's attributes, or a fresh object).
 *
 * The keys are string literals on purpose: V8 adds a property written under a literal key as a
 * named property, and keeps an object with dozens of those in fast mode. A property added under a
 * computed key (`out[ecsAttr.userName]`, a loop over keys) counts against a limit of about 16
 * properties, past which V8 turns the object into a hash table: every later write to it, every
 * `for...in` over it (redaction, the exporter) then costs several times more. An auth record has
 * 25 to 30 attributes.
 */
export function writeAuthEvent(e: AuthEvent, entry: AuthEntry, out: EcsAttributes): void {
  out['event.kind'] = 'event';
  out['event.action'] = e.action;
  out['event.category'] = e.category;
  out['event.type'] = e.type;
  if (e.outcome !== undefined) out['event.outcome'] = e.outcome;
  if (e.reason !== undefined) out['event.reason'] = e.reason;
  if (e.userName !== undefined) out['user.name'] = e.userName;
  if (e.userId !== undefined) out['user.id'] = e.userId;
  if (e.effectiveName !== undefined) out['user.effective.name'] = e.effectiveName;
  if (e.relatedUser !== undefined) out['related.user'] = e.relatedUser;
  if (e.groupName !== undefined) out['group.name'] = e.groupName;
  if (e.groupId !== undefined) out['group.id'] = e.groupId;
  if (e.sourceIp !== undefined) {
    out['source.ip'] = e.sourceIp;
    out['related.ip'] = [e.sourceIp];
  }
  if (e.sourceAddress !== undefined) out['source.address'] = e.sourceAddress;
  if (e.sourcePort !== undefined) out['source.port'] = e.sourcePort;
  if (e.sshEvent !== undefined) out['system.auth.ssh.event'] = e.sshEvent;
  if (e.sshMethod !== undefined) out['system.auth.ssh.method'] = e.sshMethod;
  if (e.sshSignature !== undefined) out['system.auth.ssh.signature'] = e.sshSignature;
  if (e.keyHash !== undefined) out['related.hash'] = [e.keyHash];
  if (e.sshDroppedIp !== undefined) out['system.auth.ssh.dropped_ip'] = e.sshDroppedIp;
  if (e.sudoError !== undefined) out['system.auth.sudo.error'] = e.sudoError;
  if (e.sudoUser !== undefined) out['system.auth.sudo.user'] = e.sudoUser;
  if (e.tty !== undefined) out['system.auth.sudo.tty'] = e.tty;
  if (e.sudoPwd !== undefined) {
    out['system.auth.sudo.pwd'] = e.sudoPwd;
    out['process.working_directory'] = e.sudoPwd;
  }
  if (e.sudoCommand !== undefined) {
    out['system.auth.sudo.command'] = e.sudoCommand;
    out['process.command_line'] = e.sudoCommand;
  }
  if (e.userHome !== undefined) out['system.auth.useradd.home'] = e.userHome;
  if (e.userShell !== undefined) out['system.auth.useradd.shell'] = e.userShell;
  if (e.sessionId !== undefined) out['system.auth.session.id'] = e.sessionId;
  if (e.pamService !== undefined) out['system.auth.pam.service'] = e.pamService;
  out.message = entry.message;
  out['process.name'] = entry.program;
  if (entry.pid !== undefined) out['process.pid'] = entry.pid;
  // As Filebeat: the host of an auth line is a related host.
  if (entry.hostname !== undefined && entry.hostname !== '') {
    out['host.hostname'] = entry.hostname;
    out['related.hosts'] = [entry.hostname];
  }
}

/** A numeric id as ECS keeps it (a keyword string), when it is one. */
export function idOf(text: string | undefined): string | undefined {
  return text !== undefined && /^\d{1,10}$/.test(text) ? text : undefined;
}
