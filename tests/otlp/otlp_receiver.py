#!/usr/bin/env python3
"""A minimal OTLP/HTTP trace receiver for Swamp's tracing test.

    otlp_receiver.py OUT.jsonl

Listens on 127.0.0.1 on a free port and prints "PORT <n>" on stdout once it
accepts connections. Each POST /v1/traces with a protobuf body
(application/x-protobuf) is decoded with the official OpenTelemetry protobuf
definitions (the opentelemetry-proto package) as an ExportTraceServiceRequest,
and every span in it is appended to OUT.jsonl as one JSON object: service name,
scope, trace id, span id, parent span id (hex), name, kind, attributes, events
and status. It answers with an empty ExportTraceServiceResponse, as a collector
does. Anything else is refused (404, 405, 413, 415, 400).

It runs until killed. Bodies are bounded (MAX_BODY).
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

MAX_BODY = 16 * 1024 * 1024
PROTOBUF = "application/x-protobuf"


def any_value(value):
    """An AnyValue as plain JSON."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def attributes(key_values):
    return {kv.key: any_value(kv.value) for kv in key_values}


def span_record(service, scope, span):
    return {
        "service": service,
        "scope": scope,
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "name": span.name,
        "kind": Span.SpanKind.Name(span.kind),
        "attributes": attributes(span.attributes),
        "events": [
            {"name": e.name, "attributes": attributes(e.attributes)}
            for e in span.events
        ],
        "status": {
            "code": Status.StatusCode.Name(span.status.code),
            "message": span.status.message,
        },
    }


class Receiver(BaseHTTPRequestHandler):
    out = None
    lock = threading.Lock()

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def answer(self, code, body=b"", content_type="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(405, b"POST only\n")

    def do_POST(self):
        if self.path != "/v1/traces":
            self.answer(404, b"only /v1/traces\n")
            return
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type != PROTOBUF or self.headers.get("Content-Encoding"):
            self.answer(415, b"uncompressed application/x-protobuf only\n")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.answer(411, b"Content-Length required\n")
            return
        if length < 0 or length > MAX_BODY:
            self.answer(413, b"too large\n")
            return
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(self.rfile.read(length))
        except DecodeError as e:
            self.answer(400, f"not an ExportTraceServiceRequest: {e}\n".encode())
            return
        lines = []
        for resource_spans in request.resource_spans:
            service = attributes(resource_spans.resource.attributes).get("service.name")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    record = span_record(service, scope_spans.scope.name, span)
                    lines.append(json.dumps(record, sort_keys=True) + "\n")
        with self.lock:
            self.out.writelines(lines)
            self.out.flush()
        self.answer(200, ExportTraceServiceResponse().SerializeToString(), PROTOBUF)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    Receiver.out = open(sys.argv[1], "a", encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
