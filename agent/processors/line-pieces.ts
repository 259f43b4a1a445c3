// What the parse processor tells the redaction processor about the record it just parsed: the
// attributes it wrote that are pieces of the line (substrings of the body, unchanged). When the
// line as a whole cannot hold a secret, neither can any piece of it (redaction/prefilter.ts), so
// the redaction processor need not look at them again: only the attributes that came from
// elsewhere (the source, enrichment, values a parser built) are checked on their own.
//
// The processors run one record at a time, in order, in one call (the LoggerProvider's emit):
// what the parse processor left here describes the record the redaction processor sees if and
// only if the attributes object and the body are the same ones. Each value is kept too, and a
// piece counts only while the record still holds that text: a processor that replaced it in
// between (enrichment) gets its value checked. An array counts when it holds one element, that
// text (compared by content, so an array changed in place is checked too).
import type { Attributes } from '@opentelemetry/api';
import type { AuthEntry, AuthEvent, EcsAttributes } from './auth/fields.ts';

/**
 * The keys whose values the auth parsers cut out of a syslog line unchanged: every one is the
 * message (the line after its header), a capture of a regular expression run on the line or on
 * a capture of it, or an array of such captures. Not here: values a parser builds (event.reason,
 * system.auth.ssh.signature: concatenations), constants (event.*, system.auth.ssh.event's
 * `Invalid`) and the structural keys the redaction processor skips anyway (IPs, ports, pids).
 */
export const linePieceKeys = [
  'message',
  'process.name',
  'host.hostname',
  'related.hosts',
  'user.name',
  'user.id',
  'user.effective.name',
  'related.user',
  'group.name',
  'group.id',
  'source.address',
  'system.auth.ssh.method',
  'related.hash',
  'system.auth.sudo.error',
  'system.auth.sudo.user',
  'system.auth.sudo.tty',
  'system.auth.sudo.pwd',
  'process.working_directory',
  'system.auth.sudo.command',
  'process.command_line',
  'system.auth.useradd.home',
  'system.auth.useradd.shell',
  'system.auth.session.id',
  'system.auth.pam.service',
] as const satisfies readonly (keyof EcsAttributes)[];

/** Index of each key of linePieceKeys in LinePieces' `values`. */
export const linePieceIndex: ReadonlyMap<string, number> = new Map(linePieceKeys.map((key, i) => [key, i]));
/** The same, by name, for recordAuth: an index follows its key wherever the key stands in the list. */
const at = Object.fromEntries(linePieceIndex) as Record<(typeof linePieceKeys)[number], number>;

/** One per processor chain (build.ts): written by the parse processor, read by the redaction processor. */
export class LinePieces {
  /** The attributes and body of the record described; undefined when the last record had no pieces. */
  attributes: Attributes | undefined = undefined;
  body: string | undefined = undefined;
  /**
   * By linePieceIndex: the text written under that key as a piece of `body` (for an array: its
   * one element), or undefined.
   */
  readonly values: (string | undefined)[] = linePieceKeys.map(() => undefined);

  clear(): void {
    this.attributes = undefined;
    this.body = undefined;
  }

  /**
   * Records the pieces of `body` that writeAuthEvent just wrote onto `out` for `e` and `entry`,
   * where `entry.message` is a substring of `body` (the syslog path; not a journal entry, whose
   * message is an attribute).
   */
  recordAuth(body: string, e: AuthEvent, entry: AuthEntry, out: Attributes): void {
    this.attributes = out;
    this.body = body;
    const v = this.values;
    const host = entry.hostname !== undefined && entry.hostname !== '' ? entry.hostname : undefined;
    v[at['message']] = entry.message;
    v[at['process.name']] = entry.program;
    v[at['host.hostname']] = host;
    v[at['related.hosts']] = host;
    v[at['user.name']] = e.userName;
    v[at['user.id']] = e.userId;
    v[at['user.effective.name']] = e.effectiveName;
    v[at['related.user']] = e.relatedUser?.length === 1 ? e.relatedUser[0] : undefined;
    v[at['group.name']] = e.groupName;
    v[at['group.id']] = e.groupId;
    v[at['source.address']] = e.sourceAddress;
    v[at['system.auth.ssh.method']] = e.sshMethod;
    v[at['related.hash']] = e.keyHash;
    v[at['system.auth.sudo.error']] = e.sudoError;
    v[at['system.auth.sudo.user']] = e.sudoUser;
    v[at['system.auth.sudo.tty']] = e.tty;
    v[at['system.auth.sudo.pwd']] = e.sudoPwd;
    v[at['process.working_directory']] = e.sudoPwd;
    v[at['system.auth.sudo.command']] = e.sudoCommand;
    v[at['process.command_line']] = e.sudoCommand;
    v[at['system.auth.useradd.home']] = e.userHome;
    v[at['system.auth.useradd.shell']] = e.userShell;
    v[at['system.auth.session.id']] = e.sessionId;
    v[at['system.auth.pam.service']] = e.pamService;
  }
}
