"""Load generator: real v1-protocol prediction requests at a steady rate against an InferenceService URL.

Payloads are valid iris rows (4 features: sepal length/width, petal length/width in cm), drawn from the three
classes, so a scikit-learn iris model answers 200 and its predictions vary.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sandbox.kserve.router import REVISION_HEADER

IRIS_ROWS = ([5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [5.5, 2.3, 4.0, 1.3],
             [6.3, 3.3, 6.0, 2.5], [7.2, 3.6, 6.1, 2.5])
MAX_RPS = 200
MAX_DURATION_S = 3600


@dataclass
class LoadReport:
    """What a load run saw.

    Attributes:
        sent: requests sent.
        by_code: HTTP status -> count (0 = no answer: connection refused or timed out).
        by_revision: revision that answered (from ``x-kaiops-revision``) -> count.
        latencies_ms: client-side latency of each answered request, milliseconds.
        seconds: wall time of the run.
    """

    sent: int = 0
    by_code: Counter = field(default_factory=Counter)
    by_revision: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> int:
        return sum(n for code, n in self.by_code.items() if 200 <= code < 300)

    def quantile_ms(self, q: float) -> float:
        """Latency quantile ``q`` (0..1) in milliseconds (0 when nothing answered)."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        return {"sent": self.sent, "ok": self.ok, "by_code": {str(k): v for k, v in sorted(self.by_code.items())},
                "by_revision": dict(sorted(self.by_revision.items())), "p50_ms": round(self.quantile_ms(0.5), 1),
                "p95_ms": round(self.quantile_ms(0.95), 1), "seconds": round(self.seconds, 1)}


def resolves(host: str) -> bool:
    """True when ``host`` has an address this machine can look up (DNS or /etc/hosts)."""
    import socket

    try:
        socket.getaddrinfo(host, None)
        return True
    except (OSError, UnicodeError):
        return False


def target(url: str, gateway_url: str | None, can_resolve: bool) -> tuple[str, str | None]:
    """Where to send requests for an InferenceService URL: ``(base URL, Host header or None)``.

    KServe's ``status.url`` in Standard mode is ``http://<isvc>-<namespace>.<ingressDomain>`` (``example.com``
    by default), a name no DNS knows: then the requests go to the Gateway (``gateway_url``) with that host as
    ``Host`` header, which is how KServe's HTTPRoute (``hostnames: [<that host>]``) matches them. A URL whose host
    resolves, or no gateway: the URL itself."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if can_resolve or not gateway_url or not parsed.hostname:
        return url, None
    host = parsed.hostname if parsed.port is None else f"{parsed.hostname}:{parsed.port}"
    return gateway_url.rstrip("/") + (parsed.path.rstrip("/") or ""), host


def predict_once(url: str, model: str, row: list[float], timeout: float = 30.0,
                 host: str | None = None) -> tuple[int, str, dict]:
    """POST one v1 ``:predict`` request (with ``Host: host`` when given); return ``(status, revision, body)``
    (status 0 when no answer)."""
    data = json.dumps({"instances": [row]}).encode()
    headers = {"Content-Type": "application/json", **({"Host": host} if host else {})}
    req = urllib.request.Request(f"{url}/v1/models/{model}:predict", data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers.get(REVISION_HEADER, ""), json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get(REVISION_HEADER, "") if err.headers else "", {}
    except (OSError, ValueError):
        return 0, "", {}


def run(url: str, model: str, rps: float, duration: float, workers: int = 16, host: str | None = None) -> LoadReport:
    """Send ``rps`` requests per second for ``duration`` seconds to ``url`` (model ``model``; ``Host: host``
    when given, see :func:`target`).

    Requests start on a fixed schedule (open loop): a slow server does not lower the offered rate until
    all ``workers`` are busy.

    Raises:
        ValueError: rps not in (0, 200] or duration not in (0, 3600].
    """
    if not 0 < rps <= MAX_RPS:
        raise ValueError(f"rps must be in (0, {MAX_RPS}]")
    if not 0 < duration <= MAX_DURATION_S:
        raise ValueError(f"duration must be in (0, {MAX_DURATION_S}] seconds")
    report = LoadReport()
    lock = threading.Lock()
    total = max(1, int(rps * duration))

    def one(i: int) -> None:
        start = time.monotonic()
        code, revision, _ = predict_once(url, model, IRIS_ROWS[i % len(IRIS_ROWS)], host=host)
        elapsed = (time.monotonic() - start) * 1000.0
        with lock:
            report.by_code[code] += 1
            if revision:
                report.by_revision[revision] += 1
            if code:
                report.latencies_ms.append(elapsed)

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i in range(total):
            delay = began + i / rps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i)
            report.sent += 1
    report.seconds = time.monotonic() - began
    return report


class Background:
    """Load on ``url`` in a background thread until :meth:`stop` (or the end of a ``with`` block).

    Same requests and report as :func:`run`, for as long as something else takes (a whole rollout) instead
    of a fixed duration.
    """

    def __init__(self, url: str, model: str, rps: float = 20.0, workers: int = 16) -> None:
        if not 0 < rps <= MAX_RPS:
            raise ValueError(f"rps must be in (0, {MAX_RPS}]")
        self.url, self.model, self.rps = url, model, rps
        self.report = LoadReport()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._thread = threading.Thread(target=self._run, name="sandbox-load", daemon=True)

    def _one(self, i: int) -> None:
        start = time.monotonic()
        code, revision, _ = predict_once(self.url, self.model, IRIS_ROWS[i % len(IRIS_ROWS)], timeout=10)
        with self._lock:
            self.report.by_code[code] += 1
            if revision:
                self.report.by_revision[revision] += 1
            if code:
                self.report.latencies_ms.append((time.monotonic() - start) * 1000.0)

    def _run(self) -> None:
        began, i = time.monotonic(), 0
        while not self._stop.is_set() and time.monotonic() - began < MAX_DURATION_S:
            delay = began + i / self.rps - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
                continue
            self._pool.submit(self._one, i)
            self.report.sent += 1
            i += 1
        self.report.seconds = time.monotonic() - began

    def start(self) -> Background:
        self._thread.start()
        return self

    def stop(self) -> LoadReport:
        """Stop sending, wait for the requests in flight, return the report."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        return self.report

    def __enter__(self) -> Background:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
