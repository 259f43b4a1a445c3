// Whether the receiver may listen where it is told to: TLS is required beyond loopback, unless an
// operator explicitly allows clear text (then we warn at every start).
import { isIP } from 'node:net';
import { CiAuditError } from '../../core/errors.ts';

/** True for addresses only this host can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare === '::1') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (bare.startsWith('::ffff:')) return bare.slice(7).startsWith('127.');
  return false;
}

/** Throws CIA_ERR_TLS_CONFIG for clear text beyond loopback; returns a warning when it is allowed anyway. */
export function checkListenSecurity(listen: { host: string; tls?: unknown; allow_insecure: boolean }): { warning?: string } {
  if (listen.tls !== undefined || isLoopbackHost(listen.host)) return {};
  if (listen.allow_insecure) {
    return { warning: `listening on ${listen.host} WITHOUT TLS (listen.allow_insecure: true): tokens and records travel in clear text; set listen.tls` };
  }
  throw new CiAuditError(
    'CIA_ERR_TLS_CONFIG',
    `refusing to listen on ${listen.host} without TLS: set listen.tls.cert_file and key_file, listen on 127.0.0.1, or set listen.allow_insecure: true (not recommended)`,
    { details: { option: 'listen.tls', host: listen.host } },
  );
}
