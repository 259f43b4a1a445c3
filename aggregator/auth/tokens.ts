// Credentials as the aggregator issues and checks them. Tokens are 256 random bits, shown once and
// stored only as SHA-256: for a secret with that much entropy a fast hash is enough (there is
// nothing to brute-force, unlike a password), and it keeps every request's check cheap.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Prefixes make a leaked token recognisable (secret scanners, our own redaction). */
export const agentTokenPrefix = 'cia_agent_';
export const enrollmentTokenPrefix = 'cia_enroll_';

/** A new token: the prefix and 32 random bytes in base64url. */
export function newToken(prefix: string): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

/** Lower-case hex SHA-256 of the token's UTF-8 bytes: what the registry stores. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Compares two hex hashes in constant time (for equal lengths; a length mismatch is not secret). */
export function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}
