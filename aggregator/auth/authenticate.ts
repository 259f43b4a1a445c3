// Who sent a request: the pure decision from the auth mode, the Authorization header, the client
// certificate and the registry's answer. Messages never quote the token.
import type { ErrorCode } from '../../core/errors.ts';
import type { TokenCheck } from './registry.ts';

export type AuthMode = 'none' | 'token' | 'mtls' | 'token_or_mtls';

export type AuthDecision =
  /** `agentId` undefined: auth is off and the payload's own claim stands. */
  | { ok: true; agentId?: string; via: 'none' | 'token' | 'mtls' }
  | { ok: false; status: 401; code: ErrorCode; message: string };

/** What the TLS layer says about the client certificate. */
export interface PeerIdentity {
  /** The certificate chains to `listen.tls.client_ca_file`. */
  authorized: boolean;
  /** Subject CN of the certificate, when one was presented. */
  commonName?: string;
  /** Start of the certificate's validity (notBefore), ms since the epoch: tells a certificate issued after a revocation. */
  notBefore?: number;
  /** Why TLS did not accept the certificate (its verification error code, e.g. `CERT_HAS_EXPIRED`), when it did not. */
  refusedBecause?: string;
}

/** `auth.mode`, or its default: `none` on loopback without TLS, `token` everywhere else. */
export function effectiveAuthMode(configured: AuthMode | undefined, loopback: boolean, tls: boolean): AuthMode {
  if (configured !== undefined) return configured;
  return loopback && !tls ? 'none' : 'token';
}

/** The token of `Authorization: Bearer <token>`; `undefined` when absent, `null` when malformed. */
export function bearerToken(header: string | undefined): string | undefined | null {
  if (header === undefined || header === '') return undefined;
  const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  return match === null ? null : match[1]!;
}

/**
 * The decision for one request. `checkToken` and `isRevoked` are the registry's lookups; they are only
 * called when the mode needs them.
 */
export async function authenticate(
  mode: AuthMode,
  request: { authorization: string | undefined; peer: PeerIdentity | undefined },
  registry: { checkToken(token: string): Promise<TokenCheck>; isRevoked(agentId: string, certificateNotBefore?: number): Promise<boolean> },
): Promise<AuthDecision> {
  if (mode === 'none') return { ok: true, via: 'none' };
  if (mode === 'mtls' || mode === 'token_or_mtls') {
    const peer = request.peer;
    if (peer?.authorized === true && peer.commonName !== undefined && peer.commonName !== '') {
      if (await registry.isRevoked(peer.commonName, peer.notBefore)) {
        return deny('CIA_ERR_AUTH_REVOKED', `the client certificate's agent ${peer.commonName} was revoked, and a certificate issued before a revocation stays refused; issue a new certificate and enroll again`);
      }
      return { ok: true, agentId: peer.commonName, via: 'mtls' };
    }
    if (mode === 'mtls') {
      return peer?.commonName === undefined
        ? deny('CIA_ERR_AUTH_MISSING', 'a client certificate is required (auth.mode: mtls); configure output.tls.cert_file and key_file')
        : deny('CIA_ERR_AUTH_INVALID', refusedCertificateMessage(peer.refusedBecause));
    }
  }
  const token = bearerToken(request.authorization);
  if (token === undefined) {
    return deny('CIA_ERR_AUTH_MISSING', 'missing credential: send "Authorization: Bearer <token>" (run `ci-audit agent enroll` to get one)');
  }
  if (token === null) return deny('CIA_ERR_AUTH_INVALID', 'malformed Authorization header: expected "Bearer <token>"');
  const check = await registry.checkToken(token);
  switch (check.kind) {
    case 'ok':
      return { ok: true, agentId: check.agentId, via: 'token' };
    case 'revoked':
      return deny('CIA_ERR_AUTH_REVOKED', `the token of agent ${check.agentId} was revoked; enroll again with a new enrollment token`);
    case 'unknown':
      return deny('CIA_ERR_AUTH_INVALID', 'invalid token: not issued by this aggregator (or by a registry it does not share); enroll again');
  }
}

/**
 * Why a client certificate was refused, from its verification error: its validity dates say so
 * plainly (an expired certificate of the right CA is no foreign one); anything else is its chain.
 */
function refusedCertificateMessage(code: string | undefined): string {
  const dates: Record<string, string> = { CERT_HAS_EXPIRED: 'has expired', CERT_NOT_YET_VALID: 'is not valid yet' };
  const reason = code === undefined ? undefined : dates[code];
  return reason === undefined
    ? 'the client certificate is not signed by a CA the aggregator trusts (listen.tls.client_ca_file)'
    : `the client certificate ${reason} (${code!}); issue the agent a new one`;
}

function deny(code: ErrorCode, message: string): AuthDecision {
  return { ok: false, status: 401, code, message: `${code}: ${message}` };
}
