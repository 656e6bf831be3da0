"""A real OTLP/gRPC trace receiver: the collector's own service definition
(`opentelemetry-proto`) served by grpcio, keeping every span it is sent.

Used in process by the tests (`OtlpReceiver`), or as a process of its own
(`python otlp_receiver.py --listen ADDR --out FILE`, one JSON span a line)
where the exporter runs in another network namespace.
"""

from __future__ import annotations

import argparse
import json
import threading
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2

SPAN_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}


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
        self._lock = threading.Lock()
        self._spans: list[dict[str, Any]] = []
        self._on_spans = on_spans
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Service(self), self.server)
        port = self.server.add_insecure_port(listen)
        assert port, f"cannot listen on {listen}"
        host = listen.rsplit(":", 1)[0]
        self.endpoint = f"http://{host}:{port}"
        self.server.start()

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
