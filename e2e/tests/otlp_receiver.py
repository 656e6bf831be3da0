"""A real OTLP/gRPC trace receiver: the collector's own service definition
(`opentelemetry-proto`) served by grpcio, keeping every span it is sent; and
an OTLP/HTTP one (`OtlpHttpReceiver`, the same messages over HTTP/1.1).

Used in process by the tests (`OtlpReceiver`), or as a process of its own
(`python otlp_receiver.py --listen ADDR --out FILE`, one JSON span a line)
where the exporter runs in another network namespace.
"""

from __future__ import annotations

import argparse
import json
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2

SPAN_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}
# The largest OTLP/HTTP body taken (the data plane's batches are far below).
MAX_HTTP_BODY = 16 * 1024 * 1024


def any_value(v: common_pb2.AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind)


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


def flatten(request: trace_service_pb2.ExportTraceServiceRequest) -> list[dict[str, Any]]:
    """Every span of an export request as a plain dict (ids in hex)."""
    out = []
    for rs in request.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append({
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "name": s.name,
                    "kind": SPAN_KINDS.get(s.kind, str(s.kind)),
                    "start_ns": s.start_time_unix_nano,
                    "end_ns": s.end_time_unix_nano,
                    "attributes": attributes(s.attributes),
                    "status": STATUS_CODES.get(s.status.code, str(s.status.code)),
                    "status_message": s.status.message,
                    "resource": resource,
                    "scope": ss.scope.name,
                })
    return out


class _Service(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: "OtlpReceiver") -> None:
        self.sink = sink

    def Export(self, request, context):  # noqa: N802 - the gRPC method's name
        self.sink._add(flatten(request))
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver:
    """An OTLP/gRPC endpoint on `listen` keeping the spans it receives."""

    def __init__(self, listen: str = "127.0.0.1:0", on_spans: Any = None) -> None:
        self._init_sink(on_spans)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Service(self), self.server)
        port = self.server.add_insecure_port(listen)
        assert port, f"cannot listen on {listen}"
        host = listen.rsplit(":", 1)[0]
        self.endpoint = f"http://{host}:{port}"
        self.server.start()

    def _init_sink(self, on_spans: Any) -> None:
        self._lock = threading.Lock()
        self._spans: list[dict[str, Any]] = []
        self._on_spans = on_spans

    def _add(self, spans: list[dict[str, Any]]) -> None:
        with self._lock:
            self._spans.extend(spans)
        if self._on_spans is not None:
            self._on_spans(spans)

    def spans(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._spans)

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        return [s for s in self.spans() if s["trace_id"] == trace_id]

    def stop(self) -> None:
        self.server.stop(grace=1).wait(5)


class _HttpHandler(BaseHTTPRequestHandler):
    """POST /v1/traces with an `ExportTraceServiceRequest` in protobuf, as
    OTLP/HTTP sends it; anything else is 404, a body over the bound 413."""

    sink: "OtlpHttpReceiver"
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("content-length") or 0)
        if self.path != "/v1/traces" or self.headers.get("content-type") != "application/x-protobuf":
            return self._answer(404, b"")
        if length > MAX_HTTP_BODY:
            return self._answer(413, b"")
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.ParseFromString(self.rfile.read(length))
        self.sink._add(flatten(request))
        self._answer(200, trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

    def do_GET(self) -> None:  # noqa: N802
        self._answer(404, b"")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class OtlpHttpReceiver(OtlpReceiver):
    """An OTLP/HTTP (protobuf) endpoint on plain HTTP, keeping the spans it
    receives; put a TLS front (nginx) before it for https."""

    def __init__(self, listen: str = "127.0.0.1:0") -> None:
        self._init_sink(None)
        host, port = listen.rsplit(":", 1)
        handler = type("Handler", (_HttpHandler,), {"sink": self})
        self.http = ThreadingHTTPServer((host, int(port)), handler)
        self.port = self.http.server_address[1]
        self.endpoint = f"http://{host}:{self.port}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--listen", required=True)
    ap.add_argument("--out", required=True, help="file the spans are appended to, one JSON object a line")
    args = ap.parse_args()
    out = open(args.out, "a", buffering=1)  # noqa: SIM115 - open for the process's life
    lock = threading.Lock()

    def write(spans: list[dict[str, Any]]) -> None:
        with lock:
            for s in spans:
                out.write(json.dumps(s) + "\n")

    r = OtlpReceiver(args.listen, on_spans=write)
    print(f"otlp-receiver listening on {r.endpoint.removeprefix('http://')}", flush=True)
    r.server.wait_for_termination()


if __name__ == "__main__":
    main()
