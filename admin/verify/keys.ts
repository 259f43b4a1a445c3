// The agents' public signing keys for verify: from the aggregator's registry file (each agent's
// `public_key`, registered at enrollment, and the keys learned from rotations, with the rotation
// that bounds their range of seqs) or from a keys file of one's own, whose keys are valid from seq 0
// until a rotation in the index or the anchor retires them:
//   {"<agent id>": "<PEM>" | ["<PEM>", ...], ...}
// A registry is only read here, never changed.
import { readFile } from 'node:fs/promises';
import { CiAuditError } from '../../core/errors.ts';
import { keyId } from '../../core/integrity/checkpoint.ts';

/**
 * An agent's keys: PEM text (valid from seq 0), or a key learned from a rotation with the key that
 * signed it and the seq it vouched for (valid from that seq, core/integrity/key-ring.ts).
 */
export type AgentPublicKey = string | { publicKey: string; rotation: { from: string; seq: number } };

export type PublicKeys = Map<string, AgentPublicKey[]>;

/** The registry stores PEM, or the base64 of the SPKI DER alone; both become PEM. */
function pemOf(text: string): string {
  const trimmed = text.trim();
  if (trimmed.includes('-----BEGIN')) return `${trimmed}\n`;
  const lines = trimmed.replace(/\s+/g, '').match(/.{1,64}/g) ?? [];
  return `-----BEGIN PUBLIC KEY-----\n${lines.join('\n')}\n-----END PUBLIC KEY-----\n`;
}

async function readJson(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new CiAuditError('CIA_ERR_INTEGRITY_KEY', `cannot read the ${what} ${file}: ${(cause as Error).message}`, { cause, details: { file } });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new CiAuditError('CIA_ERR_INTEGRITY_KEY', `the ${what} ${file} is not JSON: ${(cause as Error).message}`, { cause, details: { file } });
  }
}

function add(keys: PublicKeys, agent: string, pem: string, file: string, rotation?: { from: string; seq: number }): void {
  const key = pemOf(pem);
  try {
    keyId(key);
  } catch (cause) {
    throw new CiAuditError('CIA_ERR_INTEGRITY_KEY', `the public key of agent ${agent} in ${file} is not an Ed25519 public key`, { cause, details: { file, agent } });
  }
  const list = keys.get(agent) ?? [];
  list.push(rotation === undefined ? key : { publicKey: key, rotation });
  keys.set(agent, list);
}

/** The rotation a learned key of the registry names (`rotated_from`, `rotated_at_seq`); undefined when it names none. */
function rotationOf(learned: { rotated_from?: unknown; rotated_at_seq?: unknown }): { from: string; seq: number } | undefined {
  const seq = learned.rotated_at_seq;
  if (typeof learned.rotated_from !== 'string' || typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return undefined;
  return { from: learned.rotated_from, seq };
}

interface RegisteredKeys {
  public_key?: unknown;
  signing_keys?: unknown;
}

/**
 * Public keys of the aggregator's registry (auth.registry_file): the enrolled key and the keys
 * learned from rotations, of the current enrollment and of each earlier one (`previous`, kept when
 * a revoked agent enrolled again). Revoked agents keep theirs: their old checkpoints stay verifiable.
 */
export async function keysFromRegistry(file: string): Promise<PublicKeys> {
  const data = (await readJson(file, 'agent registry')) as { agents?: unknown };
  if (!Array.isArray(data?.agents)) throw new CiAuditError('CIA_ERR_INTEGRITY_KEY', `${file} is not an agent registry (no "agents" list)`, { details: { file } });
  const keys: PublicKeys = new Map();
  for (const entry of data.agents as (RegisteredKeys & { id?: unknown; previous?: unknown })[]) {
    if (typeof entry.id !== 'string') continue;
    const enrollments = [entry, ...(Array.isArray(entry.previous) ? (entry.previous as RegisteredKeys[]) : [])];
    for (const enrollment of enrollments) {
      if (typeof enrollment.public_key === 'string' && enrollment.public_key !== '') add(keys, entry.id, enrollment.public_key, file);
      // Keys the aggregator learned from valid rotations: a rotation checkpoint that is no longer in
      // the index (or the anchor) still leaves the later checkpoints verifiable.
      // Each is valid from the seq of its rotation, and only when that rotation's key was valid there.
      for (const learned of Array.isArray(enrollment.signing_keys) ? (enrollment.signing_keys as { public_key?: unknown; rotated_from?: unknown; rotated_at_seq?: unknown }[]) : []) {
        if (typeof learned.public_key === 'string' && learned.public_key !== '') add(keys, entry.id, learned.public_key, file, rotationOf(learned));
      }
    }
  }
  return keys;
}

/** A keys file: {"<agent id>": "<PEM>" | ["<PEM>", ...]}. */
export async function keysFromFile(file: string): Promise<PublicKeys> {
  const data = await readJson(file, 'keys file');
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new CiAuditError('CIA_ERR_INTEGRITY_KEY', `the keys file ${file} must be a JSON object: {"<agent id>": "<PEM public key>" or a list of them}`, { details: { file } });
  }
  const keys: PublicKeys = new Map();
  for (const [agent, value] of Object.entries(data as Record<string, unknown>)) {
    const list = Array.isArray(value) ? value : [value];
    for (const pem of list) {
      if (typeof pem !== 'string') throw new CiAuditError('CIA_ERR_INTEGRITY_KEY', `the keys file ${file} gives agent ${agent} something other than PEM text`, { details: { file, agent } });
      add(keys, agent, pem, file);
    }
  }
  return keys;
}
