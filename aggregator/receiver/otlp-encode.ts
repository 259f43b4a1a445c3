// Response bodies of the OTLP/HTTP logs endpoint, in the format of the request: an
// ExportLogsServiceResponse on success, a google.rpc.Status on failure.
import { ExportLogsServiceResponse, RpcStatus } from './otlp-proto.ts';

export type OtlpFormat = 'protobuf' | 'json';

export const contentTypes: Record<OtlpFormat, string> = {
  protobuf: 'application/x-protobuf',
  json: 'application/json',
};

/** gRPC status codes used in google.rpc.Status bodies (the HTTP status is what clients act on). */
export const rpcCode = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

export interface PartialSuccess {
  rejectedLogRecords: number;
  errorMessage: string;
}

/** An ExportLogsServiceResponse: empty when everything was accepted. */
export function encodeExportResponse(format: OtlpFormat, partialSuccess?: PartialSuccess): Buffer {
  if (format === 'json') {
    return Buffer.from(JSON.stringify(partialSuccess === undefined ? {} : { partialSuccess }));
  }
  const message = ExportLogsServiceResponse.fromObject(
    partialSuccess === undefined
      ? {}
      : { partialSuccess: { rejectedLogRecords: partialSuccess.rejectedLogRecords, errorMessage: partialSuccess.errorMessage } },
  );
  return Buffer.from(ExportLogsServiceResponse.encode(message).finish());
}

/** A google.rpc.Status body. */
export function encodeStatus(format: OtlpFormat, code: number, message: string): Buffer {
  if (format === 'json') return Buffer.from(JSON.stringify({ code, message }));
  return Buffer.from(RpcStatus.encode(RpcStatus.fromObject({ code, message })).finish());
}
