// The receiver's HTTPS options from `listen.tls`: TLS 1.2 at least, and client certificates asked for
// (but not enforced at the handshake) when a client CA is set, so that a missing or foreign one gets
// an HTTP 401 with a message instead of a bare handshake failure.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import { createSecureContext } from 'node:tls';
import { CiAuditError } from '../../core/errors.ts';

export interface ListenTls {
  cert_file: string;
  key_file: string;
  client_ca_file?: string | undefined;
}

export async function receiverTlsOptions(tls: ListenTls): Promise<TlsOptions> {
  const options: TlsOptions & SecureContextOptions = {
    cert: await readPem(tls.cert_file, 'listen.tls.cert_file'),
    key: await readPem(tls.key_file, 'listen.tls.key_file'),
    minVersion: 'TLSv1.2',
  };
  if (tls.client_ca_file !== undefined) {
    options.ca = await readPem(tls.client_ca_file, 'listen.tls.client_ca_file');
    checkCaCertificates(options.ca, tls.client_ca_file);
    options.requestCert = true;
    options.rejectUnauthorized = false;
  }
  try {
    // Fails now, with the option named, rather than at the first connection.
    createSecureContext(options);
  } catch (cause) {
    throw new CiAuditError('CIA_ERR_TLS_CONFIG', `listen.tls: the certificate, key or CA is not usable: ${(cause as Error).message}`, { cause, details: { option: 'listen.tls' } });
  }
  return options;
}

/**
 * The client CA file must hold certificates, every one readable: an empty file, junk or a key
 * passed createSecureContext and then refused every agent at run time with a 401.
 */
function checkCaCertificates(pem: Buffer, file: string): void {
  const text = pem.toString('utf8');
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  const problem = /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)
    ? 'it holds a private key: give the CA certificate (public), never a key'
    : blocks.length === 0
      ? 'it holds no PEM certificate (-----BEGIN CERTIFICATE-----)'
      : blocks.some((block) => !readable(block))
        ? 'one of its certificates cannot be read'
        : undefined;
  if (problem !== undefined) {
    throw new CiAuditError('CIA_ERR_TLS_CONFIG', `listen.tls.client_ca_file ${file}: ${problem}`, { details: { option: 'listen.tls.client_ca_file', path: file } });
  }
}

function readable(block: string): boolean {
  try {
    new X509Certificate(block);
    return true;
  } catch {
    return false;
  }
}

export async function readPem(file: string, option: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (cause) {
    throw new CiAuditError('CIA_ERR_TLS_CONFIG', `cannot read ${file} (${option}): ${(cause as Error).message}`, { cause, details: { option, path: file } });
  }
}
