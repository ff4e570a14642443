"""Per-InferenceService HTTP routers that split requests by revision weight, and their Knative-style metrics.

Each router listens on its own ``127.0.0.1`` port (the InferenceService's ``status.url``), picks a revision
for every request with probability ``percent/100`` from the current ``traffic[]`` weights, forwards the
request unchanged to that revision's model server and records, per revision, what the real queue-proxy of
Knative Serving v0.48.1 exports through the OpenTelemetry Prometheus exporter (``pkg/queue/request_metric.go``,
``pkg/queue/sharedmain/otel.go``; exporter ``go.opentelemetry.io/otel/exporters/prometheus`` v0.61.0 with
``UnderscoreEscapingWithSuffixes``, as ``knative.dev/pkg/observability/metrics`` builds it):

- ``kn_serving_invocation_duration_seconds`` histogram in SECONDS, queue-proxy's ``latencyBounds``; its only
  attribute is ``http_response_status_code``, plus the exporter's ``otel_scope_*`` labels;
- ``target_info`` (value 1): the OTel *resource* - ``k8s_namespace_name``, ``k8s_pod_name``,
  ``k8s_container_name="queue-proxy"``, ``kn_service_name``, ``kn_configuration_name``, ``kn_revision_name``,
  ``service_name``, ``service_instance_id``, ``service_version``. The revision is NOT a label of the request
  series: a query joins ``target_info`` on ``(job, instance)``.

As in a cluster, where each revision Pod's queue-proxy is its own scrape target, each revision is served on its
own path ``/metrics/<namespace>/<revision>`` of the one :class:`MetricsServer` and announced to Prometheus as
its own target (:meth:`QueueProxyMetrics.watch_targets`, with an ``instance`` label of its own).
``/metrics`` answers everything at once (health checks; not scraped).

Every response carries ``x-kaiops-revision: <revision>`` (sandbox-only) so a client can see the split.
"""

from __future__ import annotations

import http.client
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from sandbox.kserve.faults import NO_FAULT, Fault

log = logging.getLogger("sandbox.kserve.router")

# queue-proxy's request duration buckets (seconds): latencyBounds in knative.dev/serving v0.48.1
# pkg/queue/request_metric.go
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
DURATION = "kn_serving_invocation_duration_seconds"
SCOPE = {"otel_scope_name": "knative.dev/serving/pkg/queue", "otel_scope_schema_url": "", "otel_scope_version": ""}
REVISION_HEADER = "x-kaiops-revision"
FORWARD_TIMEOUT_S = 60.0
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
               "proxy-authenticate", "host", "content-length"}


@dataclass
class _Series:
    count: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS_S))
    total_s: float = 0.0


TargetKey = tuple[str, str]  # (namespace, revision)


class QueueProxyMetrics:
    """Thread-safe store of queue-proxy series per revision target, rendered in the Prometheus text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._resources: dict[TargetKey, dict[str, str]] = {}
        self._series: dict[tuple[TargetKey, int], _Series] = {}
        self._watchers: list[Callable[[TargetKey, dict[str, str]], None]] = []

    def register(self, resource: dict[str, str]) -> TargetKey:
        """Make the revision target of ``resource`` (``target_info`` labels, see :meth:`Router.resource`)
        exist, with no request series yet (as a queue-proxy before its first request); return its key."""
        key = (resource["k8s_namespace_name"], resource["kn_revision_name"])
        with self._lock:
            new = key not in self._resources
            self._resources[key] = dict(resource)
            watchers = list(self._watchers) if new else []
        for watch in watchers:
            watch(key, dict(resource))
        return key

    def watch_targets(self, callback: Callable[[TargetKey, dict[str, str]], None]) -> None:
        """Call ``callback(key, resource)`` for every target registered so far and every later one."""
        with self._lock:
            self._watchers.append(callback)
            known = list(self._resources.items())
        for key, resource in known:
            callback(key, dict(resource))

    def observe(self, resource: dict[str, str], code: int, latency_s: float) -> None:
        """Count one request to the revision of ``resource`` that answered ``code`` after ``latency_s`` seconds."""
        key = (resource["k8s_namespace_name"], resource["kn_revision_name"])
        if key not in self._resources:
            self.register(resource)
        with self._lock:
            series = self._series.setdefault((key, code), _Series())
            series.count += 1
            series.total_s += latency_s
            for i, bound in enumerate(LATENCY_BUCKETS_S):
                if latency_s <= bound:
                    series.buckets[i] += 1

    def render(self, target: TargetKey | None = None) -> str | None:
        """The exposition text (``text/plain; version=0.0.4``) of one target, or of all when ``target`` is None;
        None for a target never registered."""
        with self._lock:
            if target is not None and target not in self._resources:
                return None
            resources = {k: v for k, v in self._resources.items() if target is None or k == target}
            items = [(k, code, _Series(v.count, list(v.buckets), v.total_s))
                     for (k, code), v in self._series.items() if k in resources]
        lines = ["# HELP target_info Target metadata", "# TYPE target_info gauge"]
        lines += [f"target_info{{{_labels(r)}}} 1" for r in resources.values()]
        lines += [f"# HELP {DURATION} The duration of task execution", f"# TYPE {DURATION} histogram"]
        for key, code, s in sorted(items, key=lambda i: (i[0], i[1])):
            base = _labels({"http_response_status_code": str(code), **SCOPE})
            if target is None:  # everything at once: keep the revisions apart
                base += f',kn_revision_name="{_esc(key[1])}"'
            for bound, n in zip(LATENCY_BUCKETS_S, s.buckets, strict=True):
                lines.append(f'{DURATION}_bucket{{{base},le="{bound}"}} {n}')
            lines.append(f'{DURATION}_bucket{{{base},le="+Inf"}} {s.count}')
            lines.append(f"{DURATION}_sum{{{base}}} {s.total_s}")
            lines.append(f"{DURATION}_count{{{base}}} {s.count}")
        return "\n".join(lines) + "\n"


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{_esc(v)}"' for k, v in sorted(labels.items()))


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
        for b in backends:  # each revision's target exists before its first request, as its Pod's would
            self.metrics.register(self.resource(b.series or b.revision))
        with self._lock:
            self._backends = list(backends)

    def backends(self) -> list[Backend]:
        with self._lock:
            return list(self._backends)

    def resource(self, revision: str) -> dict[str, str]:
        """The ``target_info`` labels of ``revision``'s queue-proxy: the OTel resource of
        ``pkg/queue/sharedmain/otel.go`` (``SERVING_SERVICE``/``_CONFIGURATION``/``_REVISION`` of a KServe
        predictor: ``<isvc>-predictor``, ``<isvc>-predictor``, the revision; the Pod name stands in)."""
        config = f"{self.name}-predictor"
        pod = f"{revision}-deployment-sandbox"
        return {"k8s_namespace_name": self.namespace, "kn_service_name": config, "kn_configuration_name": config,
                "kn_revision_name": revision, "k8s_pod_name": pod, "k8s_container_name": "queue-proxy",
                "service_name": config, "service_instance_id": pod, "service_version": "v0.48.1",
                "telemetry_sdk_language": "go", "telemetry_sdk_name": "opentelemetry"}

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
        self.metrics.observe(self.resource(backend.series or backend.revision), code, time.monotonic() - start)
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
    """Serves ``/metrics/<namespace>/<revision>`` (one revision's queue-proxy target) and ``/metrics`` (all of
    them, for health checks) on a loopback port."""

    def __init__(self, port: int, metrics: QueueProxyMetrics = METRICS) -> None:
        self.port = port

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                parts = self.path.split("?")[0].strip("/").split("/")
                if parts in (["metrics"], [""]):
                    text = metrics.render()
                elif len(parts) == 3 and parts[0] == "metrics":
                    text = metrics.render((parts[1], parts[2]))
                else:
                    text = None
                if text is None:
                    self.send_error(404)
                    return
                payload = text.encode()
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


def target_labels(key: TargetKey, resource: dict[str, str]) -> dict[str, str]:
    """File-SD labels of one revision's queue-proxy target on the :class:`MetricsServer`: its own path and an
    ``instance`` of its own (``<pod>:9091``, queue-proxy's user-metrics port), so ``(job, instance)`` tells the
    revisions apart as it tells Pods apart in a cluster."""
    return {"job_kind": "knative-queue-proxy", "__metrics_path__": f"/metrics/{key[0]}/{key[1]}",
            "instance": f"{resource['k8s_pod_name']}:9091"}
