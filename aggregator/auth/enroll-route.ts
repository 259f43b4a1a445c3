// POST /v1/enroll: an agent trades an enrollment token (Authorization: Bearer) for its own token.
//   request  {"agent_id": "runner-01", "public_key": "<optional, for signed checkpoints>"}
//   200      {"agent_id": "runner-01", "token": "cia_agent_..."}   (shown once; stored hashed)
//   400 bad body, or a public_key that is not an Ed25519 public key (PEM SPKI or base64 SPKI DER; a
//       private key is refused, never stored, and no refusal quotes the text), 401 unknown/used/expired
//       enrollment token, 409 agent id already enrolled.
import type { FastifyInstance } from 'fastify';
import { hasErrorCode } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { bearerToken } from './authenticate.ts';
import type { AgentRegistry } from './registry.ts';

export const enrollPath = '/v1/enroll';

/** Largest enrollment request: an id and a public key fit easily. */
const maxEnrollBytes = 16 * 1024;

export function registerEnrollRoute(app: FastifyInstance, options: { registry: AgentRegistry; logger: Logger }): void {
  const { registry, logger } = options;
  app.post(enrollPath, { bodyLimit: maxEnrollBytes }, async (request, reply) => {
    const fail = (status: number, code: string, message: string) => reply.code(status).send({ code, message: `${code}: ${message}` });
    const token = bearerToken(request.headers.authorization);
    if (token === undefined || token === null) {
      return fail(401, 'CIA_ERR_AUTH_MISSING', 'send the enrollment token as "Authorization: Bearer <enrollment token>"');
    }
    if (!(request.headers['content-type'] ?? '').startsWith('application/json')) {
      return fail(400, 'CIA_ERR_AUTH_ENROLL', 'the enrollment request must be application/json');
    }
    let body: unknown;
    try {
      body = JSON.parse((request.body as Buffer).toString('utf8'));
    } catch {
      return fail(400, 'CIA_ERR_AUTH_ENROLL', 'the enrollment request is not valid JSON');
    }
    const { agent_id: agentId, public_key: publicKey } = (body ?? {}) as { agent_id?: unknown; public_key?: unknown };
    if (typeof agentId !== 'string' || (publicKey !== undefined && typeof publicKey !== 'string')) {
      return fail(400, 'CIA_ERR_AUTH_ENROLL', 'expected {"agent_id": string, "public_key"?: string}');
    }
    try {
      const issued = await registry.enroll(token, agentId, publicKey);
      logger.info({ agent: agentId }, 'agent enrolled');
      return reply.code(200).send({ agent_id: agentId, token: issued.token });
    } catch (err) {
      if (hasErrorCode(err, 'CIA_ERR_AUTH_INVALID')) {
        logger.warn({ code: err.code, agent: agentId, remote: request.ip }, 'enrollment refused');
        return fail(401, err.code, err.message);
      }
      if (hasErrorCode(err, 'CIA_ERR_AUTH_ENROLL')) {
        logger.warn({ code: err.code, agent: agentId, remote: request.ip }, 'enrollment refused');
        return fail(err.details.conflict === true ? 409 : 400, err.code, err.message);
      }
      throw err;
    }
  });
}
