"""Per-InferenceService HTTP routers that split requests by revision weight, and their Knative-style metrics.

Each router listens on its own ``127.0.0.1`` port (the InferenceService's ``status.url``), picks a revision
for every request with probability ``percent/100`` from the current ``traffic[]`` weights, forwards the
request unchanged to that revision's model server and records, per revision, what Knative's queue-proxy
records (``knative.dev/serving/pkg/metrics``, OpenCensus names as scraped by Prometheus):

- ``revision_request_count`` (counter; labels ``namespace_name``, ``service_name``, ``configuration_name``,
  ``revision_name``, ``pod_name``, ``container_name``, ``response_code``, ``response_code_class``)
- ``revision_request_latencies`` (histogram in MILLISECONDS, queue-proxy's buckets, same labels)

Every response carries ``x-kaiops-revision: <revision>`` (sandbox-only) so a client can see the split.
The metrics of all routers are served by one :class:`MetricsServer` (``/metrics``).
"""

from __future__ import annotations

import http.client
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from sandbox.kserve.faults import NO_FAULT, Fault

log = logging.getLogger("sandbox.kserve.router")

# queue-proxy's request latency distribution (milliseconds)
LATENCY_BUCKETS_MS = (5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 900,
                      1000, 2000, 5000, 10000, 20000, 50000, 100000)
REVISION_HEADER = "x-kaiops-revision"
FORWARD_TIMEOUT_S = 60.0
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
               "proxy-authenticate", "host", "content-length"}


@dataclass
class _Series:
    count: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS_MS))
    total_ms: float = 0.0


class QueueProxyMetrics:
    """Thread-safe store of the two queue-proxy metrics, rendered in the Prometheus text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[tuple[str, str], ...], _Series] = {}

    def observe(self, labels: dict[str, str], code: int, latency_ms: float) -> None:
        """Count one request of ``labels`` (revision labels) that answered ``code`` after ``latency_ms``."""
        key = tuple(sorted({**labels, "response_code": str(code), "response_code_class": f"{code // 100}xx"}.items()))
        with self._lock:
            series = self._series.setdefault(key, _Series())
            series.count += 1
            series.total_ms += latency_ms
            for i, bound in enumerate(LATENCY_BUCKETS_MS):
                if latency_ms <= bound:
                    series.buckets[i] += 1

    def render(self) -> str:
        """The exposition text (``text/plain; version=0.0.4``)."""
        lines = [
            "# HELP revision_request_count The number of requests that are routed to queue-proxy",
            "# TYPE revision_request_count counter",
        ]
        with self._lock:
            items = [(k, _Series(v.count, list(v.buckets), v.total_ms)) for k, v in self._series.items()]
        for key, s in items:
            lines.append(f"revision_request_count{{{_labels(key)}}} {s.count}")
        lines += [
            "# HELP revision_request_latencies The response latencies of the requests (milliseconds)",
            "# TYPE revision_request_latencies histogram",
        ]
        for key, s in items:
            base = _labels(key)
            for bound, n in zip(LATENCY_BUCKETS_MS, s.buckets, strict=True):
                lines.append(f'revision_request_latencies_bucket{{{base},le="{bound}"}} {n}')
            lines.append(f'revision_request_latencies_bucket{{{base},le="+Inf"}} {s.count}')
            lines.append(f"revision_request_latencies_sum{{{base}}} {s.total_ms}")
            lines.append(f"revision_request_latencies_count{{{base}}} {s.count}")
        return "\n".join(lines) + "\n"


def _labels(key: tuple[tuple[str, str], ...]) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ",".join(f'{k}="{esc(v)}"' for k, v in key)


METRICS = QueueProxyMetrics()


@dataclass(frozen=True)
class Backend:
    """One revision behind a router: its model server URL, weight (percent), faults and series name."""

    revision: str
    url: str
    percent: int
    fault: Fault = NO_FAULT
    series: str = ""  # revision_name label of its metrics ('' = the revision name)


def choose(backends: list[Backend], rng: random.Random) -> Backend | None:
    """Pick a backend with probability proportional to ``percent`` (None when all weights are 0)."""
    total = sum(max(b.percent, 0) for b in backends)
    if total <= 0:
        return None
    point = rng.uniform(0, total)
    acc = 0.0
    for b in backends:
        acc += max(b.percent, 0)
        if point <= acc and b.percent > 0:
            return b
    return [b for b in backends if b.percent > 0][-1]


class Router:
    """The router of one InferenceService.

    Args:
        namespace: the InferenceService's namespace.
        name: the InferenceService's name (Knative service ``<name>-predictor``).
        port: loopback port to listen on.
        metrics: where to record requests.
    """

    def __init__(self, namespace: str, name: str, port: int, metrics: QueueProxyMetrics = METRICS) -> None:
        self.namespace, self.name, self.port, self.metrics = namespace, name, port, metrics
        self._backends: list[Backend] = []
        self._lock = threading.Lock()
        self._rng = random.Random()
        router = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                router.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"router-{namespace}-{name}",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_backends(self, backends: list[Backend]) -> None:
        """Replace the traffic split (takes effect for the next request)."""
        with self._lock:
            self._backends = list(backends)

    def backends(self) -> list[Backend]:
        with self._lock:
            return list(self._backends)

    def labels(self, revision: str) -> dict[str, str]:
        config = f"{self.name}-predictor"
        return {"namespace_name": self.namespace, "service_name": config, "configuration_name": config,
                "revision_name": revision, "pod_name": f"{revision}-deployment-sandbox",
                "container_name": "queue-proxy"}

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        backend = choose(self.backends(), self._rng)
        if backend is None:
            _reply(req, 503, b'{"error": "no ready revision"}', "")
            return
        start = time.monotonic()
        fault = backend.fault
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000.0)
        if fault.error_rate and self._rng.random() < fault.error_rate:
            code, payload, headers = 500, b'{"error": "injected fault (sandbox.kaiops.io/fault-error-rate)"}', {}
        else:
            code, payload, headers = _forward(backend.url, req, body)
        latency_ms = (time.monotonic() - start) * 1000.0
        self.metrics.observe(self.labels(backend.series or backend.revision), code, latency_ms)
        _reply(req, code, payload, backend.revision, headers)

    def close(self) -> None:
        """Stop listening."""
        self._server.shutdown()
        self._server.server_close()


def _forward(base_url: str, req: BaseHTTPRequestHandler, body: bytes) -> tuple[int, bytes, dict[str, str]]:
    target = urlparse(base_url)
    headers = {k: v for k, v in req.headers.items() if k.lower() not in _HOP_BY_HOP}
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=FORWARD_TIMEOUT_S)
    try:
        conn.request(req.command, req.path, body=body or None, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        out = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP and k.lower() != "server"}
        return resp.status, payload, out
    except (OSError, http.client.HTTPException) as exc:
        # queue-proxy answers 502 when the user container refuses or drops the connection
        return 502, f'{{"error": "revision unreachable: {exc.__class__.__name__}"}}'.encode(), {}
    finally:
        conn.close()


def _reply(req: BaseHTTPRequestHandler, code: int, payload: bytes, revision: str,
           headers: dict[str, str] | None = None) -> None:
    try:
        req.send_response(code)
        for k, v in (headers or {"content-type": "application/json"}).items():
            req.send_header(k, v)
        if revision:
            req.send_header(REVISION_HEADER, revision)
        req.send_header("Content-Length", str(len(payload)))
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(payload)
    except OSError:
        pass  # client went away


class MetricsServer:
    """Serves ``/metrics`` of all routers (one Prometheus target) on a loopback port."""

    def __init__(self, port: int, metrics: QueueProxyMetrics = METRICS) -> None:
        self.port = port

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                payload = metrics.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="kserve-metrics", daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
