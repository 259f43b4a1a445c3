// A real OTLP/HTTP endpoint that refuses the requests a test picks with 400 and a google.rpc.Status
// style JSON message, as a receiver refuses a malformed batch, and accepts the rest. It decodes each
// request with the aggregator's own decoder, so tests look at exactly what went over the wire.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { TestContext } from 'node:test';
import { gunzipSync } from 'node:zlib';
import type { DecodedLogRecord } from '../../../../aggregator/log-record.ts';
import { decodeProtobufLogs } from '../../../../aggregator/receiver/otlp-decode.ts';

export interface RejectingReceiver {
  url: string;
  /** Records of accepted requests, in arrival order. */
  accepted: DecodedLogRecord[];
  /** Records of every request, refused ones included. */
  attempts: DecodedLogRecord[][];
  /** The message to refuse a request with (400), or undefined to accept it. */
  reject: (records: readonly DecodedLogRecord[]) => string | undefined;
}

export async function startRejectingReceiver(t: TestContext, reject: RejectingReceiver['reject']): Promise<RejectingReceiver> {
  const receiver: RejectingReceiver = { url: '', accepted: [], attempts: [], reject };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const records = decodeProtobufLogs(body);
      receiver.attempts.push(records);
      const refusal = receiver.reject(records);
      if (refusal !== undefined) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 3, message: refusal }));
        return;
      }
      receiver.accepted.push(...records);
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  receiver.url = `http://127.0.0.1:${address.port}`;
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return receiver;
}

/** A request is refused when one of its records has a body starting with `prefix`. */
export function refuseBodies(prefix: string, message = 'record 0: body is not an audit line'): RejectingReceiver['reject'] {
  return (records) => (records.some((r) => typeof r.body === 'string' && r.body.startsWith(prefix)) ? message : undefined);
}
