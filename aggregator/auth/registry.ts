// The enrolled agents and the enrollment tokens, in one JSON file (`auth.registry_file`) that holds
// hashes only. Every change is written atomically (temporary file, fsync, rename) with mode 0600.
// The file is read again when it changed on disk (checked at most once a second), so that
// `ci-audit aggregator agents revoke` takes effect in a running aggregator without a restart.
// Why a file and not an Elasticsearch index: see docs/security.md ("Agent registry").
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileDurably } from '../../core/durable-file.ts';
import { CiAuditError, hasErrorCode } from '../../core/errors.ts';
import { enrollablePublicKey } from '../../core/integrity/checkpoint.ts';
import { agentTokenPrefix, enrollmentTokenPrefix, hashToken, newToken, sameHash } from './tokens.ts';

export interface AgentEntry {
  id: string;
  token_sha256: string;
  enrolled_at: string;
  revoked_at?: string;
  /** The agent's public signing key (PEM or base64), for the integrity issue's signed checkpoints. */
  public_key?: string;
  /** Keys learned from valid key_rotation checkpoints, signed by a key the aggregator held. */
  signing_keys?: LearnedKey[];
  /**
   * The agent's earlier enrollments, oldest first, each revoked before the agent id enrolled again:
   * their token hashes stay refused (as revoked), their keys stay trusted for the checkpoints they
   * signed, and their revocation times keep client certificates issued before them refused.
   */
  previous?: PreviousEnrollment[];
}

/** An enrollment of an agent id that was revoked and replaced by a later one. */
export interface PreviousEnrollment {
  token_sha256: string;
  enrolled_at: string;
  revoked_at: string;
  public_key?: string;
  signing_keys?: LearnedKey[];
}

export interface LearnedKey {
  /** Key id (core/integrity/checkpoint.ts keyId). */
  id: string;
  /** PEM (SPKI). */
  public_key: string;
  added_at: string;
  /** The key that signed the rotation, and the chain seq it vouched for. */
  rotated_from: string;
  rotated_at_seq: number;
}

export interface EnrollmentEntry {
  /** Short public name of the token, to list it; not the secret. */
  id: string;
  token_sha256: string;
  created_at: string;
  expires_at: string;
  uses_left: number;
}

interface RegistryData {
  version: 1;
  agents: AgentEntry[];
  enrollment_tokens: EnrollmentEntry[];
}

/** An agent as `agents list` shows it: no token hash, of its current or earlier enrollments. */
export type ListedAgent = Omit<AgentEntry, 'token_sha256' | 'previous'> & { previous?: Array<Omit<PreviousEnrollment, 'token_sha256'>> };

export type TokenCheck = { kind: 'ok'; agentId: string } | { kind: 'revoked'; agentId: string } | { kind: 'unknown' };

export const agentIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A change waits at most this long for another process's lock on the file. */
const lockWaitMs = 10_000;
/** A lock older than this was left by a process that died while holding it. */
const staleLockMs = 30_000;

/** How long a read of the file is trusted before its mtime is checked again, by default. */
const defaultRecheckMs = 1000;

export class AgentRegistry {
  readonly file: string;
  #data: RegistryData = emptyData();
  #stamp = '';
  #checkedAt = 0;
  #now: () => Date;
  #recheckMs: number;
  /** Changes in this process run one after the other. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(file: string, now: () => Date, recheckMs: number) {
    this.file = file;
    this.#now = now;
    this.#recheckMs = recheckMs;
  }

  /** Opens the registry; a missing file is an empty registry (created on the first change). */
  static async open(file: string, options: { now?: () => Date; recheckMs?: number } = {}): Promise<AgentRegistry> {
    const registry = new AgentRegistry(file, options.now ?? (() => new Date()), options.recheckMs ?? defaultRecheckMs);
    await registry.#reload(true);
    return registry;
  }

  /** Who a bearer token belongs to. Every stored hash is compared, in constant time each. */
  async checkToken(token: string): Promise<TokenCheck> {
    await this.#reload(false);
    const hash = hashToken(token);
    let found: TokenCheck = { kind: 'unknown' };
    for (const agent of this.#data.agents) {
      if (sameHash(agent.token_sha256, hash)) found = agent.revoked_at === undefined ? { kind: 'ok', agentId: agent.id } : { kind: 'revoked', agentId: agent.id };
      // The tokens of earlier enrollments stay revoked after the agent id enrolled again.
      for (const earlier of agent.previous ?? []) if (sameHash(earlier.token_sha256, hash)) found = { kind: 'revoked', agentId: agent.id };
    }
    return found;
  }

  /**
   * True when a client certificate of `agentId` must be refused: the agent is revoked now, or it was
   * revoked and enrolled again since, and the certificate is not known to be issued (`notBefore`,
   * ms since the epoch) after its last revocation. A certificate of an id never enrolled is not
   * refused here (mTLS alone needs no enrollment).
   */
  async isRevoked(agentId: string, certificateNotBefore?: number): Promise<boolean> {
    await this.#reload(false);
    const agent = this.#data.agents.find((a) => a.id === agentId);
    if (agent === undefined) return false;
    if (agent.revoked_at !== undefined) return true;
    const lastRevocation = Math.max(-Infinity, ...(agent.previous ?? []).map((p) => Date.parse(p.revoked_at)));
    if (lastRevocation === -Infinity) return false;
    return certificateNotBefore === undefined || !(certificateNotBefore > lastRevocation);
  }

  async list(): Promise<{ agents: ListedAgent[]; enrollmentTokens: Array<Omit<EnrollmentEntry, 'token_sha256'>> }> {
    await this.#reload(true);
    return {
      agents: this.#data.agents.map(({ token_sha256: _hash, previous, ...rest }) => ({
        ...rest,
        ...(rest.public_key === undefined ? {} : { public_key: shownKey(rest.public_key) }),
        ...(previous === undefined ? {} : { previous: previous.map(({ token_sha256: _old, ...earlier }) => earlier) }),
      })),
      enrollmentTokens: this.#data.enrollment_tokens.map(({ token_sha256: _hash, ...rest }) => rest),
    };
  }

  /** A new enrollment token, valid `uses` times for `ttlSeconds`. The secret is returned once and stored hashed. */
  createEnrollmentToken(options: { uses: number; ttlSeconds: number }): Promise<{ id: string; token: string; expiresAt: string }> {
    return this.#change((data) => {
      const now = this.#now();
      const token = newToken(enrollmentTokenPrefix);
      const entry: EnrollmentEntry = {
        id: randomBytes(4).toString('hex'),
        token_sha256: hashToken(token),
        created_at: now.toISOString(),
        expires_at: new Date(now.getTime() + options.ttlSeconds * 1000).toISOString(),
        uses_left: options.uses,
      };
      data.enrollment_tokens.push(entry);
      return { id: entry.id, token, expiresAt: entry.expires_at };
    });
  }

  /**
   * Spends one use of `enrollmentToken` and issues a token for `agentId`. An id held by an agent that
   * is not revoked is refused: an enrollment token must not let anyone take over an existing identity.
   */
  enroll(enrollmentToken: string, agentId: string, publicKey?: string): Promise<{ token: string }> {
    return this.#change((data) => {
      const now = this.#now();
      const hash = hashToken(enrollmentToken);
      let grant: EnrollmentEntry | undefined;
      for (const e of data.enrollment_tokens) if (sameHash(e.token_sha256, hash)) grant = e;
      if (grant === undefined || grant.uses_left <= 0 || Date.parse(grant.expires_at) <= now.getTime()) {
        throw new CiAuditError('CIA_ERR_AUTH_INVALID', 'the enrollment token is unknown, used up or expired; ask an administrator for a new one (ci-audit aggregator enrollment-token)');
      }
      if (!agentIdPattern.test(agentId)) {
        throw new CiAuditError('CIA_ERR_AUTH_ENROLL', `agent id ${JSON.stringify(agentId)} is not valid: letters, digits, ".", "_" or "-", starting with a letter or digit, at most 128`);
      }
      // Checked before the token is spent (nothing is written when this throws). The message never
      // quotes the submitted text: it may be a private key sent by mistake.
      let publicKeyPem: string | undefined;
      if (publicKey !== undefined) {
        try {
          publicKeyPem = enrollablePublicKey(publicKey);
        } catch (err) {
          if (!hasErrorCode(err, 'CIA_ERR_INTEGRITY_KEY')) throw err;
          throw new CiAuditError('CIA_ERR_AUTH_ENROLL', `public_key is ${err.message}`, { details: { agentId } });
        }
      }
      const existing = data.agents.find((a) => a.id === agentId);
      if (existing !== undefined && existing.revoked_at === undefined) {
        throw new CiAuditError('CIA_ERR_AUTH_ENROLL', `agent id ${agentId} is already enrolled; revoke it first (ci-audit aggregator agents revoke ${agentId}) or pick another agent.id`, {
          details: { agentId, conflict: true },
        });
      }
      grant.uses_left -= 1;
      const token = newToken(agentTokenPrefix);
      const entry: AgentEntry = { id: agentId, token_sha256: hashToken(token), enrolled_at: now.toISOString() };
      if (publicKeyPem !== undefined) entry.public_key = publicKeyPem;
      if (existing === undefined) {
        data.agents.push(entry);
      } else {
        // A revoked agent enrolls again: its earlier enrollment is kept as history, so that its old
        // checkpoints stay verifiable and its old credentials stay refused; only the new token is valid.
        const { id: _id, previous, revoked_at: revokedAt, public_key: earlierKey, ...earlier } = existing;
        const kept = earlierKey === undefined ? undefined : historyKey(earlierKey);
        entry.previous = [...(previous ?? []), { ...earlier, revoked_at: revokedAt!, ...(kept === undefined ? {} : { public_key: kept }) }];
        data.agents[data.agents.indexOf(existing)] = entry;
      }
      return { token };
    });
  }

  /**
   * The agent's public signing keys: the one registered at enrollment, then the learned ones, then
   * those of its earlier enrollments (records signed before a re-enrollment may still arrive from its
   * buffer). Empty for an unknown agent.
   */
  async signingKeys(agentId: string): Promise<string[]> {
    return [...new Set((await this.trustedKeys(agentId)).map((k) => k.publicKey))];
  }

  /**
   * The agent's keys with what bounds their range of seqs (core/integrity/key-ring.ts): the enrolled
   * keys, of this enrollment and the earlier ones, with none (the registry does not know where an
   * earlier enrollment's chain ended, so they stay valid until a rotation of theirs retires them); a
   * learned key with the rotation that introduced it. Empty for an unknown agent.
   */
  async trustedKeys(agentId: string): Promise<Array<{ publicKey: string; rotation?: { from: string; seq: number } }>> {
    await this.#reload(false);
    const agent = this.#data.agents.find((a) => a.id === agentId);
    if (agent === undefined) return [];
    const keys: Array<{ publicKey: string; rotation?: { from: string; seq: number } }> = [];
    for (const enrollment of [agent, ...[...(agent.previous ?? [])].reverse()]) {
      if (enrollment.public_key !== undefined) keys.push({ publicKey: enrollment.public_key });
      for (const learned of enrollment.signing_keys ?? []) {
        const rotated = typeof learned.rotated_from === 'string' && Number.isSafeInteger(learned.rotated_at_seq) && learned.rotated_at_seq >= 0;
        // A learned key without its rotation (hand-edited) is trusted from seq 0, as before ranges.
        keys.push(rotated ? { publicKey: learned.public_key, rotation: { from: learned.rotated_from, seq: learned.rotated_at_seq } } : { publicKey: learned.public_key });
      }
    }
    return keys;
  }

  /**
   * Remembers a key an agent rotated to (a valid key_rotation), so that it is known after a restart
   * and to other aggregators sharing the file. False when the agent is unknown or already has it. A
   * key already learned from the same old key at a later seq (the rotation's repeat arrived first:
   * batches complete out of order) takes the lower seq, where its range begins.
   */
  addSigningKey(agentId: string, key: Omit<LearnedKey, 'added_at'>): Promise<boolean> {
    return this.#change((data) => {
      const agent = data.agents.find((a) => a.id === agentId);
      if (agent === undefined) return false;
      const known = (agent.signing_keys ?? []).find((k) => k.id === key.id);
      if (known !== undefined) {
        if (known.rotated_from !== key.rotated_from || !(key.rotated_at_seq < known.rotated_at_seq)) return false;
        known.rotated_at_seq = key.rotated_at_seq;
        return true;
      }
      (agent.signing_keys ??= []).push({ ...key, added_at: this.#now().toISOString() });
      return true;
    });
  }

  /** Revokes `agentId`'s credential; false when no such agent is enrolled. Revoking twice keeps the first time. */
  revoke(agentId: string): Promise<boolean> {
    return this.#change((data) => {
      const agent = data.agents.find((a) => a.id === agentId);
      if (agent === undefined) return false;
      agent.revoked_at ??= this.#now().toISOString();
      return true;
    });
  }

  #change<T>(apply: (data: RegistryData) => T): Promise<T> {
    const next = this.#queue.then(async () => {
      // Another process (the CLI, another aggregator on a shared volume) may change the file too: a
      // lock file makes read-change-write one step across processes.
      const release = await this.#lock();
      try {
        await this.#reload(true);
        const data = structuredClone(this.#data);
        const result = apply(data);
        await this.#write(data);
        this.#data = data;
        return result;
      } finally {
        await release();
      }
    });
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #lock(): Promise<() => Promise<void>> {
    const lockFile = `${this.file}.lock`;
    const deadline = Date.now() + lockWaitMs;
    try {
      await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    } catch (cause) {
      throw registryError(`cannot create the folder of the agent registry ${this.file} (auth.registry_file): ${(cause as Error).message}`, this.file, cause);
    }
    for (;;) {
      try {
        const handle = await open(lockFile, 'wx', 0o600);
        await handle.writeFile(String(process.pid));
        await handle.close();
        return () => unlink(lockFile).catch(() => undefined);
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw registryError(`cannot lock the agent registry (${lockFile}): ${(cause as Error).message}`, this.file, cause);
        }
      }
      const held = await stat(lockFile).catch(() => undefined);
      if (held !== undefined && Date.now() - held.mtimeMs > staleLockMs) {
        await unlink(lockFile).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) {
        throw registryError(`the agent registry is locked by another process (${lockFile}) for more than ${lockWaitMs / 1000} s; remove the lock file if no ci-audit command is running`, this.file);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async #reload(force: boolean): Promise<void> {
    const now = Date.now();
    if (!force && now - this.#checkedAt < this.#recheckMs) return;
    this.#checkedAt = now;
    let stamp: string;
    try {
      const s = await stat(this.file);
      stamp = `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') {
        this.#data = emptyData();
        this.#stamp = '';
        return;
      }
      throw registryError(`cannot read the agent registry ${this.file} (auth.registry_file): ${(cause as Error).message}`, this.file, cause);
    }
    if (stamp === this.#stamp) return;
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (cause) {
      throw registryError(`cannot read the agent registry ${this.file} (auth.registry_file): ${(cause as Error).message}`, this.file, cause);
    }
    this.#data = parseRegistry(text, this.file);
    this.#stamp = stamp;
  }

  async #write(data: RegistryData): Promise<void> {
    try {
      await writeFileDurably(this.file, `${JSON.stringify(data, null, 2)}\n`);
    } catch (cause) {
      throw registryError(`cannot write the agent registry ${this.file} (auth.registry_file): ${(cause as Error).message}`, this.file, cause);
    }
  }
}

/**
 * An earlier enrollment's key as history keeps it. A registry written before enrollment checked the
 * key may hold a private key sent by mistake: only its public half is kept, so the checkpoints it
 * signed stay verifiable and the secret leaves the file (the agent must get a new key all the same).
 * Junk is dropped: kept, it would make verify refuse the whole registry.
 */
function historyKey(text: string): string | undefined {
  try {
    return enrollablePublicKey(text);
  } catch (err) {
    if (!hasErrorCode(err, 'CIA_ERR_INTEGRITY_KEY')) throw err;
  }
  try {
    const derived = createPublicKey(createPrivateKey(text));
    return derived.asymmetricKeyType === 'ed25519' ? derived.export({ type: 'spki', format: 'pem' }).toString() : undefined;
  } catch {
    return undefined;
  }
}

/** What `agents list` shows of a registered key: never a private key a registry may hold from before enrollment checked keys. */
function shownKey(text: string): string {
  return /PRIVATE KEY/.test(text) ? '(a private key, not shown: revoke this agent, give it a new signing key and enroll it again)' : text;
}

function emptyData(): RegistryData {
  return { version: 1, agents: [], enrollment_tokens: [] };
}

function parseRegistry(text: string, file: string): RegistryData {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw registryError(`the agent registry ${file} is not valid JSON: ${(cause as Error).message}; restore it from a backup`, file, cause);
  }
  const data = parsed as Partial<RegistryData> | null;
  if (data === null || typeof data !== 'object' || data.version !== 1 || !Array.isArray(data.agents) || !Array.isArray(data.enrollment_tokens)) {
    throw registryError(`the agent registry ${file} is not a version 1 registry (expected {"version":1,"agents":[],"enrollment_tokens":[]})`, file);
  }
  return data as RegistryData;
}

function registryError(message: string, file: string, cause?: unknown): CiAuditError {
  return new CiAuditError('CIA_ERR_AUTH_REGISTRY', message, { details: { file }, ...(cause === undefined ? {} : { cause }) });
}
