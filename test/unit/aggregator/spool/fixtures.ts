// What the spool tests share: a scratch folder removed after the test, and mapped records to spool.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MappedRecord } from '../../../../aggregator/map/ecs.ts';

export async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ci-audit-spool-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** `n` records with ids `a:<from>`..., each message `<text><number>`. */
export function spooledRecords(from: number, n: number, text = 'line '): MappedRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    dataStream: 'logs-ci_audit.auth-default',
    id: `a:${from + i}`,
    document: { '@timestamp': '2026-11-26T09:00:00.000000001Z', message: `${text}${from + i}` },
    issues: [],
  }));
}
