// A real OTLP/HTTP endpoint (test/helpers/otlp-receiver.ts) that refuses the requests a test picks
// with 400 and a google.rpc.Status style JSON message, as a receiver refuses a malformed batch, and
// accepts the rest.
import type { TestContext } from 'node:test';
import type { DecodedLogRecord } from '../../../../aggregator/log-record.ts';
import { accept, startOtlpReceiver } from '../../../helpers/otlp-receiver.ts';

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
  receiver.url = await startOtlpReceiver(t, (records, res) => {
    receiver.attempts.push(records);
    const refusal = receiver.reject(records);
    if (refusal !== undefined) {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 3, message: refusal }));
      return;
    }
    receiver.accepted.push(...records);
    accept(res);
  });
  return receiver;
}

/** A request is refused when one of its records has a body starting with `prefix`. */
export function refuseBodies(prefix: string, message = 'record 0: body is not an audit line'): RejectingReceiver['reject'] {
  return (records) => (records.some((r) => typeof r.body === 'string' && r.body.startsWith(prefix)) ? message : undefined);
}
