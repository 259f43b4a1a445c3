// `ci-audit agent enroll`: registers this agent (its configured agent.id) with the aggregator using an
// enrollment token, and stores the issued credential for `agent run`. The tokens never reach stdout
// or a log line; the URL is printed without credentials.
import { readFile } from 'node:fs/promises';
import { loadAgentConfig } from '../../config/loader.ts';
import { checkHttpUrl } from '../../config/schema.ts';
import { CiAuditError, hasErrorCode } from '../../core/errors.ts';
import { enrollablePublicKey } from '../../core/integrity/checkpoint.ts';
import { redactUrl } from '../../core/secrets.ts';
import { Agent, request } from '../sinks/http-client.ts';
import { agentConnectOptions } from '../sinks/tls-connect.ts';
import { checkCredentialWritable, writeCredential } from './credentials.ts';
import { ensureSigningKey, signingKeyPath } from '../chain/signing-key.ts';

export interface EnrollOptions {
  configFile: string;
  /** Base URL of the aggregator; default: the config's output.url. */
  url?: string | undefined;
  enrollmentToken: string;
  /** CA of the aggregator's certificate; default: the config's output.tls.ca_file. */
  caFile?: string | undefined;
  /**
   * File holding the public signing key to register (PEM SPKI, or base64 SPKI DER). A private key
   * is refused, never sent. Default: the public half of integrity.signing_key, created when missing.
   */
  publicKeyFile?: string | undefined;
  timeoutMs?: number;
}

export interface EnrollResult {
  agentId: string;
  credentialsFile: string;
  url: string;
}

export async function enroll(options: EnrollOptions): Promise<EnrollResult> {
  const { config } = await loadAgentConfig(options.configFile);
  // Everything that can fail here fails before the aggregator spends the one-use enrollment token.
  const base = options.url === undefined ? config.output.url : urlOption(options.url);
  const endpoint = new URL(base);
  endpoint.pathname = `${endpoint.pathname.replace(/\/+$/, '')}/v1/enroll`;
  const shown = redactUrl(endpoint);
  const tls = { ...config.output.tls, ...(options.caFile === undefined ? {} : { ca_file: options.caFile }) };
  if (endpoint.protocol === 'http:' && (options.caFile !== undefined || config.output.tls !== undefined)) {
    // Over http:// the CA and pin would be ignored, and the enrollment token sent in clear text.
    throw new CiAuditError('CIA_ERR_CLI_USAGE', `${shown} is an http:// URL, but TLS is configured (--ca-file or output.tls): nothing of it would be checked and the enrollment token would travel in clear text; use the aggregator's https:// URL`);
  }
  const connect = await agentConnectOptions(tls);
  const agentId = config.agent.id;
  const given = options.publicKeyFile === undefined ? undefined : await publicKeyOption(options.publicKeyFile);
  await checkCredentialWritable(config.agent.state_dir);
  // The checkpoints' key is registered with the credential, so the aggregator can verify them. The
  // key is created only now, once the state folder passed its check.
  const publicKey = given ?? (await ensureSigningKey(signingKeyPath(config))).key.publicKeyPem;
  const dispatcher = new Agent({ connect });
  let status: number;
  let text: string;
  try {
    const response = await request(dispatcher, endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${options.enrollmentToken}` },
      body: JSON.stringify({ agent_id: agentId, public_key: publicKey }),
      signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
    });
    status = response.statusCode;
    text = (await response.body.text()).slice(0, 4096);
  } catch (cause) {
    const e = cause as { message?: string; cause?: { message?: string } };
    throw new CiAuditError('CIA_ERR_AUTH_ENROLL', `cannot reach the aggregator at ${shown}: ${e.cause?.message ?? e.message ?? String(cause)}`, { cause, details: { url: shown } });
  } finally {
    await dispatcher.close();
  }
  let body: { token?: unknown; message?: unknown } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // Not our aggregator, or a proxy's page: reported below with the status.
  }
  if (status !== 200 || typeof body.token !== 'string') {
    const message = typeof body.message === 'string' ? body.message : `HTTP ${status}`;
    throw new CiAuditError('CIA_ERR_AUTH_ENROLL', `the aggregator at ${shown} refused to enroll agent ${agentId}: ${message}`, { details: { url: shown, status } });
  }
  const credentialsFile = await writeCredential(config.agent.state_dir, {
    version: 1,
    agent_id: agentId,
    token: body.token,
    url: redactUrl(new URL(base)),
    enrolled_at: new Date().toISOString(),
  });
  return { agentId, credentialsFile, url: shown };
}

/** `--url`: held to the rule of output.url. The value is not repeated: it may carry credentials. */
function urlOption(url: string): string {
  const checked = checkHttpUrl(url);
  if (!checked.ok) throw new CiAuditError('CIA_ERR_CLI_USAGE', `--url: expected ${checked.expected}, the aggregator's base URL (e.g. https://aggregator.example:4318)`);
  return checked.url;
}

/** `--public-key-file`: an Ed25519 public key, never a private one. The file's text is not repeated. */
async function publicKeyOption(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (cause as Error).message;
    throw new CiAuditError('CIA_ERR_CLI_USAGE', `--public-key-file ${file}: cannot read it: ${reason}`, { cause, details: { path: file } });
  }
  try {
    return enrollablePublicKey(text);
  } catch (err) {
    if (!hasErrorCode(err, 'CIA_ERR_INTEGRITY_KEY')) throw err;
    throw new CiAuditError('CIA_ERR_CLI_USAGE', `--public-key-file ${file}: ${err.message}; nothing was sent to the aggregator`, { details: { path: file } });
  }
}
