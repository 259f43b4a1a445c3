// The agent's Ed25519 signing key: PKCS#8 PEM in `integrity.signing_key` (default
// <state_dir>/signing-key.pem), mode 0600, never sent anywhere; only its public half is registered
// at enrollment. A key others may read is refused: whoever can read it can forge checkpoints.
//
// Rotation: `ci-audit agent rotate-key` writes the next key beside the current one
// (`<signing_key>.next`). The agent signs a key_rotation statement naming it with the current key
// and, once that statement is committed (acknowledged, or durable in the disk buffer), renames the
// next key over the current one. A crash in between repeats the statement at the next start.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../../core/durable-file.ts';
import { CiAuditError } from '../../core/errors.ts';
import { keyId, publicKeyPem } from '../../core/integrity/checkpoint.ts';

export interface SigningKey {
  /** Path of the PEM file the key was read from. */
  file: string;
  privateKey: KeyObject;
  /** Public key as PEM (SPKI), as enrollment registers it. */
  publicKeyPem: string;
  /** keyId of the public key. */
  id: string;
}

/** Where the key lives: `integrity.signing_key`, or `<state_dir>/signing-key.pem`. */
export function signingKeyPath(config: { agent: { state_dir: string }; integrity: { signing_key?: string | undefined } }): string {
  return config.integrity.signing_key ?? join(config.agent.state_dir, 'signing-key.pem');
}

/** Where `rotate-key` leaves the next key until the agent switches to it. */
export function nextKeyPath(file: string): string {
  return `${file}.next`;
}

function keyError(message: string, file: string, cause?: unknown): CiAuditError {
  return new CiAuditError('CIA_ERR_INTEGRITY_KEY', message, { details: { path: file }, ...(cause === undefined ? {} : { cause }) });
}

/** Reads the key at `file`; undefined when there is none. Refuses a key group or others may read. */
export async function readSigningKey(file: string): Promise<SigningKey | undefined> {
  let text: string;
  try {
    const info = await stat(file);
    if ((info.mode & 0o077) !== 0) {
      throw keyError(`the signing key ${file} is readable or writable by group or others (mode ${(info.mode & 0o777).toString(8)}); run chmod 600 ${file}`, file);
    }
    text = await readFile(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (cause instanceof CiAuditError) throw cause;
    throw keyError(`cannot read the signing key ${file}: ${(cause as Error).message}`, file, cause);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(text);
  } catch (cause) {
    // The parser's message names no key material.
    throw keyError(`the signing key ${file} is not a PEM private key (${(cause as Error).message}); move it away and run ci-audit agent keygen`, file, cause);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw keyError(`the signing key ${file} is a ${privateKey.asymmetricKeyType ?? 'unknown'} key, not Ed25519; move it away and run ci-audit agent keygen`, file);
  }
  const pem = publicKeyPem(createPublicKey(privateKey));
  return { file, privateKey, publicKeyPem: pem, id: keyId(pem) };
}

async function writeNewKey(file: string): Promise<SigningKey> {
  const { privateKey } = generateKeyPairSync('ed25519');
  try {
    await writeFileDurably(file, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  } catch (cause) {
    throw keyError(`cannot write the signing key ${file}: ${(cause as Error).message}`, file, cause);
  }
  const pem = publicKeyPem(createPublicKey(privateKey));
  return { file, privateKey, publicKeyPem: pem, id: keyId(pem) };
}

/** The key at `file`, generated (0600) when there is none. Idempotent: an existing key is kept. */
export async function ensureSigningKey(file: string): Promise<{ key: SigningKey; created: boolean }> {
  const existing = await readSigningKey(file);
  if (existing !== undefined) return { key: existing, created: false };
  return { key: await writeNewKey(file), created: true };
}

/**
 * Prepares a rotation: a new key at `<file>.next` (kept when one is already waiting, so running it
 * twice before the agent switched does not orphan a key). The current key must exist.
 */
export async function prepareRotation(file: string): Promise<{ current: SigningKey; next: SigningKey; created: boolean }> {
  const current = await readSigningKey(file);
  if (current === undefined) throw keyError(`there is no signing key at ${file} to rotate; run ci-audit agent keygen first`, file);
  const waiting = await readSigningKey(nextKeyPath(file));
  if (waiting !== undefined) return { current, next: waiting, created: false };
  return { current, next: await writeNewKey(nextKeyPath(file)), created: true };
}

/** The key waiting at `<file>.next`, if any. */
export function readNextKey(file: string): Promise<SigningKey | undefined> {
  return readSigningKey(nextKeyPath(file));
}

/** Makes the waiting next key the current one (the old private key is gone afterwards). */
export async function adoptNextKey(file: string): Promise<void> {
  try {
    await rename(nextKeyPath(file), file);
  } catch (cause) {
    throw keyError(`cannot replace the signing key ${file} with ${nextKeyPath(file)}: ${(cause as Error).message}`, file, cause);
  }
}
