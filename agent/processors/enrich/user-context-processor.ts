// Adds `user.name` where a record knows only the uid (`user.id`, or the journal's `_UID`), from the
// host's account database. The file is re-read when it changed (checked at most every 30 s), so
// accounts created after start are named too.
import { readFileSync, statSync } from 'node:fs';
import type { LogRecordProcessor, ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import { ecsAttr, journaldAttr } from '../../../core/wire.ts';
import type { EcsAttributes } from '../auth/fields.ts';
import { parsePasswd } from './passwd.ts';

export class UserContextProcessor implements LogRecordProcessor {
  #path: string;
  #byUid = new Map<string, string>();
  #mtimeMs = -1;
  #checkedAt = -Infinity;

  constructor(options: { passwdPath?: string } = {}) {
    this.#path = options.passwdPath ?? '/etc/passwd';
  }

  /** Name of a uid, or undefined when the database does not know it or cannot be read. */
  nameOf(uid: string): string | undefined {
    const now = Date.now();
    if (now - this.#checkedAt > 30_000) {
      this.#checkedAt = now;
      try {
        const st = statSync(this.#path);
        if (st.mtimeMs !== this.#mtimeMs) {
          this.#byUid = parsePasswd(readFileSync(this.#path, 'utf8'));
          this.#mtimeMs = st.mtimeMs;
        }
      } catch {
        // Unreadable database: records keep their uid only; nothing is lost.
      }
    }
    return this.#byUid.get(uid);
  }

  onEmit(record: ReadWriteLogRecord): void {
    if (record.attributes[ecsAttr.userName] !== undefined) return;
    const raw = record.attributes[ecsAttr.userId] ?? record.attributes[journaldAttr.uid];
    if (typeof raw !== 'string' && typeof raw !== 'number') return;
    const uid = String(raw);
    const name = this.nameOf(uid);
    if (name === undefined) return;
    // Literal keys, straight onto the attributes: see writeAuthEvent (auth/fields.ts).
    const attributes = record.attributes as EcsAttributes;
    attributes['user.name'] = name;
    if (attributes['user.id'] === undefined) attributes['user.id'] = uid;
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
