// Real journal files for the journald tests: entries in the journal EXPORT format are piped into
// systemd-journal-remote, which writes (or appends to) a real journal file that the real
// journalctl then reads. No journald daemon runs in CI, but the files, the cursors, journalctl's
// follow mode and vacuuming (deleting the oldest file of a journal folder) are the real thing.
// Needs the Debian package systemd-journal-remote (`apt-get install systemd-journal-remote`).
import { spawn } from 'node:child_process';
import { access, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

export const journalRemote = '/usr/lib/systemd/systemd-journal-remote';
export const journalctl = '/usr/bin/journalctl';

export interface TestEntry {
  message: string | Buffer;
  identifier?: string;
  unit?: string;
  pid?: number;
  uid?: number;
  comm?: string;
  hostname?: string;
  /** Microseconds since the epoch. */
  realtimeUs?: number;
}

let monotonic = 1;
const bootId = '0123456789abcdef0123456789abcdef';

function field(name: string, value: string | Buffer): Buffer {
  if (typeof value === 'string' && !value.includes('\n')) return Buffer.from(`${name}=${value}\n`);
  // The export format's binary form: name, newline, 64-bit little-endian length, bytes, newline.
  const bytes = Buffer.from(value);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(bytes.length));
  return Buffer.concat([Buffer.from(`${name}\n`), size, bytes, Buffer.from('\n')]);
}

export function exportFormat(entries: readonly TestEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const us = e.realtimeUs ?? Date.now() * 1000 + monotonic;
    parts.push(field('__REALTIME_TIMESTAMP', String(us)), field('__MONOTONIC_TIMESTAMP', String(monotonic++)), field('_BOOT_ID', bootId));
    parts.push(field('MESSAGE', e.message));
    if (e.identifier !== undefined) parts.push(field('SYSLOG_IDENTIFIER', e.identifier));
    if (e.unit !== undefined) parts.push(field('_SYSTEMD_UNIT', e.unit));
    if (e.pid !== undefined) parts.push(field('_PID', String(e.pid)));
    if (e.uid !== undefined) parts.push(field('_UID', String(e.uid)));
    if (e.comm !== undefined) parts.push(field('_COMM', e.comm));
    if (e.hostname !== undefined) parts.push(field('_HOSTNAME', e.hostname));
    parts.push(Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

/** Appends entries to the journal file `file` (created if missing; its name must end in `.journal`). */
export async function appendJournal(file: string, entries: readonly TestEntry[]): Promise<void> {
  await access(journalRemote).catch(() => {
    throw new Error(`${journalRemote} is missing: install the Debian package systemd-journal-remote to run the journald tests`);
  });
  await mkdir(dirname(file), { recursive: true });
  const child = spawn(journalRemote, ['-o', file, '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(exportFormat(entries));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`systemd-journal-remote failed (${code}): ${stderr}`);
}
