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
    v[0] = entry.message;
    v[1] = entry.program;
    const host = entry.hostname !== undefined && entry.hostname !== '';
    v[2] = host ? entry.hostname : undefined;
    v[3] = host ? entry.hostname : undefined;
    v[4] = e.userName;
    v[5] = e.userId;
    v[6] = e.effectiveName;
    v[7] = e.relatedUser?.length === 1 ? e.relatedUser[0] : undefined;
    v[8] = e.groupName;
    v[9] = e.groupId;
    v[10] = e.sourceAddress;
    v[11] = e.sshMethod;
    v[12] = e.keyHash;
    v[13] = e.sudoError;
    v[14] = e.sudoUser;
    v[15] = e.tty;
    v[16] = e.sudoPwd;
    v[17] = e.sudoPwd;
    v[18] = e.sudoCommand;
    v[19] = e.sudoCommand;
    v[20] = e.userHome;
    v[21] = e.userShell;
    v[22] = e.sessionId;
    v[23] = e.pamService;
  }
}
