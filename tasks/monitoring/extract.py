"""Regenerate ``catalogue.json``: the metric names each component exports, read from its pinned sources.

``python -m tasks.monitoring.extract --write`` rewrites the catalogue; ``--check`` exits 1 when the committed
one differs from what the sources say. Go modules are fetched with ``go mod download -json`` (the Go module
proxy, cached in ``~/go/pkg/mod``); Ray and ``prometheus_client`` are read from the installed packages
(versions pinned in ``requirements.lock``); kaiops's own names by running its metric writer into a temporary
directory. Each component below names its source files; every name in the catalogue comes from them.

OpenTelemetry instruments (Knative v0.48.1) become Prometheus names the way the OpenTelemetry Go Prometheus
exporter v0.61.0 (``go.opentelemetry.io/otel/exporters/prometheus``, required by knative.dev/serving v0.48.1)
writes them by default: dots to underscores, a unit suffix (``s`` -> ``_seconds``, ``By`` -> ``_bytes``,
``{annotation}`` units dropped), ``_total`` on counters, histograms as ``_bucket``/``_sum``/``_count``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CATALOGUE = Path(__file__).with_name("catalogue.json")

#: Go modules read, at the versions the pinned releases use.
MODULES = {
    "kuberay": ("github.com/ray-project/kuberay/ray-operator", "v1.6.2"),
    "controller-runtime": ("sigs.k8s.io/controller-runtime", "v0.22.4"),  # KubeRay v1.6.2's go.mod
    "kserve": ("github.com/kserve/kserve", "v0.20.0"),
    "knative-serving": ("knative.dev/serving", "v0.48.1"),  # KServe v0.20.0's go.mod
    "otelhttp": ("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", "v0.64.0"),  # Knative's go.mod
    "otel": ("go.opentelemetry.io/otel", "v1.39.0"),  # Knative's go.mod (semconv v1.37.0 httpconv)
    "cadvisor": ("github.com/google/cadvisor", "v0.53.0"),  # k8s.io/kubernetes v1.35.4's go.mod (kubelet)
    # KubeRay v1.6.2's and the Prometheus Operator v0.89.0's go.mod (controller-runtime registers its Go and
    # process collectors, pkg/internal/controller/metrics/metrics.go)
    "client_golang": ("github.com/prometheus/client_golang", "v1.23.2"),
    "prometheus-operator": ("github.com/prometheus-operator/prometheus-operator", "v0.89.0"),  # configs/crds.yaml
}
#: the newest runtime/metrics set client_golang v1.23.2 generated (prometheus/go_collector_metrics_go124_test.go)
GO_RUNTIME_SET = "go124"


def module_dir(key: str) -> Path:
    """Download a pinned module through the Go module proxy (or reuse the cache); return its directory.

    Raises:
        RuntimeError: ``go`` is missing or the proxy refuses the version.
    """
    module, version = MODULES[key]
    proc = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], capture_output=True, text=True,
                          env={**os.environ, "GOFLAGS": "-mod=mod"}, cwd=tempfile.gettempdir(), check=False)
    info = json.loads(proc.stdout or "{}")
    if not info.get("Dir"):
        raise RuntimeError(f"go mod download {module}@{version}: {info.get('Error') or proc.stderr.strip()}")
    return Path(info["Dir"])


def _go_instruments(files: list[Path]) -> dict[str, str]:
    """``prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"...`` and ``prometheus.NewDesc("x", ...``."""
    kinds = {"Counter": "counter", "Gauge": "gauge", "Histogram": "histogram", "Summary": "summary"}
    out: dict[str, str] = {}
    for path in files:
        text = path.read_text()
        for m in re.finditer(r"prometheus\.New(Counter|Gauge|Histogram|Summary)(?:Vec|Func)?\(\s*prometheus\.\w+Opts\{"
                             r"[^}]*?Name:\s*\"([a-z_:][a-z0-9_:]*)\"", text, re.S):
            out[m[2]] = kinds[m[1]]
        for m in re.finditer(r"prometheus\.NewDesc\(\s*\"([a-z_:][a-z0-9_:]*)\"", text):
            out.setdefault(m[1], "gauge")  # const metrics written with prometheus.GaugeValue
    return out


def kuberay() -> dict[str, Any]:
    """KubeRay's operator metrics (controllers/ray/metrics) and controller-runtime's (the operator's manager)."""
    root = module_dir("kuberay")
    files = sorted(p for p in (root / "controllers/ray/metrics").glob("*.go") if not p.name.endswith("_test.go"))
    metrics = _go_instruments(files)
    cr = module_dir("controller-runtime")
    cr_files = [cr / "pkg/internal/controller/metrics/metrics.go", cr / "pkg/metrics/client_go_adapter.go",
                cr / "pkg/metrics/leaderelection.go"]
    metrics.update(_go_instruments(cr_files))
    workqueue = (cr / "pkg/metrics/workqueue.go").read_text()
    for key in re.findall(r'\w+Key\s*=\s*"([a-z_]+)"', workqueue):
        kind = "counter" if key.endswith("_total") else "histogram" if key.endswith("duration_seconds") else "gauge"
        metrics[f"workqueue_{key}"] = kind
    return {
        "component": "kuberay-operator",
        "version": "kuberay v1.6.2 (controller-runtime v0.22.4)",
        "sources": [f"{MODULES['kuberay'][0]}@v1.6.2 controllers/ray/metrics/*.go",
                    f"{MODULES['controller-runtime'][0]}@v0.22.4 " + ", ".join(
                        str(p.relative_to(cr)) for p in [*cr_files, cr / "pkg/metrics/workqueue.go"])],
        "metrics": metrics,
    }


def ray() -> dict[str, Any]:
    """Ray's own metrics: the names Ray's Grafana dashboards query, and the node gauges of its reporter agent."""
    import ray as ray_pkg

    root = Path(ray_pkg.__file__).parent
    panels = sorted((root / "dashboard/modules/metrics/dashboards").glob("*_panels.py"))
    metrics: dict[str, str] = {}
    for path in panels:
        for name in re.findall(r"\b(ray_[a-z0-9_]*[a-z0-9])\b(?!\s*[=!~])", path.read_text()):
            if name == "ray_io_cluster":  # a label (KubeRay's ray.io/cluster), not a metric
                continue
            kind = "histogram" if name.endswith("_bucket") else "counter" if name.endswith("_total") else "gauge"
            metrics[name.removesuffix("_bucket") if kind == "histogram" else name] = kind
    reporter = (root / "dashboard/modules/reporter/reporter_agent.py").read_text()
    block = reporter[reporter.index("METRICS_GAUGES = {"):]
    block = block[: block.index("\n}\n")]
    for name in re.findall(r'^\s{4}"([a-z0-9_]+)": Gauge\(', block, re.M):
        metrics.setdefault(f"ray_{name}", "gauge")
    return {
        "component": "ray",
        "version": f"ray {ray_pkg.__version__}",
        "sources": [f"ray {ray_pkg.__version__} " + ", ".join(str(p.relative_to(root)) for p in panels),
                    f"ray {ray_pkg.__version__} dashboard/modules/reporter/reporter_agent.py (METRICS_GAUGES)"],
        "metrics": metrics,
    }


def kserve() -> dict[str, Any]:
    """KServe's Python model servers (python/kserve/kserve/metrics.py) and prometheus_client's defaults."""
    root = module_dir("kserve")
    text = (root / "python/kserve/kserve/metrics.py").read_text()
    metrics = {m[2]: m[1].lower() for m in re.finditer(r'\b(Histogram|Counter|Gauge|Summary)\(\s*"([a-z_]+)"', text)}
    import prometheus_client

    pc = Path(prometheus_client.__file__).parent
    process = (pc / "process_collector.py").read_text()
    for suffix in re.findall(r"self\._prefix \+ '([a-z_]+)'", process):
        metrics[f"process_{suffix}"] = "counter" if suffix.endswith("_total") else "gauge"
    gc = (pc / "gc_collector.py").read_text()
    for name in re.findall(r"'(python_gc_[a-z_]+)'", gc):
        metrics[name] = "counter"
    metrics["python_info"] = "gauge"  # platform_collector.py
    return {
        "component": "kserve-model-server",
        "version": "kserve v0.20.0",
        "sources": [f"{MODULES['kserve'][0]}@v0.20.0 python/kserve/kserve/metrics.py",
                    "prometheus_client process_collector.py, gc_collector.py, platform_collector.py"],
        "metrics": metrics,
    }


_UNITS = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": "ratio"}


def otel_prometheus_name(name: str, unit: str, instrument: str) -> tuple[str, str]:
    """(Prometheus name, type) of an OpenTelemetry instrument, as the OTel Go Prometheus exporter writes it."""
    out = re.sub(r"[^a-zA-Z0-9_:]", "_", name)
    suffix = "" if unit.startswith("{") else _UNITS.get(unit, "")
    if suffix == "ratio" and "Gauge" not in instrument:
        suffix = ""
    if suffix and not out.endswith(suffix):
        out += f"_{suffix}"
    if "Histogram" in instrument:
        return out, "histogram"
    if instrument.endswith("Counter") and "UpDown" not in instrument:
        return out + "_total", "counter"
    return out, "gauge"


def knative() -> dict[str, Any]:
    """Knative queue-proxy v0.48.1: its request instruments and otelhttp's server and client instruments."""
    root = module_dir("knative-serving")
    metrics: dict[str, str] = {}
    request_metric = (root / "pkg/queue/request_metric.go").read_text()
    for m in re.finditer(r'meter\.((?:Float64|Int64)\w+)\(\s*"([a-z.]+)",(.*?)\)\n', request_metric, re.S):
        unit = re.search(r'WithUnit\("([^"]*)"\)', m[3])
        name, kind = otel_prometheus_name(m[2], unit[1] if unit else "", m[1])
        metrics[name] = kind
    otelhttp = module_dir("otelhttp") / "internal/semconv"
    used = set(re.findall(r"httpconv\.New(\w+)\(", (otelhttp / "server.go").read_text()))
    used |= set(re.findall(r"httpconv\.New(\w+)\(", (otelhttp / "client.go").read_text()))
    conv = (module_dir("otel") / "semconv/v1.37.0/httpconv/metric.go").read_text()
    for fn in sorted(used):
        start = conv.index(f"func New{fn}(")
        head = conv[:start]
        unit = re.findall(r'WithUnit\("([^"]*)"\)', head[head.rfind("func "):] if "func " in head else head)
        body = conv[start: conv.index("\n}\n", start)]
        otel_name = re.search(r'"(http\.[a-z._]+)"', body)
        instrument = re.search(r"m\.((?:Float64|Int64)\w+)\(", body)
        if otel_name and instrument:
            name, kind = otel_prometheus_name(otel_name[1], unit[-1] if unit else "", instrument[1])
            metrics[name] = kind
    metrics["target_info"] = "gauge"  # written by the OTel Prometheus exporter for the resource
    return {
        "component": "knative-queue-proxy",
        "version": "knative serving v0.48.1 (otelhttp v0.64.0, otel semconv v1.37.0, OTel Prometheus exporter v0.61.0)",
        "sources": [f"{MODULES['knative-serving'][0]}@v0.48.1 pkg/queue/request_metric.go",
                    f"{MODULES['otelhttp'][0]}@v0.64.0 internal/semconv/server.go, client.go",
                    f"{MODULES['otel'][0]}@v1.39.0 semconv/v1.37.0/httpconv/metric.go"],
        "metrics": metrics,
    }


def cadvisor() -> dict[str, Any]:
    """cAdvisor's container metrics, as the kubelet serves them on /metrics/cadvisor."""
    root = module_dir("cadvisor")
    text = (root / "metrics/prometheus.go").read_text()
    kinds = {"CounterValue": "counter", "GaugeValue": "gauge"}
    metrics: dict[str, str] = {}
    for m in re.finditer(r'name:\s*"(container_[a-z0-9_]+)",.*?valueType:\s*prometheus\.(\w+)', text, re.S):
        metrics[m[1]] = kinds.get(m[2], "gauge")
    for name in re.findall(r'"(container_[a-z0-9_]+)"', text):
        metrics.setdefault(name, "gauge")
    return {
        "component": "cadvisor",
        "version": "cadvisor v0.53.0 (kubelet v1.35.4)",
        "sources": [f"{MODULES['cadvisor'][0]}@v0.53.0 metrics/prometheus.go"],
        "metrics": metrics,
    }


def prometheus_operator() -> dict[str, Any]:
    """The Prometheus Operator's own metrics: its instruments under ``pkg/`` and ``internal/`` and the
    ``prometheus_operator_build_info`` that ``internal/metrics.NewRegistry("prometheus_operator")`` registers
    (prometheus/common's version collector). Its Go and process series are in the ``go-runtime`` component."""
    root = module_dir("prometheus-operator")
    files = sorted(p for d in ("pkg", "internal") for p in (root / d).rglob("*.go") if not p.name.endswith("_test.go"))
    metrics = _go_instruments(files)
    metrics["prometheus_operator_build_info"] = "gauge"
    version = MODULES["prometheus-operator"][1]
    return {
        "component": "prometheus-operator",
        "version": f"prometheus-operator {version}",
        "sources": [f"{MODULES['prometheus-operator'][0]}@{version} pkg/**/*.go, internal/**/*.go, "
                    "internal/metrics/metrics.go (build_info)"],
        "metrics": metrics,
    }


def _runtime_metric_kinds() -> dict[str, str]:
    """runtime/metrics name -> ``Kind...`` from the Go toolchain's own ``src/runtime/metrics/description.go``."""
    goroot = subprocess.run(["go", "env", "GOROOT"], capture_output=True, text=True, check=True).stdout.strip()
    text = (Path(goroot) / "src/runtime/metrics/description.go").read_text()
    return {m[1]: m[2] for m in re.finditer(r'Name:\s*"([^"]+)",.*?Kind:\s*(Kind\w+)', text, re.S)}


def go_runtime() -> dict[str, Any]:
    """client_golang's Go and process collectors, which every Go component here registers (controller-runtime
    with ``WithGoCollectorRuntimeMetrics(MetricsAll)``: all runtime/metrics too).

    Names: ``go_collector.go`` (base + ``go_memstats_*``), ``process_collector.go`` and the runtime/metrics set
    client_golang generated for :data:`GO_RUNTIME_SET` (a binary built with a newer Go may export a few more).
    Types: ``go_gc_duration_seconds`` is a summary; a runtime/metrics name is a histogram when the toolchain's
    ``description.go`` says ``KindFloat64Histogram``, a counter when it ends in ``_total``, else a gauge.
    """
    root = module_dir("client_golang") / "prometheus"
    go = (root / "go_collector.go").read_text()
    metrics: dict[str, str] = {name: "gauge" for name in re.findall(r'NewDesc\(\s*"(go_[a-z0-9_]+)"', go)}
    for name in re.findall(r'memstatNamespace\("([a-z0-9_]+)"\)', go):
        metrics[f"go_memstats_{name}"] = "counter" if name.endswith("_total") else "gauge"
    metrics["go_gc_duration_seconds"] = "summary"
    process = (root / "process_collector.go").read_text()
    for name in re.findall(r'ns\+"(process_[a-z0-9_]+)"', process):
        metrics[name] = "counter" if name.endswith("_total") else "gauge"
    runtime_set = (root / f"go_collector_metrics_{GO_RUNTIME_SET}_test.go").read_text()
    kinds = _runtime_metric_kinds()
    for runtime_name, name in re.findall(r'"(/[^"]+)":\s*"(go_[a-z0-9_]+)"', runtime_set):
        kind = "histogram" if kinds.get(runtime_name) == "KindFloat64Histogram" else \
            "counter" if name.endswith("_total") else "gauge"
        metrics[name] = kind
    version = MODULES["client_golang"][1]
    return {
        "component": "go-runtime",
        "version": f"client_golang {version} (runtime/metrics set {GO_RUNTIME_SET})",
        "sources": [f"{MODULES['client_golang'][0]}@{version} prometheus/go_collector.go, "
                    f"prometheus/process_collector.go, prometheus/go_collector_metrics_{GO_RUNTIME_SET}_test.go",
                    "the Go toolchain's src/runtime/metrics/description.go (metric kinds)"],
        "metrics": metrics,
    }


def kaiops() -> dict[str, Any]:
    """kaiops's own series (tasks/backup/metrics.py), produced by running its writer into a temp directory."""
    from tasks.backup import metrics as backup_metrics

    metrics: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        backup_metrics.record_backup(Path(tmp), "p", success=True, now=1.0, counts={"RayCluster": 1}, size=1)
        backup_metrics.record_drill(Path(tmp), "p", success=True, now=1.0, rto=1.0, objects={"ready": 1})
        for prom in Path(tmp).glob("*.prom"):
            for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", prom.read_text(), re.M):
                metrics[name] = kind
    return {
        "component": "kaiops",
        "version": "kaiops (this repository)",
        "sources": ["tasks/backup/metrics.py (record_backup, record_drill)"],
        "metrics": metrics,
    }


EXTRACTORS = (kuberay, ray, kserve, knative, cadvisor, prometheus_operator, go_runtime, kaiops)


def extract() -> dict[str, Any]:
    """The catalogue as the sources say it should be (metrics sorted by name)."""
    components = []
    for fn in EXTRACTORS:
        comp = fn()
        comp["metrics"] = dict(sorted(comp["metrics"].items()))
        components.append(comp)
    return {"generated_by": "python -m tasks.monitoring.extract --write", "components": components}


def main(argv: list[str] | None = None) -> int:
    """``--write`` the catalogue, or ``--check`` it against the sources (exit 1 on a difference)."""
    parser = argparse.ArgumentParser(prog="python -m tasks.monitoring.extract")
    parser.add_argument("--write", action="store_true", help="rewrite tasks/monitoring/catalogue.json")
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed catalogue is stale")
    args = parser.parse_args(argv)
    fresh = extract()
    if args.write:
        CATALOGUE.write_text(json.dumps(fresh, indent=1) + "\n")
    if args.check:
        committed = json.loads(CATALOGUE.read_text())
        if committed != fresh:
            print("tasks/monitoring/catalogue.json is stale: run python -m tasks.monitoring.extract --write",
                  file=sys.stderr)
            return 1
    total = sum(len(c["metrics"]) for c in fresh["components"])
    print(f"{total} metric names in {len(fresh['components'])} components")
    return 0


if __name__ == "__main__":
    sys.exit(main())
