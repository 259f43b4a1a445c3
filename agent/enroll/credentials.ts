// The credential `ci-audit agent enroll` stores: `<agent.state_dir>/credentials.json`, mode 0600, in a
// state folder no other user can write to (or they could swap the file). Read by the agent at start.
import { mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { temporaryPrefix, writeFileDurably } from '../../core/durable-file.ts';
import { CiAuditError } from '../../core/errors.ts';

export interface StoredCredential {
  version: 1;
  agent_id: string;
  token: string;
  /** The aggregator that issued it, without credentials. */
  url: string;
  enrolled_at: string;
}

export function credentialsPath(stateDir: string): string {
  return join(stateDir, 'credentials.json');
}

/** Creates the state folder (0700) when missing and refuses one that group or others may write to. */
export async function checkStateDir(stateDir: string): Promise<void> {
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw credentialsError(`cannot create the state folder ${stateDir} (agent.state_dir): ${(cause as Error).message}`, stateDir, cause);
  }
  const info = await stat(stateDir);
  if ((info.mode & 0o022) !== 0) {
    throw credentialsError(
      `the state folder ${stateDir} (agent.state_dir) is writable by group or others (mode ${(info.mode & 0o777).toString(8)}); run chmod 700 ${stateDir}`,
      stateDir,
    );
  }
}

/**
 * Before enrolling: the state folder passes checkStateDir and a file can be created in it, as
 * writeCredential will (a temporary file, removed again). Enrollment spends a one-use token and
 * the issued token exists only in the answer, so whatever would keep it from being stored must
 * fail before the aggregator is asked.
 */
export async function checkCredentialWritable(stateDir: string): Promise<void> {
  await checkStateDir(stateDir);
  const file = credentialsPath(stateDir);
  const probe = `${temporaryPrefix(file)}${process.pid}-probe`;
  try {
    await (await open(probe, 'w', 0o600)).close();
    await unlink(probe);
  } catch (cause) {
    throw new CiAuditError('CIA_ERR_AUTH_ENROLL', `cannot store a credential in ${stateDir} (agent.state_dir): ${(cause as Error).message}; nothing was sent to the aggregator`, {
      cause,
      details: { path: file },
    });
  }
}

/** Writes the credential atomically with mode 0600. */
export async function writeCredential(stateDir: string, credential: StoredCredential): Promise<string> {
  await checkStateDir(stateDir);
  const file = credentialsPath(stateDir);
  try {
    await writeFileDurably(file, `${JSON.stringify(credential, null, 2)}\n`);
  } catch (cause) {
    throw new CiAuditError('CIA_ERR_AUTH_ENROLL', `cannot store the credential in ${file}: ${(cause as Error).message}`, { cause, details: { path: file } });
  }
  return file;
}

/** The stored credential, or undefined when the agent was never enrolled. */
export async function readCredential(stateDir: string): Promise<StoredCredential | undefined> {
  const file = credentialsPath(stateDir);
  let text: string;
  try {
    const info = await stat(file);
    if ((info.mode & 0o077) !== 0) {
      throw credentialsError(`${file} is readable or writable by group or others (mode ${(info.mode & 0o777).toString(8)}); run chmod 600 ${file}`, file);
    }
    text = await readFile(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (cause instanceof CiAuditError) throw cause;
    throw credentialsError(`cannot read ${file}: ${(cause as Error).message}`, file, cause);
  }
  let parsed: Partial<StoredCredential> | null;
  try {
    parsed = JSON.parse(text) as Partial<StoredCredential> | null;
  } catch {
    throw credentialsError(`${file} is not valid JSON; enroll again (ci-audit agent enroll)`, file);
  }
  if (parsed === null || parsed.version !== 1 || typeof parsed.agent_id !== 'string' || typeof parsed.token !== 'string') {
    throw credentialsError(`${file} is not a version 1 credential (agent_id, token); enroll again (ci-audit agent enroll)`, file);
  }
  return parsed as StoredCredential;
}

function credentialsError(message: string, path: string, cause?: unknown): CiAuditError {
  return new CiAuditError('CIA_ERR_AUTH_CREDENTIALS', message, { details: { path }, ...(cause === undefined ? {} : { cause }) });
}
