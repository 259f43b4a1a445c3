// A leader lock in Elasticsearch, so that several aggregators do not enforce retention at once: a
// document `retention-<namespace>` in the small index `ci-audit-locks`, created with
// op_type=create (only one creator wins) and holding an expiry. An expired lock is taken over with
// if_seq_no/if_primary_term, so two aggregators that both see it expired cannot both take it.
import { randomUUID } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { statusOf, toEsError } from '../index/es-errors.ts';

export const lockIndex = 'ci-audit-locks';

interface LockDoc {
  holder: string;
  acquired_at: string;
  expires_at: string;
}

export interface LeaderLock {
  holder: string;
  /** Releases the lock if we still hold it. Safe to call twice. */
  release(): Promise<void>;
}

/** Tries to take the lock for `ttlMs`; undefined when another holder's unexpired lock is there. */
export async function acquireLock(client: Client, url: string, name: string, ttlMs: number, now: () => Date = () => new Date()): Promise<LeaderLock | undefined> {
  const holder = randomUUID();
  const at = now();
  const doc: LockDoc = { holder, acquired_at: at.toISOString(), expires_at: new Date(at.getTime() + ttlMs).toISOString() };
  let seq: { if_seq_no: number; if_primary_term: number };
  try {
    const created = await client.index({ index: lockIndex, id: name, op_type: 'create', document: doc, refresh: 'true' });
    seq = { if_seq_no: created._seq_no!, if_primary_term: created._primary_term! };
  } catch (err) {
    if (statusOf(err) !== 409) throw toEsError(err, `taking the lock ${name}`, url, 'CIA_ERR_RETENTION_LOCK');
    const current = await client.get<LockDoc>({ index: lockIndex, id: name });
    if (current._source !== undefined && Date.parse(current._source.expires_at) > at.getTime()) return undefined;
    try {
      const taken = await client.index({ index: lockIndex, id: name, document: doc, if_seq_no: current._seq_no!, if_primary_term: current._primary_term!, refresh: 'true' });
      seq = { if_seq_no: taken._seq_no!, if_primary_term: taken._primary_term! };
    } catch (takeover) {
      if (statusOf(takeover) === 409) return undefined; // another aggregator took it first
      throw toEsError(takeover, `taking over the expired lock ${name}`, url, 'CIA_ERR_RETENTION_LOCK');
    }
  }
  let released = false;
  return {
    holder,
    release: async () => {
      if (released) return;
      released = true;
      try {
        await client.delete({ index: lockIndex, id: name, ...seq, refresh: 'true' });
      } catch (err) {
        // 409: it expired and someone else holds it now; 404: gone. Either way it is not ours.
        if (statusOf(err) !== 409 && statusOf(err) !== 404) throw toEsError(err, `releasing the lock ${name}`, url, 'CIA_ERR_RETENTION_LOCK');
      }
    },
  };
}
