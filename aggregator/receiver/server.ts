// The OTLP/HTTP logs receiver: POST /v1/logs (protobuf or JSON, gzip or identity) and GET /healthz.
//
//   | situation                                   | status | body (in the request's format)          |
//   | stored (or already there)                   | 200    | ExportLogsServiceResponse               |
//   | some records rejected by Elasticsearch      | 200    | ... with partial_success                |
//   | content type not protobuf/JSON              | 415    | google.rpc.Status (JSON)                |
//   | content encoding not gzip/identity          | 415    | google.rpc.Status, Accept-Encoding set  |
//   | body > limits.max_body_bytes                | 413    | google.rpc.Status                       |
//   | gunzipped body > limits.max_decompressed_.. | 413    | google.rpc.Status                       |
//   | corrupt gzip, undecodable body              | 400    | google.rpc.Status                       |
//   | no / unknown / revoked credential (auth on) | 401    | google.rpc.Status, WWW-Authenticate     |
//   | a record claims another agent's id          | 403    | google.rpc.Status; nothing is indexed   |
//   | Elasticsearch not ready / not accepting     | 503    | google.rpc.Status, Retry-After set      |
// A request is acknowledged only once Elasticsearch holds its records: never 200 before that.
import type { TLSSocket, TlsOptions } from 'node:tls';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authenticate } from '../auth/authenticate.ts';
import type { AuthMode, PeerIdentity } from '../auth/authenticate.ts';
import { registerEnrollRoute } from '../auth/enroll-route.ts';
import { enforceAgentIdentity } from '../auth/identity.ts';
import type { AgentRegistry } from '../auth/registry.ts';
import { hasErrorCode } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import type { Ingest } from '../ingest.ts';
import { decodeBody, encodingOf, formatOf } from './body.ts';
import { decodeJsonLogs, decodeProtobufLogs } from './otlp-decode.ts';
import { contentTypes, encodeExportResponse, encodeStatus, rpcCode } from './otlp-encode.ts';
import type { OtlpFormat } from './otlp-encode.ts';

export interface ReceiverOptions {
  ingest: Ingest;
  limits: {
    /** Largest body as sent, in bytes. */
    maxBodyBytes: number;
    /** Largest body after gunzip, in bytes. */
    maxDecompressedBytes: number;
  };
  logger: Logger;
  /** Who may send (docs/security.md). Absent: `none`, the payload's agent id stands. */
  auth?: { mode: AuthMode; registry?: AgentRegistry | undefined };
  /** HTTPS options (`listen.tls`); absent: plain HTTP. */
  https?: TlsOptions | undefined;
}

export const logsPath = '/v1/logs';
export const healthPath = '/healthz';

/** Builds the receiver (not listening yet: call `listen`, or `inject` in tests). */
export function createReceiver(options: ReceiverOptions): FastifyInstance {
  const { ingest, limits, logger } = options;
  const authMode = options.auth?.mode ?? 'none';
  const registry = options.auth?.registry;
  if (authMode !== 'none' && registry === undefined) throw new TypeError(`auth mode ${authMode} needs a registry`);
  const app = (options.https === undefined
    ? Fastify({ bodyLimit: limits.maxBodyBytes, logger: false, return503OnClosing: true })
    : Fastify({ https: options.https, bodyLimit: limits.maxBodyBytes, logger: false, return503OnClosing: true })) as unknown as FastifyInstance;
  /** The agent each authenticated request speaks for. */
  const senders = new WeakMap<FastifyRequest, string>();

  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    ['application/x-protobuf', 'application/protobuf', 'application/json'],
    { parseAs: 'buffer', bodyLimit: limits.maxBodyBytes },
    (_request, body, done) => {
      done(null, body);
    },
  );

  app.setErrorHandler((error, request, reply) => {
    const format = formatOf(request.headers['content-type']) ?? 'json';
    const code = (error as { code?: unknown }).code;
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendStatus(reply, format, 413, rpcCode.INVALID_ARGUMENT, `body exceeds limits.max_body_bytes (${limits.maxBodyBytes} bytes); send smaller batches`);
    }
    if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return unsupportedType(reply, request);
    if (typeof code === 'string' && code.startsWith('FST_ERR_CTP_')) {
      return sendStatus(reply, format, 400, rpcCode.INVALID_ARGUMENT, `bad request body: ${(error as Error).message}`);
    }
    if (hasErrorCode(error)) {
      switch (error.code) {
        case 'CIA_ERR_RECEIVER_TOO_LARGE':
          return sendStatus(reply, format, 413, rpcCode.INVALID_ARGUMENT, error.message);
        case 'CIA_ERR_RECEIVER_ENCODING':
        case 'CIA_ERR_RECEIVER_DECODE':
          logger.debug({ code: error.code, error: error.message }, 'bad request');
          return sendStatus(reply, format, 400, rpcCode.INVALID_ARGUMENT, error.message);
        case 'CIA_ERR_ES_UNAVAILABLE':
        case 'CIA_ERR_ES_AUTH':
          if (error.code === 'CIA_ERR_ES_AUTH') logger.error({ code: error.code, error: error.message }, 'elasticsearch refused the credentials');
          else logger.warn({ code: error.code, error: error.message }, 'records not stored; asking the sender to retry');
          return unavailable(reply, format, ingest, error.message);
        default:
          break;
      }
    }
    const message = error instanceof Error ? error.message : String(error);
    logger.error({ code, error: message }, 'request failed');
    return sendStatus(reply, format, 500, rpcCode.INTERNAL, `internal error: ${message}`);
  });

  app.get(healthPath, async (_request, reply) => {
    const body = { state: ingest.state, elasticsearch: { ready: ingest.ready } };
    return reply.code(ingest.ready ? 200 : 503).send(body);
  });

  app.post(
    logsPath,
    {
      // Before the body is read: refuse unknown senders, what we cannot decode, and everything while not ready.
      onRequest: async (request, reply) => {
        if (authMode !== 'none' && registry !== undefined) {
          const decision = await authenticate(authMode, { authorization: request.headers.authorization, peer: peerIdentity(request) }, registry);
          if (!decision.ok) {
            logger.warn({ code: decision.code, remote: request.ip }, 'request refused: not authenticated');
            reply.header('www-authenticate', 'Bearer realm="ci-audit"');
            return sendStatus(reply, formatOf(request.headers['content-type']) ?? 'json', decision.status, rpcCode.UNAUTHENTICATED, decision.message);
          }
          if (decision.agentId !== undefined) senders.set(request, decision.agentId);
        }
        const format = formatOf(request.headers['content-type']);
        if (format === undefined) return unsupportedType(reply, request);
        if (encodingOf(request.headers['content-encoding']) === undefined) {
          reply.header('accept-encoding', 'gzip, identity');
          return sendStatus(reply, format, 415, rpcCode.INVALID_ARGUMENT,
            `unsupported Content-Encoding ${JSON.stringify(request.headers['content-encoding'])}; use gzip or identity`);
        }
        if (!ingest.ready) {
          return unavailable(reply, format, ingest, `Elasticsearch is not ready (${ingest.state}); retry later`);
        }
        return undefined;
      },
    },
    async (request, reply) => {
      const format = formatOf(request.headers['content-type'])!;
      const encoding = encodingOf(request.headers['content-encoding'])!;
      const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const body = await decodeBody(raw, encoding, limits.maxDecompressedBytes);
      const records = format === 'json' ? decodeJsonLogs(body) : decodeProtobufLogs(body);
      const sender = senders.get(request);
      if (sender !== undefined) {
        const claim = enforceAgentIdentity(records, sender);
        if (!claim.ok) {
          logger.warn({ code: 'CIA_ERR_AUTH_FORBIDDEN', agent: sender, claimed: claim.claimed }, 'request refused: records claim another agent');
          return sendStatus(reply, format, 403, rpcCode.PERMISSION_DENIED,
            `CIA_ERR_AUTH_FORBIDDEN: authenticated as agent ${sender}, but record ${claim.index} claims ci_audit.agent.id ${claim.claimed}; nothing of this request was stored`);
        }
      }
      const result = await ingest.ingest(records);
      const partial =
        result.rejected === 0
          ? undefined
          : {
              rejectedLogRecords: result.rejected,
              errorMessage: `${result.rejected} of ${result.received} log records were rejected by Elasticsearch; first: ${result.firstError ?? 'unknown'}`,
            };
      return reply.code(200).header('content-type', contentTypes[format]).send(encodeExportResponse(format, partial));
    },
  );

  if (registry !== undefined) registerEnrollRoute(app, { registry, logger });

  return app;
}

/** The client certificate's verdict and CN, on a TLS connection that presented one. */
function peerIdentity(request: FastifyRequest): PeerIdentity | undefined {
  const socket = request.raw.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const cert = socket.getPeerCertificate();
  if (cert === null || Object.keys(cert).length === 0) return undefined;
  const cn = cert.subject?.CN;
  const commonName = Array.isArray(cn) ? cn[0] : cn;
  return commonName === undefined ? { authorized: socket.authorized === true } : { authorized: socket.authorized === true, commonName };
}

function sendStatus(reply: FastifyReply, format: OtlpFormat, status: number, code: number, message: string): FastifyReply {
  return reply.code(status).header('content-type', contentTypes[format]).send(encodeStatus(format, code, message));
}

function unsupportedType(reply: FastifyReply, request: FastifyRequest): FastifyReply {
  const got = request.headers['content-type'];
  return sendStatus(reply, 'json', 415, rpcCode.INVALID_ARGUMENT,
    `unsupported Content-Type ${got === undefined ? '(none)' : JSON.stringify(got)}; use application/x-protobuf or application/json`);
}

function unavailable(reply: FastifyReply, format: OtlpFormat, ingest: Ingest, message: string): FastifyReply {
  reply.header('retry-after', String(ingest.retryAfterSeconds()));
  return sendStatus(reply, format, 503, rpcCode.UNAVAILABLE, message);
}
