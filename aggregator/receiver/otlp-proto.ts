// The part of the OTLP protobuf schema the logs receiver needs, written out here so that the
// aggregator does not depend on generated code. Field numbers are those of opentelemetry-proto
// (opentelemetry/proto/{collector/logs/v1,logs/v1,common/v1,resource/v1}) and google.rpc.Status.
// Fields the aggregator does not read (entity_refs, ...) are left out: protobuf skips unknown
// fields, so newer senders still decode.
// Responses are encoded from here (otlp-encode.ts). Requests are decoded by otlp-protobuf-decode.ts,
// which follows the same field numbers; ExportLogsServiceRequest stays as the reference decoder of
// test/unit/aggregator/otlp-decode-differential.test.ts.
import protobuf from 'protobufjs';

const otlpLogsProto = `
syntax = "proto3";
package ciaudit.otlp;

message ExportLogsServiceRequest { repeated ResourceLogs resource_logs = 1; }

message ExportLogsServiceResponse { ExportLogsPartialSuccess partial_success = 1; }
message ExportLogsPartialSuccess {
  int64 rejected_log_records = 1;
  string error_message = 2;
}

message ResourceLogs {
  Resource resource = 1;
  repeated ScopeLogs scope_logs = 2;
  string schema_url = 3;
}
message ScopeLogs {
  InstrumentationScope scope = 1;
  repeated LogRecord log_records = 2;
  string schema_url = 3;
}
message LogRecord {
  fixed64 time_unix_nano = 1;
  int32 severity_number = 2;
  string severity_text = 3;
  AnyValue body = 5;
  repeated KeyValue attributes = 6;
  uint32 dropped_attributes_count = 7;
  fixed32 flags = 8;
  bytes trace_id = 9;
  bytes span_id = 10;
  fixed64 observed_time_unix_nano = 11;
  string event_name = 12;
}

message Resource {
  repeated KeyValue attributes = 1;
  uint32 dropped_attributes_count = 2;
}
message InstrumentationScope {
  string name = 1;
  string version = 2;
  repeated KeyValue attributes = 3;
  uint32 dropped_attributes_count = 4;
}

message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue {
  string key = 1;
  AnyValue value = 2;
}

// google.rpc.Status, the body of every OTLP error response. details (field 3) is never sent.
message Status {
  int32 code = 1;
  string message = 2;
}
`;

const root = protobuf.parse(otlpLogsProto, { keepCase: false }).root;

export const ExportLogsServiceRequest: protobuf.Type = root.lookupType('ciaudit.otlp.ExportLogsServiceRequest');
export const ExportLogsServiceResponse: protobuf.Type = root.lookupType('ciaudit.otlp.ExportLogsServiceResponse');
export const RpcStatus: protobuf.Type = root.lookupType('ciaudit.otlp.Status');
