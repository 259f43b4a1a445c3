// What `ci-audit status` and the agent's GET /status report: the sources with their offsets and
// lag, the disk buffer's use, the last acknowledgement and the chain head. Everything except the
// acknowledgements is read from the state folder, so the same function describes a stopped agent
// (from its files) and a running one (adding what only the process knows).
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentConfig } from '../../config/schema.ts';
import { redactUrl } from '../../core/secrets.ts';
import { version } from '../../core/version.ts';
import { rejectedDir, rejectedUsage } from '../rejected/rejected-store.ts';
import { checkpointPath, readCheckpoints } from '../sources/file/checkpoint.ts';
import { cursorPath, readCursor } from '../sources/journald/cursor-store.ts';
import type { ExportStatsSnapshot } from './export-stats.ts';

export interface FileStatus {
  path: string;
  /** Offset just past the last line whose delivery is settled (checkpoint). */
  offset: number;
  /** The file's size now; absent when it is gone or replaced (another inode at the path). */
  size?: number;
  /** Bytes written but not yet past the checkpoint. */
  lag_bytes?: number;
}

export interface SourceStatus {
  id: string;
  type: 'file' | 'journald';
  dataset: string;
  /** file: the checkpointed files. */
  files?: FileStatus[];
  /** file: the sum of the files' lag. */
  lag_bytes?: number;
  /** journald: whether a cursor is saved (the next start resumes there). */
  cursor_saved?: boolean;
  /** The checkpoint or cursor could not be read. */
  error?: string;
}

export interface AgentStatus {
  agent: { id: string; version: string; runner_type: string; state_dir: string; running: boolean; pid?: number; started_at?: string };
  output: {
    url: string;
    /** Time of the last batch the aggregator acknowledged; null when none since start (or not running). */
    last_ack_at: string | null;
    acked_records: number;
    failed_exports: number;
    last_error?: string;
  };
  sources: SourceStatus[];
  buffer: { type: 'memory' | 'disk'; bytes: number; max_bytes: number; used_ratio: number; segments: number };
  /** The last committed link of the hash chain (`<state_dir>/chain.json`); null before the first. */
  chain: { seq: number; hash: string } | null;
  /** Batches the aggregator rejected, set aside in `<state_dir>/rejected/` (ci-audit agent rejected list). */
  rejected: { batches: number; bytes: number; max_bytes: number };
}

export interface RunningInfo {
  pid: number;
  startedAt: Date;
  exports: ExportStatsSnapshot;
}

/** Reads the agent's state folder; `running` adds what only the running process knows. */
export async function collectAgentStatus(config: AgentConfig, running?: RunningInfo): Promise<AgentStatus> {
  const stateDir = config.agent.state_dir;
  const sources = await Promise.all(config.sources.map((source) => sourceStatus(source, stateDir)));
  const buffer = await bufferStatus(config);
  return {
    agent: {
      id: config.agent.id,
      version,
      runner_type: config.agent.runner_type,
      state_dir: stateDir,
      running: running !== undefined,
      ...(running === undefined ? {} : { pid: running.pid, started_at: running.startedAt.toISOString() }),
    },
    output: {
      url: redactUrl(config.output.url),
      last_ack_at: running?.exports.lastAckAt?.toISOString() ?? null,
      acked_records: running?.exports.ackedRecords ?? 0,
      failed_exports: running?.exports.failedExports ?? 0,
      ...(running?.exports.lastError === undefined ? {} : { last_error: running.exports.lastError }),
    },
    sources,
    buffer,
    chain: await chainHead(stateDir),
    rejected: { ...(await rejectedUsage(rejectedDir(stateDir))), max_bytes: config.output.rejected.max_bytes },
  };
}

async function sourceStatus(source: AgentConfig['sources'][number], stateDir: string): Promise<SourceStatus> {
  const base = { id: source.id, type: source.type, dataset: source.dataset };
  try {
    if (source.type === 'journald') {
      return { ...base, cursor_saved: (await readCursor(cursorPath(stateDir, source.id))) !== undefined };
    }
    const checkpoints = await readCheckpoints(checkpointPath(stateDir, source.id));
    const files = await Promise.all(
      checkpoints.map(async (c): Promise<FileStatus> => {
        const now = await stat(c.path, { bigint: true }).catch(() => undefined);
        if (now === undefined || now.dev.toString() !== c.dev || now.ino.toString() !== c.ino) return { path: c.path, offset: c.offset };
        const size = Number(now.size);
        return { path: c.path, offset: c.offset, size, lag_bytes: Math.max(0, size - c.offset) };
      }),
    );
    return { ...base, files, lag_bytes: files.reduce((sum, f) => sum + (f.lag_bytes ?? 0), 0) };
  } catch (err) {
    return { ...base, error: (err as Error).message };
  }
}

async function bufferStatus(config: AgentConfig): Promise<AgentStatus['buffer']> {
  const { type, max_bytes: maxBytes } = config.buffer;
  let bytes = 0;
  let segments = 0;
  if (type === 'disk') {
    const dir = join(config.agent.state_dir, 'buffer');
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      const info = await stat(join(dir, name)).catch(() => undefined);
      // Segment files carry the records; the small cursor file beside them does not count.
      if (info === undefined || !info.isFile() || name.endsWith('.json')) continue;
      bytes += info.size;
      segments += 1;
    }
  }
  return { type, bytes, max_bytes: maxBytes, used_ratio: maxBytes === 0 ? 0 : bytes / maxBytes, segments };
}

async function chainHead(stateDir: string): Promise<AgentStatus['chain']> {
  let text: string;
  try {
    text = await readFile(join(stateDir, 'chain.json'), 'utf8');
  } catch {
    return null;
  }
  try {
    const committed = (JSON.parse(text) as { committed?: { seq?: unknown; hash?: unknown } }).committed;
    if (typeof committed?.seq === 'number' && typeof committed.hash === 'string') return { seq: committed.seq, hash: committed.hash };
  } catch {
    // A torn or foreign file: the agent itself reports it at start (CIA_ERR_INTEGRITY_STATE).
  }
  return null;
}
