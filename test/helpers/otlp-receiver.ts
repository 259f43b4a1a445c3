// A real OTLP/HTTP endpoint for agent tests: it decodes each request (gzip or not) with the
// aggregator's own decoder, so tests look at exactly what the agent's exporter put on the wire, and
// lets the test answer it. Closed when the test ends.
import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { TestContext } from 'node:test';
import { gunzipSync } from 'node:zlib';
import type { DecodedLogRecord } from '../../aggregator/log-record.ts';
import { decodeProtobufLogs } from '../../aggregator/receiver/otlp-decode.ts';

/** Answers one request whose records are `records`: with `res.writeHead(...).end(...)`. */
export type OtlpHandler = (records: DecodedLogRecord[], res: ServerResponse) => void;

/** Accepts a request as an OTLP/HTTP receiver does: 200 with an empty protobuf response. */
export function accept(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
}

/** Starts the endpoint on a free loopback port; resolves to its URL. */
export async function startOtlpReceiver(t: TestContext, handle: OtlpHandler): Promise<string> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      handle(decodeProtobufLogs(body), res);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${address.port}`;
}
