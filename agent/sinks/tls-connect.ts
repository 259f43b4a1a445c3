// How the agent opens TLS connections to the aggregator (`output.tls`): a custom CA, an optional pin
// of the server's public key, a client certificate for mTLS. Used by the exporter and by `enroll`.
import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { checkServerIdentity } from 'node:tls';
import type { ConnectionOptions, PeerCertificate } from 'node:tls';
import { CiAuditError } from '../../core/errors.ts';

export interface AgentTlsConfig {
  ca_file?: string | undefined;
  pin?: string | undefined;
  cert_file?: string | undefined;
  key_file?: string | undefined;
}

/**
 * base64 SHA-256 of a certificate's DER SubjectPublicKeyInfo, as in HPKP and
 * `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`.
 * (`PeerCertificate.pubkey` is not that for EC keys: it holds the bare point.)
 */
export function publicKeyPin(cert: Pick<PeerCertificate, 'raw'>): string {
  const spki = new X509Certificate(cert.raw).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

/**
 * The server identity check with the pin added: the host name check of Node.js first, then the pin.
 * Returns an Error (the TLS handshake then fails with it) or undefined.
 */
export function pinnedIdentityCheck(pin: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (host, cert) => {
    const error = checkServerIdentity(host, cert);
    if (error !== undefined) return error;
    const actual = publicKeyPin(cert);
    if (actual !== pin) {
      return new Error(`CIA_ERR_TLS_CONFIG: the aggregator's public key does not match output.tls.pin (expected ${pin}, got ${actual}); check the pin or whether someone intercepts the connection`);
    }
    return undefined;
  };
}

/** undici `connect` options for `output.tls` (files read now, so that a bad path fails at start). */
export async function agentConnectOptions(tls: AgentTlsConfig | undefined): Promise<ConnectionOptions> {
  if (tls === undefined) return {};
  const options: ConnectionOptions = { minVersion: 'TLSv1.2' };
  if (tls.ca_file !== undefined) options.ca = await readTlsFile(tls.ca_file, 'output.tls.ca_file');
  if (tls.cert_file !== undefined) options.cert = await readTlsFile(tls.cert_file, 'output.tls.cert_file');
  if (tls.key_file !== undefined) options.key = await readTlsFile(tls.key_file, 'output.tls.key_file');
  if (tls.pin !== undefined) options.checkServerIdentity = pinnedIdentityCheck(tls.pin);
  return options;
}

async function readTlsFile(file: string, option: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (cause) {
    throw new CiAuditError('CIA_ERR_TLS_CONFIG', `cannot read ${file} (${option}): ${(cause as Error).message}`, { cause, details: { option, path: file } });
  }
}
