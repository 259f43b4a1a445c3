// `ci-audit agent keygen` and `ci-audit agent rotate-key`: what they print goes to stdout (ids and
// public keys only; the private key never leaves its file).
import { loadAgentConfig } from '../../config/loader.ts';
import { ensureSigningKey, nextKeyPath, prepareRotation, signingKeyPath } from './signing-key.ts';

export async function runKeygen(configFile: string): Promise<string> {
  const { config } = await loadAgentConfig(configFile);
  const { key, created } = await ensureSigningKey(signingKeyPath(config));
  const what = created ? `created the signing key ${key.file}` : `the signing key ${key.file} exists; kept it`;
  return `${what} (key id ${key.id})\n${key.publicKeyPem}`;
}

export async function runRotateKey(configFile: string): Promise<string> {
  const { config } = await loadAgentConfig(configFile);
  const file = signingKeyPath(config);
  const { current, next, created } = await prepareRotation(file);
  const what = created ? `created the next signing key ${nextKeyPath(file)}` : `the next signing key ${nextKeyPath(file)} is already waiting; kept it`;
  return `${what} (key id ${next.id}); the running agent announces it signed with key ${current.id} within integrity.checkpoint_interval_ms (or at its next start), then signs with it\n${next.publicKeyPem}`;
}
