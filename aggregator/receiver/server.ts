// The OTLP/HTTP logs receiver: POST /v1/logs (protobuf or JSON; gzip, zstd or identity) and GET /healthz.
//
//   | situation                                   | status | body (in the request's format)          |
//   | stored (or already there)                   | 200    | ExportLogsServiceResponse               |
//   | some records rejected by Elasticsearch      | 200    | ... with partial_success                |
//   | content type not protobuf/JSON              | 415    | google.rpc.Status (JSON)                |
//   | content encoding not gzip/zstd/identity     | 415    | google.rpc.Status, Accept-Encoding set  |
//   | body > limits.max_body_bytes                | 413    | google.rpc.Status                       |
//   | decompressed > limits.max_decompressed_...  | 413    | google.rpc.Status                       |
//   | more records than max_in_flight_records     | 413    | google.rpc.Status; decoding stops there |
//   | OTLP/JSON of > 1,000,000 objects and arrays | 413    | google.rpc.Status; before JSON.parse    |
//   | corrupt gzip/zstd, undecodable body         | 400    | google.rpc.Status                       |
//   | zstd body of more than 16 frames            | 400    | google.rpc.Status                       |
//   | no / unknown / revoked credential (auth on) | 401    | google.rpc.Status, WWW-Authenticate     |
//   | a record claims another agent's id          | 403    | google.rpc.Status; nothing is indexed   |
//   | Elasticsearch not ready / not accepting     | 503    | google.rpc.Status, Retry-After set      |
//   | empty body (or decompressing to nothing)    | 400    | google.rpc.Status                       |
//   | no records, record over limits              | 400    | google.rpc.Status                       |
//   | POST without Content-Length or chunked body | 411    | google.rpc.Status                       |
//   | other method on /v1/logs; unknown path      | 405/404| google.rpc.Status (JSON), Allow on 405  |
//   | body not received within request_timeout   | 408    | (Node's own answer; connection closed)  |
//   | too much in flight; sender over its rate    | 429    | google.rpc.Status, Retry-After set      |
// A request is acknowledged only once Elasticsearch holds its records: never 200 before that.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
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
import { AgentRateLimiter } from '../limits/agent-rate-limiter.ts';
import type { RateLimits } from '../limits/agent-rate-limiter.ts';
import { InFlightGate } from '../limits/in-flight.ts';
import type { InFlightLimits } from '../limits/in-flight.ts';
import { checkRecordBounds } from '../limits/record-bounds.ts';
import type { RecordBounds } from '../limits/record-bounds.ts';
import { contentEncodings, decodeBody, encodingOf, formatOf } from './body.ts';
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
    /** Time to receive a whole request; slower ones get 408 (slowloris). Default 30 s. */
    requestTimeoutMs?: number;
    /**
     * Work in flight; beyond it 429. `maxRecords` is also the most records one request may hold
     * (413 beyond, decoding stops there). Default: unbounded (tests of other parts).
     */
    inFlight?: InFlightLimits;
    /** Per-sender rates; beyond them 429. Default: none. */
    rate?: RateLimits;
    /** Attributes per record and bytes per value; beyond them 400. Default: none. */
    record?: RecordBounds;
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
  const requestTimeout = limits.requestTimeoutMs ?? 30_000;
  // Node checks request timeouts only every connectionsCheckingInterval (default 30 s): check often
  // enough that a slow body is cut off near its deadline. Headers must come within the same time.
  const serverOptions = { connectionsCheckingInterval: Math.min(1000, requestTimeout), headersTimeout: Math.min(60_000, requestTimeout) };
  const clientErrorHandler = (error: Error & { code?: string }, socket: Duplex): void => clientError(error, socket, requestTimeout);
  const common = { bodyLimit: limits.maxBodyBytes, logger: false, return503OnClosing: true, requestTimeout, clientErrorHandler } as const;
  const app = (options.https === undefined
    ? Fastify({ ...common, http: serverOptions })
    : Fastify({ ...common, https: { ...options.https, ...serverOptions } })) as unknown as FastifyInstance;
  // Once closing, an answer closes its connection too: Node closes only the connections idle when
  // close() starts, so one answered later kept the close waiting for its keep-alive timeout (72 s),
  // beyond a service manager's grace period (then SIGKILL before the spool and anchor are closed).
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) void reply.header('connection', 'close');
    done(null, payload);
  });
  /** The agent each authenticated request speaks for. */
  const senders = new WeakMap<FastifyRequest, string>();
  const gate = limits.inFlight === undefined ? undefined : new InFlightGate(limits.inFlight);
  // A request with more records than may be in flight at all could never be admitted; the decoders
  // stop at the first record beyond it, so that a small body of empty records (2 bytes each, about
  // 200 of heap once decoded) cannot build millions of them first.
  const maxRecords = limits.inFlight?.maxRecords ?? Number.POSITIVE_INFINITY;
  const rates = limits.rate === undefined ? undefined : new AgentRateLimiter(limits.rate);
  /** The sender a request is rate-limited as: its agent id when authenticated, else its address. */
  const senderKey = (request: FastifyRequest): string => senders.get(request) ?? `address ${request.ip}`;

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
        // Without a length or chunked framing an HTTP/1.0 body runs until the connection closes.
        if (request.headers['content-length'] === undefined && request.headers['transfer-encoding'] === undefined) {
          return sendStatus(reply, format, 411, rpcCode.INVALID_ARGUMENT, 'Content-Length required (or Transfer-Encoding: chunked)');
        }
        if (encodingOf(request.headers['content-encoding']) === undefined) {
          reply.header('accept-encoding', contentEncodings.join(', '));
          return sendStatus(reply, format, 415, rpcCode.INVALID_ARGUMENT,
            `unsupported Content-Encoding ${JSON.stringify(request.headers['content-encoding'])}; use one of ${contentEncodings.join(', ')}`);
        }
        if (!ingest.ready) {
          return unavailable(reply, format, ingest, `Elasticsearch is not ready (${ingest.state}); retry later`);
        }
        const rate = rates?.takeRequest(senderKey(request));
        if (rate !== undefined && !rate.ok) {
          logger.debug({ code: 'CIA_ERR_RECEIVER_RATE_LIMITED', sender: senderKey(request) }, 'request refused: sender over its rate');
          return tooMany(reply, format, rate.retryAfterSeconds, `CIA_ERR_RECEIVER_RATE_LIMITED: ${rate.message}`);
        }
        const admitted = gate?.admitRequest();
        if (admitted !== undefined) {
          if (!admitted.ok) return tooMany(reply, format, 1, `CIA_ERR_RECEIVER_OVERLOADED: ${admitted.message}`);
          // 'close' fires when the answer is sent and when the client goes away mid-request.
          reply.raw.once('close', admitted.release);
        }
        return undefined;
      },
    },
    async (request, reply) => {
      const format = formatOf(request.headers['content-type'])!;
      const encoding = encodingOf(request.headers['content-encoding'])!;
      const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      if (raw.byteLength === 0) {
        return sendStatus(reply, format, 400, rpcCode.INVALID_ARGUMENT, 'empty body: expected an ExportLogsServiceRequest with log records');
      }
      const body = decodeBody(raw, encoding, limits.maxDecompressedBytes);
      if (body.byteLength === 0) {
        return sendStatus(reply, format, 400, rpcCode.INVALID_ARGUMENT,
          `empty body: its ${encoding} data decompresses to 0 bytes; expected an ExportLogsServiceRequest with log records`);
      }
      const records = format === 'json' ? decodeJsonLogs(body, maxRecords) : decodeProtobufLogs(body, maxRecords);
      if (limits.record !== undefined) {
        const problem = checkRecordBounds(records, limits.record);
        if (problem !== undefined) {
          logger.debug({ code: 'CIA_ERR_RECEIVER_RECORD_LIMIT', error: problem }, 'bad request');
          return sendStatus(reply, format, 400, rpcCode.INVALID_ARGUMENT, `CIA_ERR_RECEIVER_RECORD_LIMIT: ${problem}; nothing of this request was stored`);
        }
      }
      const sender = senders.get(request);
      if (sender !== undefined) {
        const claim = enforceAgentIdentity(records, sender);
        if (!claim.ok) {
          logger.warn({ code: 'CIA_ERR_AUTH_FORBIDDEN', agent: sender, claimed: claim.claimed }, 'request refused: records claim another agent');
          return sendStatus(reply, format, 403, rpcCode.PERMISSION_DENIED,
            `CIA_ERR_AUTH_FORBIDDEN: authenticated as agent ${sender}, but record ${claim.index} claims ci_audit.agent.id ${claim.claimed}; nothing of this request was stored`);
        }
      }
      const rate = rates?.takeRecords(senderKey(request), records.length);
      if (rate !== undefined && !rate.ok) return tooMany(reply, format, rate.retryAfterSeconds, `CIA_ERR_RECEIVER_RATE_LIMITED: ${rate.message}`);
      const held = gate?.admitRecords(records.length, body.byteLength);
      if (held !== undefined && !held.ok) return tooMany(reply, format, 1, `CIA_ERR_RECEIVER_OVERLOADED: ${held.message}`);
      let result;
      try {
        result = await ingest.ingest(records);
      } finally {
        if (held !== undefined) held.release();
      }
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

  // Fastify answers other methods with 404; OTLP clients and people are better served by 405 and Allow.
  app.route({
    method: ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
    url: logsPath,
    handler: async (request, reply) => {
      reply.header('allow', 'POST');
      return sendStatus(reply, 'json', 405, rpcCode.INVALID_ARGUMENT, `method ${request.method} not allowed on ${logsPath}; use POST`);
    },
  });
  app.setNotFoundHandler(async (request, reply) =>
    sendStatus(reply, 'json', 404, rpcCode.NOT_FOUND, `no route ${request.method} ${request.url.split('?', 1)[0] ?? ''}: logs go to POST ${logsPath}, health to GET ${healthPath}`));

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
  const notBefore = Date.parse(cert.valid_from);
  const refused = socket.authorized === true ? undefined : socket.authorizationError;
  return {
    authorized: socket.authorized === true,
    ...(commonName === undefined ? {} : { commonName }),
    ...(Number.isNaN(notBefore) ? {} : { notBefore }),
    ...(refused === undefined ? {} : { refusedBecause: refused instanceof Error ? refused.message : String(refused) }),
  };
}

/**
 * Errors Node's HTTP parser and timers raise before a request reaches a route: a request not received
 * within the timeout (slowloris) and malformed HTTP (e.g. Transfer-Encoding with Content-Length). The
 * answer is written on the socket, which is then closed, as Node itself would; but with a message.
 */
function clientError(error: Error & { code?: string }, socket: Duplex, requestTimeoutMs: number): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  let head: string;
  let message: string;
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    head = '408 Request Timeout';
    message = `request not received within limits.request_timeout_ms (${requestTimeoutMs} ms); the connection is closed`;
  } else if (error.code === 'HPE_HEADER_OVERFLOW') {
    head = '431 Request Header Fields Too Large';
    message = 'request headers too large';
  } else {
    head = '400 Bad Request';
    message = `malformed HTTP request (${error.code ?? 'parse error'}): ${error.message}`;
  }
  if (socket.writable) {
    const body = encodeStatus('json', rpcCode.INVALID_ARGUMENT, message);
    socket.write(`HTTP/1.1 ${head}\r\nContent-Type: application/json\r\nContent-Length: ${body.byteLength}\r\nConnection: close\r\n\r\n`);
    socket.write(body);
  }
  // Flush the answer, then close: the client may still be trickling bytes we no longer read.
  (socket as Socket).destroySoon();
}

function sendStatus(reply: FastifyReply, format: OtlpFormat, status: number, code: number, message: string): FastifyReply {
  return reply.code(status).header('content-type', contentTypes[format]).send(encodeStatus(format, code, message));
}

function unsupportedType(reply: FastifyReply, request: FastifyRequest): FastifyReply {
  const got = request.headers['content-type'];
  return sendStatus(reply, 'json', 415, rpcCode.INVALID_ARGUMENT,
    `unsupported Content-Type ${got === undefined ? '(none)' : JSON.stringify(got)}; use application/x-protobuf or application/json`);
}

function tooMany(reply: FastifyReply, format: OtlpFormat, retryAfterSeconds: number, message: string): FastifyReply {
  reply.header('retry-after', String(retryAfterSeconds));
  return sendStatus(reply, format, 429, rpcCode.RESOURCE_EXHAUSTED, message);
}

function unavailable(reply: FastifyReply, format: OtlpFormat, ingest: Ingest, message: string): FastifyReply {
  reply.header('retry-after', String(ingest.retryAfterSeconds()));
  return sendStatus(reply, format, 503, rpcCode.UNAVAILABLE, message);
}
