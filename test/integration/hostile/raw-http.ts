// A raw HTTP/1.x client on a plain TCP socket for the hostile-request tests: it sends exactly the
// bytes given (broken framing, HTTP/1.0, a trickled or endless body) and parses whatever answer comes.
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { once } from 'node:events';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface RawRequestOptions {
  /** Body chunks, written with back-pressure until the server answers or closes. */
  body?: Buffer | Iterable<Buffer> | AsyncIterable<Buffer>;
  /** Gives up (rejects) after this long without a full answer. */
  timeoutMs?: number;
  /** Local address to send from (any of 127.0.0.0/8): another sender, for the per-sender rate limit. */
  localAddress?: string;
}

/** Sends `head` (request line and headers, without the blank line) and then the body; resolves with the answer. */
export function rawRequest(port: number, head: string, options: RawRequestOptions = {}): Promise<RawResponse> {
  const socket = connect(options.localAddress === undefined ? { port, host: '127.0.0.1' } : { port, host: '127.0.0.1', localAddress: options.localAddress });
  return new Promise<RawResponse>((resolve, reject) => {
    let received = Buffer.alloc(0);
    let done = false;
    const finish = (error: Error | undefined, response?: RawResponse): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (response !== undefined) resolve(response);
      else reject(error ?? new Error('no answer'));
    };
    const timer = setTimeout(() => finish(new Error(`no answer within ${options.timeoutMs ?? 30_000} ms to ${head.split('\r\n', 1)[0]}`)), options.timeoutMs ?? 30_000);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const parsed = parseResponse(received, false);
      if (parsed !== undefined) finish(undefined, parsed);
    });
    socket.on('close', () => {
      const parsed = parseResponse(received, true);
      finish(new Error(`connection closed without an answer (${received.byteLength} bytes received)`), parsed);
    });
    socket.on('error', () => {
      // A reset while we still write is expected once the server has answered: 'close' follows.
    });
    socket.once('connect', () => {
      socket.write(`${head}\r\n\r\n`);
      void writeBody(socket, options.body, () => done).catch(() => undefined);
    });
  });
}

async function writeBody(socket: Socket, body: RawRequestOptions['body'], stop: () => boolean): Promise<void> {
  if (body === undefined) return;
  if (Buffer.isBuffer(body)) {
    socket.write(body);
    return;
  }
  for await (const chunk of body) {
    if (stop() || socket.destroyed) return;
    if (!socket.write(chunk)) {
      await Promise.race([once(socket, 'drain'), once(socket, 'close')]);
    }
  }
}

function parseResponse(bytes: Buffer, closed: boolean): RawResponse | undefined {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine = '', ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const rest = bytes.subarray(end + 4);
  const length = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
  if (length !== undefined) {
    if (rest.byteLength < length) return undefined;
    return { status, headers, body: rest.subarray(0, length).toString('utf8') };
  }
  if (headers['transfer-encoding'] === 'chunked') return closed || rest.includes('\r\n0\r\n\r\n') ? { status, headers, body: dechunk(rest) } : undefined;
  return closed ? { status, headers, body: rest.toString('utf8') } : undefined;
}

function dechunk(bytes: Buffer): string {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < bytes.byteLength) {
    const lineEnd = bytes.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = Number.parseInt(bytes.subarray(at, lineEnd).toString('latin1'), 16);
    if (!(size > 0)) break;
    parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts).toString('utf8');
}

/** `count` chunks of `size` bytes each, made one at a time so the test never holds the whole body. */
export function* chunks(count: number, size: number, fill = 0x41): Generator<Buffer> {
  const chunk = Buffer.alloc(size, fill);
  for (let i = 0; i < count; i++) yield chunk;
}
