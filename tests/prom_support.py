"""A real Prometheus over a promtool backfill, for tests of queries against known series (no scraping)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


@contextlib.contextmanager
def backfilled_prometheus(home: Path, openmetrics: str) -> Iterator[str]:
    """Write ``openmetrics`` (ending ``# EOF``) as TSDB blocks under ``home`` with ``promtool tsdb
    create-blocks-from openmetrics``, start ``prometheus`` on a free loopback port over them, and yield its URL
    once ``/-/ready`` answers; the process is stopped on exit."""
    from sandbox.procs import free_port

    (home / "series.om").write_text(openmetrics)
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(home / "series.om"),
                    str(home / "tsdb")], check=True, capture_output=True)
    (home / "prometheus.yml").write_text("global: {scrape_interval: 5s}\n")
    port = free_port()
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={home / 'prometheus.yml'}", f"--storage.tsdb.path={home / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn", "--storage.tsdb.retention.time=30d"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


# queue-proxy's latencyBounds (seconds), knative.dev/serving v0.48.1 pkg/queue/request_metric.go
QUEUE_PROXY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
_SCOPE = 'otel_scope_name="knative.dev/serving/pkg/queue",otel_scope_schema_url="",otel_scope_version=""'


def queue_proxy_openmetrics(namespace: str, revisions: dict[str, list[tuple[int, dict[int, int]]]],
                            latency_s: dict[str, float]) -> str:
    """OpenMetrics (ending ``# EOF``) of what the real queue-proxy targets of ``revisions`` export, as
    Prometheus stores them: one target per revision (``job="queue-proxy"``, ``instance="<revision>-pod:9091"``)
    with ``target_info`` (the OTel resource: ``k8s_namespace_name``, ``kn_revision_name``, ...) and the histogram
    ``kn_serving_invocation_duration_seconds`` labelled ``http_response_status_code`` only.

    Args:
        namespace: the revisions' namespace.
        revisions: per revision, ``(unix seconds, {status code: cumulative requests})`` samples in time order; a
            code absent from a sample has no series then (an OTel series is born at its first request).
        latency_s: per revision, every request's latency (seconds); half of the requests fall in the bucket
            below it.
    """
    info = ["# TYPE target_info gauge", "# HELP target_info Target metadata"]
    hist = ["# TYPE kn_serving_invocation_duration_seconds histogram",
            "# HELP kn_serving_invocation_duration_seconds The duration of task execution"]
    for rev, samples in revisions.items():
        target = f'instance="{rev}-pod:9091",job="queue-proxy"'
        resource = (f'k8s_container_name="queue-proxy",k8s_namespace_name="{namespace}",k8s_pod_name="{rev}-pod",'
                    f'kn_configuration_name="x",kn_revision_name="{rev}",kn_service_name="x"')
        info += [f"target_info{{{target},{resource}}} 1 {ts}" for ts, _ in samples]
        codes = sorted({code for _, counts in samples for code in counts})
        for code in codes:
            base = f'{target},http_response_status_code="{code}",{_SCOPE}'
            for ts, counts in samples:
                if code not in counts:
                    continue
                n = counts[code]
                lat = latency_s[rev]
                for le in QUEUE_PROXY_BUCKETS:
                    v = n if le >= lat else (n // 2 if le >= lat / 2 else 0)
                    hist.append(f'kn_serving_invocation_duration_seconds_bucket{{{base},le="{le}"}} {v} {ts}')
                hist.append(f'kn_serving_invocation_duration_seconds_bucket{{{base},le="+Inf"}} {n} {ts}')
                hist.append(f"kn_serving_invocation_duration_seconds_count{{{base}}} {n} {ts}")
                hist.append(f"kn_serving_invocation_duration_seconds_sum{{{base}}} {n * lat} {ts}")
    return "\n".join(info + hist) + "\n# EOF\n"
