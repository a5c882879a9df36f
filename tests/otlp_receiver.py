"""A real OTLP/HTTP receiver for tests: http.server on 127.0.0.1, protobuf decoded with
opentelemetry-proto, so a test reads back exactly what a collector would have received.

`Receiver.spans()`, `.metrics()` and `.logs()` flatten the export requests into plain
records (hex ids, attribute dicts); `answer` makes it refuse exports (an HTTP status code)
for the tests of a failing endpoint.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

_REQUESTS = {
    "/v1/traces": (trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
    "/v1/metrics": (metrics_service_pb2.ExportMetricsServiceRequest, metrics_service_pb2.ExportMetricsServiceResponse),
    "/v1/logs": (logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
}


def value_of(any_value: Any) -> Any:
    """An OTLP AnyValue as a Python value."""
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    value = getattr(any_value, kind)
    if kind == "array_value":
        return [value_of(v) for v in value.values]
    if kind == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in value.values}
    return value


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in kvs}


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    attributes: dict[str, Any]
    status_code: int
    status_message: str
    resource: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Metric:
    name: str
    unit: str
    kind: str  # sum | gauge | histogram
    points: list[tuple[dict[str, Any], float]]  # (attributes, value or histogram sum)
    resource: dict[str, Any]


@dataclass
class Log:
    body: Any
    severity_number: int
    severity_text: str
    event_name: str
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]


class Receiver:
    def __init__(self) -> None:
        self.requests: dict[str, list[Any]] = {path: [] for path in _REQUESTS}
        self.answer = 200  # the HTTP status every export gets
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                types = _REQUESTS.get(self.path)
                if types is None or receiver.answer != 200:
                    self.send_response(404 if types is None else receiver.answer)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                request = types[0].FromString(body)
                with receiver._lock:
                    receiver.requests[self.path].append(request)
                reply = types[1]().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="otlp-receiver", daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _taken(self, path: str) -> list[Any]:
        with self._lock:
            return list(self.requests[path])

    def spans(self) -> list[Span]:
        out = []
        for request in self._taken("/v1/traces"):
            for rs in request.resource_spans:
                resource = attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        out.append(Span(s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(), s.kind,
                                        attributes(s.attributes), s.status.code, s.status.message, resource,
                                        [(e.name, attributes(e.attributes)) for e in s.events]))
        return out

    def metrics(self) -> dict[str, Metric]:
        """The latest export of each metric (cumulative temporality: the latest holds it all)."""
        out: dict[str, Metric] = {}
        for request in self._taken("/v1/metrics"):
            for rm in request.resource_metrics:
                resource = attributes(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        kind = m.WhichOneof("data")
                        data = getattr(m, kind)
                        points = [(attributes(p.attributes),
                                   p.sum if kind == "histogram" else (p.as_double if p.HasField("as_double")
                                                                      else p.as_int))
                                  for p in data.data_points]
                        out[m.name] = Metric(m.name, m.unit, kind, points, resource)
        return out

    def logs(self) -> list[Log]:
        out = []
        for request in self._taken("/v1/logs"):
            for rl in request.resource_logs:
                resource = attributes(rl.resource.attributes)
                for sl in rl.scope_logs:
                    for r in sl.log_records:
                        out.append(Log(value_of(r.body), r.severity_number, r.severity_text, r.event_name,
                                       r.trace_id.hex(), r.span_id.hex(), attributes(r.attributes), resource))
        return out
